package oidc

import (
	"sync"
	"time"
)

// redeemedCap bounds the ids of redeemed codes one replica remembers. Codes
// live 60 seconds, so it is reached only by more than 1 600 logins a
// second on one replica; then a redemption is refused rather than a code
// left redeemable twice.
const redeemedCap = 100_000

// redeemed remembers the codes this replica redeemed until they expire,
// so that a code is used once. Nothing else is stored.
type redeemed struct {
	mu  sync.Mutex
	ids map[string]int64 // code id → its expiry, unix seconds
	max int
}

func newRedeemed(max int) *redeemed { return &redeemed{ids: map[string]int64{}, max: max} }

// use records id, valid until exp, as redeemed now. It reports false when
// id was redeemed before, or when the set is full of unexpired ids.
func (r *redeemed) use(id string, exp int64, now time.Time) (ok, full bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, seen := r.ids[id]; seen {
		return false, false
	}
	if len(r.ids) >= r.max {
		for k, e := range r.ids {
			if e < now.Unix() {
				delete(r.ids, k)
			}
		}
		if len(r.ids) >= r.max {
			return false, true
		}
	}
	r.ids[id] = exp
	return true, false
}
