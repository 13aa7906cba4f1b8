package wechat

import (
	"errors"
	"strconv"
)

// WeChat's errcodes that wxlogin acts on. Every number WeChat answers with
// is named here, once: the client, the service's status table and the fake
// WeChat use these names.
const (
	CodeBusy               = -1    // system busy: try again
	CodeInvalidCredential  = 40001 // access_token invalid (e.g. replaced by a forced refresh elsewhere)
	CodeInvalidGrantType   = 40002
	CodeInvalidAppID       = 40013
	CodeInvalidAccessToken = 40014 // access_token malformed
	CodeInvalidCode        = 40029
	CodeInvalidSecret      = 40125
	CodeCodeUsed           = 40163
	CodeIPNotAllowed       = 40164 // caller IP not on the AppID's API IP whitelist
	CodeHighRisk           = 40226 // high-risk user blocked
	CodeSecretFrozen       = 40243 // AppSecret frozen
	CodeAppIDMissing       = 41002
	CodeSecretMissing      = 41004
	CodeAccessTokenExpired = 42001
	CodeCodeExpired        = 42003 // a web authorization code expired
	CodeQuotaReached       = 45009 // daily quota of the API
	CodeRateLimited        = 45011 // per-minute frequency limit
	CodeDataFormat         = 47001
	CodeUnauthorized       = 48001 // the AppID lacks the API's permission
	CodeIPConfirmPending   = 89503 // a call from a new IP waits for the administrator's confirmation
)

// The WeChat APIs, as errors and metrics name them.
const (
	APICode2Session = "code2session"
	APIStableToken  = "stable_token"
	APIPhoneNumber  = "getuserphonenumber"
	APIOAuthToken   = "sns_oauth2_access_token"
)

// Error is an answer from WeChat that carries a non-zero errcode.
type Error struct {
	API  string // which API answered: APICode2Session, …
	Code int
	Msg  string // WeChat's errmsg, scrubbed of secrets: for the log, never for the client
}

func (e *Error) Error() string {
	return e.API + ": wechat errcode " + strconv.Itoa(e.Code) + ": " + e.Msg
}

// Misconfigured reports whether the errcode says the service's own setup is
// wrong (AppID, AppSecret, IP whitelist, permissions), not the request: an
// operator must act. stable_token's list has no 48001 (it needs no API
// permission).
func (e *Error) Misconfigured() bool {
	switch e.Code {
	case CodeInvalidGrantType, CodeInvalidAppID, CodeInvalidSecret, CodeIPNotAllowed,
		CodeAppIDMissing, CodeSecretMissing:
		return true
	case CodeUnauthorized:
		return e.API != APIStableToken
	case CodeIPConfirmPending:
		return e.API != APICode2Session
	}
	return false
}

// staleAccessToken reports whether WeChat refused the access_token itself:
// invalid (another system forced a refresh), malformed, or expired.
func (e *Error) staleAccessToken() bool {
	switch e.Code {
	case CodeInvalidCredential, CodeInvalidAccessToken, CodeAccessTokenExpired:
		return true
	}
	return false
}

// ErrBadAnswer marks answers that are not what the API promises: a non-200
// status, an oversized or malformed body, success without the fields
// wxlogin needs.
var ErrBadAnswer = errors.New("unexpected answer from wechat")

// Errcode is the WeChat errcode err carries, or 0.
func Errcode(err error) int {
	if we, ok := errors.AsType[*Error](err); ok {
		return we.Code
	}
	return 0
}

// IsAppID reports whether id has the shape of a real AppID: wx and 16
// lowercase hex digits.
func IsAppID(id string) bool {
	if len(id) != 18 || id[:2] != "wx" {
		return false
	}
	for i := 2; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
