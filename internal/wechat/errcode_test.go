package wechat

import (
	"errors"
	"fmt"
	"testing"
)

// TestMisconfigured: the errcodes that say the service's own setup is
// wrong, for each API. stable_token needs no API permission (48001 is not
// ours to fix there); code2Session does not answer 89503.
func TestMisconfigured(t *testing.T) {
	t.Parallel()
	always := []int{CodeInvalidGrantType, CodeInvalidAppID, CodeInvalidSecret, CodeIPNotAllowed, CodeAppIDMissing, CodeSecretMissing}
	never := []int{0, CodeBusy, CodeInvalidCredential, CodeInvalidAccessToken, CodeInvalidCode, CodeCodeUsed, CodeHighRisk,
		CodeSecretFrozen, CodeAccessTokenExpired, CodeCodeExpired, CodeQuotaReached, CodeRateLimited, CodeDataFormat, 12345}
	tests := []struct {
		api           string
		misconfigured []int
	}{
		{APICode2Session, append(always, CodeUnauthorized)},
		{APIStableToken, append(always, CodeIPConfirmPending)},
		{APIPhoneNumber, append(always, CodeUnauthorized, CodeIPConfirmPending)},
		{APIOAuthToken, append(always, CodeUnauthorized, CodeIPConfirmPending)},
	}
	for _, tt := range tests {
		t.Run(tt.api, func(t *testing.T) {
			t.Parallel()
			want := map[int]bool{}
			for _, c := range tt.misconfigured {
				want[c] = true
			}
			for _, c := range append(append(never, CodeUnauthorized, CodeIPConfirmPending), always...) {
				e := &Error{API: tt.api, Code: c}
				if got := e.Misconfigured(); got != want[c] {
					t.Errorf("(&Error{API: %q, Code: %d}).Misconfigured() = %v, want %v", tt.api, c, got, want[c])
				}
			}
		})
	}
}

// TestStaleAccessToken: the errcodes after which the access_token is
// dropped and fetched again.
func TestStaleAccessToken(t *testing.T) {
	t.Parallel()
	stale := map[int]bool{CodeInvalidCredential: true, CodeInvalidAccessToken: true, CodeAccessTokenExpired: true}
	for _, c := range []int{CodeBusy, CodeInvalidCredential, CodeInvalidGrantType, CodeInvalidAppID, CodeInvalidAccessToken,
		CodeInvalidCode, CodeInvalidSecret, CodeAccessTokenExpired, CodeQuotaReached, CodeRateLimited, CodeUnauthorized} {
		if got := (&Error{API: APIPhoneNumber, Code: c}).staleAccessToken(); got != stale[c] {
			t.Errorf("(&Error{Code: %d}).staleAccessToken() = %v, want %v", c, got, stale[c])
		}
	}
}

// TestErrcode: the errcode an error carries, wrapped or not, else 0.
func TestErrcode(t *testing.T) {
	t.Parallel()
	we := &Error{API: APICode2Session, Code: CodeInvalidCode, Msg: "invalid code, rid: 1"}
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{we, CodeInvalidCode},
		{fmt.Errorf("login: %w", we), CodeInvalidCode},
		{&Error{Code: CodeBusy}, CodeBusy},
		{ErrBadAnswer, 0},
		{errors.New("other"), 0},
	}
	for _, tt := range tests {
		if got := Errcode(tt.err); got != tt.want {
			t.Errorf("Errcode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
	if got, want := we.Error(), "code2session: wechat errcode 40029: invalid code, rid: 1"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
