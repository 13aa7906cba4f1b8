package oidc

import (
	"testing"
	"time"

	"wxlogin/internal/wechat"
)

// TestReplicas: two providers built from the same key file complete a
// login whichever of them each step reaches; after the file's first key
// changes, logins in flight are void but issued tokens still verify with
// the old key kept second.
func TestReplicas(t *testing.T) {
	t.Parallel()
	fake, clk := startFake(t), newClock()
	file := keyFile(t, "rsa", "es")
	a := newFixture(t, withKeys(file), withFake(fake), withClock(clk))
	b := newFixture(t, withKeys(file), withFake(fake), withClock(clk))
	if a.keys[0] == b.keys[0] {
		t.Fatal("the replicas share a *token.Key: the test proves nothing")
	}

	// /authorize at A, /callback at B, /token at A.
	st := a.authorize(t, authQuery(confID, confRedirect), desktopUA)
	s := b.callback(t, st, "wxcode-replica")
	if s.Result != "ok" {
		t.Fatalf("B: Exchange(A's cookie) = %+v (%v), want ok", s, s.Err)
	}
	code := queryOf(t, s.Location).Get("code")
	resp := a.redeem(t, tokenForm(code, confRedirect), basic(confID, confSecret))

	// A code from A redeems at B.
	code2 := a.login(t, authQuery(confID, confRedirect), "wxcode-replica2")
	resp2 := b.redeem(t, tokenForm(code2, confRedirect), basic(confID, confSecret))
	for name, p := range map[string]*fixture{"A": a, "B": b} {
		for _, tok := range []string{resp.AccessToken, resp2.AccessToken} {
			if info, err := p.p.UserInfo(tok); err != nil || info.UnionID == "" {
				t.Errorf("%s: UserInfo(an access token of the replicas) = %+v, %v", name, info, err)
			}
		}
	}

	// Logins in flight when the first key changes: a cookie and a code of
	// the old first key.
	inFlight := a.authorize(t, authQuery(confID, confRedirect), desktopUA)
	codeInFlight := a.login(t, authQuery(confID, confRedirect), "wxcode-in-flight")
	clk.Add(5 * time.Second)
	rotated := newFixture(t, withKeys(keyFile(t, "es2", "rsa", "es")), withFake(fake), withClock(clk))
	if pl, s := rotated.p.Callback(okQuery(inFlight), inFlight.cookie); pl != nil || s.Problem != ProblemExpired {
		t.Errorf("after rotation: Callback(a cookie of the old first key) = %v, %+v; want the %s page", pl != nil, s, ProblemExpired)
	}
	if r, terr := rotated.tryRedeem(tokenForm(codeInFlight, confRedirect), basic(confID, confSecret)); r != nil || terr == nil || terr.Code != "invalid_grant" {
		t.Errorf("after rotation: Redeem(a code of the old first key) = %+v, %+v; want invalid_grant", r, terr)
	}
	// The same code still redeems where the old key is first: only the
	// rotated replica refused it.
	a.redeem(t, tokenForm(codeInFlight, confRedirect), basic(confID, confSecret))

	// Tokens issued before still verify: the old key is kept second.
	for name, tok := range map[string]string{"id_token": resp.IDToken, "access_token": resp.AccessToken} {
		if c, err := rotated.tokens.Verify(tok); err != nil || c.Subject != wechat.MockUnionID("wxcode-replica") {
			t.Errorf("after rotation: Verify(an old %s) = %+v, %v; want ok", name, c, err)
		}
	}
	if info, err := rotated.p.UserInfo(resp.AccessToken); err != nil || info.Sub != wechat.MockUnionID("wxcode-replica") {
		t.Errorf("after rotation: UserInfo(an old access token) = %+v, %v; want ok", info, err)
	}
	// A new login on the rotated replica is signed by the new first key,
	// which the old replicas do not have.
	fresh := rotated.redeem(t, tokenForm(rotated.login(t, authQuery(confID, confRedirect), "wxcode-new"), confRedirect), basic(confID, confSecret))
	if h := segmentJSON(t, fresh.AccessToken, 0); h["kid"] != rotated.keys[0].ID() || rotated.keys[0].ID() == a.keys[0].ID() {
		t.Errorf("after rotation: access token kid %v, want the new first key's %s", h["kid"], rotated.keys[0].ID())
	}
	if _, err := a.p.UserInfo(fresh.AccessToken); err == nil {
		t.Errorf("a replica without the new key accepts its token")
	}
}
