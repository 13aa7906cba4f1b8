package wechat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// The paths of the APIs under the base URL.
const (
	Code2SessionPath = "/sns/jscode2session"
	StableTokenPath  = "/cgi-bin/stable_token"
	PhoneNumberPath  = "/wxa/business/getuserphonenumber"
)

// Session is what a mini-program login yields.
type Session struct {
	OpenID  string
	UnionID string // "" when the mini-program is not bound to an Open Platform account
}

// c2sQuery is the fixed part of app's code2Session query, escaped once.
func c2sQuery(a App) string {
	return url.Values{"appid": {a.ID}, "secret": {a.Secret}, "grant_type": {"authorization_code"}}.Encode()
}

// Code2Session exchanges a login code of the mini-program appID for the
// user's openid. It retries only where WeChat cannot have consumed the code
// (errcode -1, failure to connect), at most twice, all within the timeout.
func (c *Client) Code2Session(ctx context.Context, appID, code string) (Session, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	q, ok := c.c2sQuery[appID]
	if !ok {
		q = c2sQuery(App{appID, c.secret(appID)})
	}
	u := c.base + Code2SessionPath + "?" + q + "&js_code=" + url.QueryEscape(code)
	var r code2SessionReply
	err := c.retry(ctx, func() error {
		return c.do(ctx, APICode2Session, u, nil, &r, c.secret(appID), code)
	})
	if err != nil {
		return Session{}, err
	}
	if r.OpenID == "" {
		return Session{}, fmt.Errorf("%s: %w: success without openid", APICode2Session, ErrBadAnswer)
	}
	return Session{OpenID: r.OpenID, UnionID: r.UnionID}, nil
}

// stableToken fetches app's access_token with cgi-bin/stable_token in its
// normal mode, which hands every caller the same valid token: replicas
// share nothing and invalidate nobody's token. It never forces a refresh.
func (c *Client) stableToken(ctx context.Context, appID string) (token string, expiresIn time.Duration, err error) {
	body, _ := json.Marshal(stableTokenRequest{
		GrantType: "client_credential", AppID: appID, Secret: c.secret(appID), ForceRefresh: false,
	})
	var r stableTokenReply
	err = c.retry(ctx, func() error {
		return c.do(ctx, APIStableToken, c.base+StableTokenPath, body, &r, c.secret(appID))
	})
	if err != nil {
		return "", 0, err
	}
	if r.AccessToken == "" || r.ExpiresIn <= 0 {
		return "", 0, fmt.Errorf("%s: %w: success without access_token or expires_in", APIStableToken, ErrBadAnswer)
	}
	return r.AccessToken, time.Duration(r.ExpiresIn) * time.Second, nil
}

// stableTokenRequest is stable_token's JSON body.
type stableTokenRequest struct {
	GrantType    string `json:"grant_type"`
	AppID        string `json:"appid"`
	Secret       string `json:"secret"`
	ForceRefresh bool   `json:"force_refresh"`
}

// phoneRequest is getuserphonenumber's JSON body.
type phoneRequest struct {
	Code   string `json:"code"`
	OpenID string `json:"openid"`
}

// Phone is the phone number WeChat verified for a user.
type Phone struct {
	CountryCode     string // digits, e.g. 86
	PurePhoneNumber string // digits, without the country code
}

// E164 is the number as +, country code and number.
func (p Phone) E164() string { return "+" + p.CountryCode + p.PurePhoneNumber }

// PhoneNumber exchanges a getPhoneNumber code for the number of the user
// openID of the mini-program appID, with the app's cached access_token.
// When WeChat says that token is no longer valid (another system forced a
// refresh, or it expired early), it is dropped, fetched once more in
// normal mode, and the call retried once. All of it happens within the
// timeout.
func (c *Client) PhoneNumber(ctx context.Context, appID, openID, code string) (Phone, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	body, _ := json.Marshal(phoneRequest{Code: code, OpenID: openID})
	for attempt := 1; ; attempt++ {
		token, err := c.tokens.get(ctx, appID)
		if err != nil {
			return Phone{}, err
		}
		p, err := c.phoneNumber(ctx, token, appID, body, code)
		if we, ok := errors.AsType[*Error](err); ok && attempt == 1 && we.staleAccessToken() {
			c.tokens.drop(appID, token)
			continue
		}
		return p, err
	}
}

// phoneNumber is one exchange (and its retries on -1) with getuserphonenumber.
func (c *Client) phoneNumber(ctx context.Context, accessToken, appID string, body []byte, code string) (Phone, error) {
	u := c.base + PhoneNumberPath + "?access_token=" + url.QueryEscape(accessToken)
	var r phoneReply
	err := c.retry(ctx, func() error {
		return c.do(ctx, APIPhoneNumber, u, body, &r, accessToken, code, c.secret(appID))
	})
	if err != nil {
		return Phone{}, err
	}
	p := Phone{CountryCode: string(r.PhoneInfo.CountryCode), PurePhoneNumber: r.PhoneInfo.PurePhoneNumber}
	switch {
	case p.PurePhoneNumber == "" || p.CountryCode == "":
		return Phone{}, fmt.Errorf("%s: %w: no phone_info with purePhoneNumber and countryCode", APIPhoneNumber, ErrBadAnswer)
	case !isDigits(p.PurePhoneNumber) || !isDigits(p.CountryCode):
		return Phone{}, fmt.Errorf("%s: %w: phone number or country code is not digits", APIPhoneNumber, ErrBadAnswer)
	case r.PhoneInfo.Watermark.AppID != appID:
		return Phone{}, fmt.Errorf("%s: %w: watermark is for another AppID", APIPhoneNumber, ErrBadAnswer)
	}
	return p, nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
