package main

import (
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// rate is a limit of n events per period; the zero rate is no limit.
type rate struct {
	n   int
	per time.Duration
}

func (r rate) String() string {
	if r.n == 0 {
		return "off"
	}
	return strconv.Itoa(r.n) + "/" + r.per.String()
}

// limiterCap is the most keys a limiter tracks. BenchmarkLimiterBytes
// measures what a key costs; the README gives the figure.
const limiterCap = 100_000

// limiter is a token bucket per key (client address, openid): n requests
// per period, refilled continuously, as golang.org/x/time/rate does it.
//
// Memory: keys live in two generations. New and recently used keys are in
// cur; when cur fills half the cap, or a period has passed, cur becomes
// prev and prev is dropped. A key idle for a whole period is dropped,
// which changes nothing (its bucket is full again); at the cap, the keys
// least recently used go first.
type limiter[K comparable] struct {
	n     float64       // bucket size and refill per period
	per   time.Duration // the period
	max   int           // the most keys held at once
	now   func() time.Time
	mu    sync.Mutex
	cur   map[K]bucket
	prev  map[K]bucket
	since time.Time // when cur was started
}

// bucket is one key's state: tokens left at the time last.
type bucket struct {
	tokens float64
	last   int64 // unix nanoseconds
}

// newLimiter returns a limiter for r, or nil when r is off.
func newLimiter[K comparable](r rate, max int, now func() time.Time) *limiter[K] {
	if r.n == 0 {
		return nil
	}
	return &limiter[K]{n: float64(r.n), per: r.per, max: max, now: now,
		cur: map[K]bucket{}, prev: map[K]bucket{}, since: now()}
}

// allow takes one token for key. When none is left it returns false and
// how long until one is back.
func (l *limiter[K]) allow(key K) (ok bool, retryAfter time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.since) >= l.per || len(l.cur) >= l.max/2 {
		l.prev, l.cur, l.since = l.cur, make(map[K]bucket, len(l.cur)), now
	}
	b, found := l.cur[key]
	if !found {
		if b, found = l.prev[key]; found {
			delete(l.prev, key)
		} else {
			b = bucket{tokens: l.n, last: now.UnixNano()}
		}
	}
	// Refill for the time since last, up to the bucket size.
	elapsed := time.Duration(now.UnixNano() - b.last)
	if elapsed > 0 {
		b.tokens = min(l.n, b.tokens+elapsed.Seconds()*l.n/l.per.Seconds())
		b.last = now.UnixNano()
	}
	if b.tokens >= 1 {
		b.tokens--
		l.cur[key] = b
		return true, 0
	}
	l.cur[key] = b
	wait := (1 - b.tokens) * l.per.Seconds() / l.n
	return false, time.Duration(wait * float64(time.Second))
}

// keys is how many keys the limiter holds now.
func (l *limiter[K]) keys() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.cur) + len(l.prev)
}

// retryAfterSeconds is a Retry-After value: whole seconds, rounded up, at
// least 1.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// inflight is MAX_INFLIGHT: requests that wait for WeChat at once.
type inflight struct {
	n   atomic.Int64
	max int64
}

// enter takes a slot, or reports that none is free.
func (f *inflight) enter() bool {
	if f.n.Add(1) > f.max {
		f.n.Add(-1)
		return false
	}
	return true
}

func (f *inflight) leave() { f.n.Add(-1) }

// now is how many slots are taken.
func (f *inflight) now() int64 { return f.n.Load() }
