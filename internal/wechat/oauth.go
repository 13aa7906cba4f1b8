package wechat

import (
	"context"
	"fmt"
)

// OAuthTokenPath is the web login's code exchange: the website app's and
// the official account's.
const OAuthTokenPath = "/sns/oauth2/access_token"

// WebUser is who logged in on the web.
type WebUser struct {
	OpenID       string // of the website app or the official account
	UnionID      string // "" when the app is not bound to an Open Platform account
	Scope        string
	SnapshotUser bool // a user of WeChat's "snapshot page": virtual, not a real login
}

// oauthReply is the part of sns/oauth2/access_token's answer wxlogin
// reads. WeChat's own access_token and refresh_token for the user are
// left out on purpose: wxlogin has no use for them, and what is never held
// cannot leak.
type oauthReply struct {
	status
	OpenID       string `json:"openid"`
	UnionID      string `json:"unionid"`
	Scope        string `json:"scope"`
	SnapshotUser int64  `json:"is_snapshotuser"`
}

func (r *oauthReply) read(b []byte) error { return readReply(oauthReader, b, r, &r.status) }

// OAuthAccessToken exchanges a web login's code (website app or official
// account appID) for the user. Like Code2Session it retries only where
// WeChat cannot have consumed the code, within the timeout.
func (c *Client) OAuthAccessToken(ctx context.Context, appID, code string) (WebUser, error) {
	var r oauthReply
	if err := c.exchange(ctx, APIOAuthToken, OAuthTokenPath, "code", appID, code, &r); err != nil {
		return WebUser{}, err
	}
	if r.OpenID == "" {
		return WebUser{}, fmt.Errorf("%s: %w: success without openid", APIOAuthToken, ErrBadAnswer)
	}
	return WebUser{OpenID: r.OpenID, UnionID: r.UnionID, Scope: r.Scope, SnapshotUser: r.SnapshotUser == 1}, nil
}
