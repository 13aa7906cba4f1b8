package oidc

import (
	"strings"
	"testing"
)

// TestPKCEVector is RFC 7636 appendix B: the verifier's S256 challenge.
func TestPKCEVector(t *testing.T) {
	t.Parallel()
	if got := s256(rfcVerifier); got != rfcChallenge {
		t.Errorf("s256(%q) = %q, want the RFC's %q", rfcVerifier, got, rfcChallenge)
	}
	if got := s256Of(rfcVerifier); got != rfcChallenge {
		t.Fatalf("the test's own S256 = %q, want %q", got, rfcChallenge)
	}
	if !validChallenge(rfcChallenge) || !validVerifier(rfcVerifier) {
		t.Errorf("validChallenge/validVerifier refuse the RFC's example")
	}
	if !verifierMatches(rfcVerifier, rfcChallenge) {
		t.Errorf("verifierMatches(the RFC's verifier, its challenge) = false")
	}
	for _, tt := range []struct{ verifier, challenge string }{
		{rfcVerifier[:42] + "l", rfcChallenge},                        // another verifier
		{rfcVerifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"},  // another challenge
		{rfcVerifier, rfcChallenge[:42]},                              // cut
		{rfcChallenge, rfcChallenge},                                  // plain
		{"", rfcChallenge},                                            // no verifier
		{rfcVerifier, ""},                                             // no challenge
		{rfcVerifier + " ", rfcChallenge},                             // a space more
		{strings.ToUpper(rfcVerifier), strings.ToUpper(rfcChallenge)}, // case
	} {
		if verifierMatches(tt.verifier, tt.challenge) {
			t.Errorf("verifierMatches(%q, %q) = true, want false", tt.verifier, tt.challenge)
		}
	}
}

// TestValidVerifier: 43–128 characters of A-Z a-z 0-9 - . _ ~.
func TestValidVerifier(t *testing.T) {
	t.Parallel()
	const unreserved = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
	for _, tt := range []struct {
		name string
		v    string
		want bool
	}{
		{"42", strings.Repeat("a", 42), false},
		{"43", strings.Repeat("a", 43), true},
		{"128", strings.Repeat("Z", 128), true},
		{"129", strings.Repeat("Z", 129), false},
		{"empty", "", false},
		{"every unreserved character", unreserved, true},
		{"every unreserved character, 128", strings.Repeat(unreserved, 2)[:128], true},
	} {
		if got := validVerifier(tt.v); got != tt.want {
			t.Errorf("validVerifier(%s) = %v, want %v", tt.name, got, tt.want)
		}
	}
	base := strings.Repeat("a", 50)
	for _, c := range []string{" ", "+", "/", "=", "%", "!", "*", "'", "(", ":", "\x00", "\x7f", "é", "\u00a0", "\n"} {
		if validVerifier(base[:20] + c + base[20:]) {
			t.Errorf("validVerifier(a verifier with %q) = true, want false", c)
		}
	}
	// Only an ASCII byte is one character: 43 bytes that are fewer
	// characters, or 128 characters that are more bytes, are refused.
	if validVerifier(strings.Repeat("é", 22)) || validVerifier(strings.Repeat("a", 127)+"é") {
		t.Errorf("validVerifier accepts a verifier that is not ASCII")
	}
}

// TestValidChallenge: 43 characters of base64url, the canonical spelling
// of 32 bytes.
func TestValidChallenge(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, c string
		want    bool
	}{
		{"RFC 7636", rfcChallenge, true},
		{"of a 128-character verifier", s256Of(strings.Repeat("~", 128)), true},
		{"42", rfcChallenge[:42], false},
		{"44", rfcChallenge + "A", false},
		{"padded", rfcChallenge + "=", false},
		{"standard base64 +", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM", false},
		{"standard base64 /", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw/cM", false},
		{"a space", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw cM", false},
		{"a dot", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw.cM", false},
		// 43 characters hold 258 bits: the last two must be zero.
		{"unused bits set", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN", false},
		{"empty", "", false},
	} {
		if got := validChallenge(tt.c); got != tt.want {
			t.Errorf("validChallenge(%s: %q) = %v, want %v", tt.name, tt.c, got, tt.want)
		}
	}
}

// TestPKCERedeem: at /token, the verifier must prove the challenge the
// authorization request sent, and may not come without one; every length
// rule of the verifier holds there too.
func TestPKCERedeem(t *testing.T) {
	t.Parallel()
	verifier := func(n int) string { return strings.Repeat("abcdefghij", 13)[:n] }
	for _, tt := range []struct {
		name      string
		challenge string // sent to /authorize; "" for none
		verifier  string // sent to /token; "" for none
		ok        bool
	}{
		{"RFC 7636 appendix B", rfcChallenge, rfcVerifier, true},
		{"43 characters", s256Of(verifier(43)), verifier(43), true},
		{"128 characters", s256Of(verifier(128)), verifier(128), true},
		{"42 characters, its challenge", s256Of(verifier(42)), verifier(42), false},
		{"129 characters, its challenge", s256Of(verifier(129)), verifier(129), false},
		{"a bad character, its challenge", s256Of(rfcVerifier[:42] + "+"), rfcVerifier[:42] + "+", false},
		{"a space, its challenge", s256Of(rfcVerifier + " "), rfcVerifier + " ", false},
		{"another verifier", rfcChallenge, verifier(43), false},
		{"the challenge as the verifier (plain)", rfcChallenge, rfcChallenge, false},
		{"challenge without verifier", rfcChallenge, "", false},
		{"verifier without challenge", "", rfcVerifier, false},
		{"neither", "", "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			q := authQuery(confID, confRedirect)
			if tt.challenge != "" {
				q.Set("code_challenge", tt.challenge)
				q.Set("code_challenge_method", "S256")
			}
			code := f.login(t, q, "wxcode-pkce")
			if g := openCode(t, f.p, code); g.Challenge != tt.challenge {
				t.Fatalf("the code's challenge = %q, want %q", g.Challenge, tt.challenge)
			}
			resp, terr := f.tryRedeem(tokenForm(code, confRedirect, "code_verifier", tt.verifier), basic(confID, confSecret))
			if tt.ok {
				if terr != nil || resp == nil {
					t.Fatalf("Redeem(verifier %q) = %+v; want tokens", tt.verifier, terr)
				}
				return
			}
			if terr == nil || terr.Code != "invalid_grant" || terr.Status != 400 {
				t.Fatalf("Redeem(verifier %q for challenge %q) = %+v, %+v; want 400 invalid_grant", tt.verifier, tt.challenge, resp, terr)
			}
			if tt.verifier != "" && (strings.Contains(terr.Error(), tt.verifier) || strings.Contains(terr.Err.Error(), tt.verifier)) {
				t.Errorf("the error %q (%v) holds the code_verifier", terr, terr.Err)
			}
		})
	}
}
