package wechat

import (
	"context"
	"sync"
	"time"
)

// accessTokens caches each app's access_token in memory. A token is used
// until min(60 s, expires_in/2) before it expires, then fetched again with
// stable_token, which in its normal mode hands every replica the same
// token: nothing is shared between replicas and nothing of ours
// invalidates anyone else's token.
//
// Single flight: however many requests need an app's token at once, one
// stable_token call is in flight and the others wait for it, each within
// its own deadline.
type accessTokens struct {
	fetch   func(ctx context.Context, appID string) (string, time.Duration, error)
	timeout time.Duration // for one fetch, detached from the request that started it
	now     func() time.Time
	fetched func(err error) // each fetch's outcome; may be nil

	mu   sync.Mutex
	apps map[string]*tokenFetch // the current token, or the fetch in flight
}

// tokenFetch is one fetch of an app's token and, once done is closed, its
// result.
type tokenFetch struct {
	done      chan struct{}
	token     string
	refreshAt time.Time
	err       error
}

func newAccessTokens(fetch func(context.Context, string) (string, time.Duration, error), timeout time.Duration, now func() time.Time, fetched func(error)) *accessTokens {
	return &accessTokens{fetch: fetch, timeout: timeout, now: now, fetched: fetched, apps: map[string]*tokenFetch{}}
}

// get returns app's access_token, fetching it when there is none fresh.
func (a *accessTokens) get(ctx context.Context, appID string) (string, error) {
	a.mu.Lock()
	f := a.apps[appID]
	if f != nil {
		select {
		case <-f.done:
			if f.err == nil && a.now().Before(f.refreshAt) {
				a.mu.Unlock()
				return f.token, nil // the usual case: cached and fresh
			}
			f = nil // failed or stale: fetch anew
		default: // in flight: wait for it below
		}
	}
	if f == nil {
		f = &tokenFetch{done: make(chan struct{})}
		a.apps[appID] = f
		// Detached from ctx: a client that gives up must not fail the
		// fetch that other requests wait on.
		go a.run(context.WithoutCancel(ctx), appID, f)
	}
	a.mu.Unlock()

	select {
	case <-f.done:
		return f.token, f.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (a *accessTokens) run(ctx context.Context, appID string, f *tokenFetch) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	token, ttl, err := a.fetch(ctx, appID)
	if err == nil {
		margin := min(60*time.Second, ttl/2)
		f.token, f.refreshAt = token, a.now().Add(ttl-margin)
	}
	f.err = err
	if a.fetched != nil {
		a.fetched(err)
	}
	close(f.done)
}

// drop forgets app's token when it is still token: WeChat said it is no
// longer valid (another system forced a refresh, or it expired early).
func (a *accessTokens) drop(appID, token string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if f := a.apps[appID]; f != nil {
		select {
		case <-f.done:
			if f.token == token {
				delete(a.apps, appID)
			}
		default:
		}
	}
}
