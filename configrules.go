package main

import (
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"wxlogin/internal/oidc"
	"wxlogin/internal/token"
	"wxlogin/internal/wechat"
)

// join applies the rules that join several settings: the listen port,
// TLS pairs, the mini-programs and their secrets, the token keys, and the
// web login.
func (c *Config) join(n names) error {
	if c.port != "" && !n["ADDR"].given {
		c.Addr = ":" + c.port
	}
	switch {
	case c.TLSCert != "" && c.TLSKey == "":
		return &configError{n.of("TLS_KEY_FILE"), "required when " + n.of("TLS_CERT_FILE") + " is set (both or neither)"}
	case c.TLSCert == "" && c.TLSKey != "":
		return &configError{n.of("TLS_CERT_FILE"), "required when " + n.of("TLS_KEY_FILE") + " is set (both or neither)"}
	}
	if c.Healthcheck {
		return nil // it needs to know TLS is on, not the certificate
	}
	if c.TLSCert != "" {
		var err error
		if c.TLSCertificate, err = loadKeyPair(c.TLSCert, c.TLSKey, n.of("TLS_CERT_FILE"), n.of("TLS_KEY_FILE")); err != nil {
			return err
		}
	}
	if err := c.apps(n); err != nil {
		return err
	}
	if err := c.webApps(n); err != nil {
		return err
	}
	if err := c.tokenKeys(n); err != nil {
		return err
	}
	if err := c.clients(n); err != nil {
		return err
	}
	c.warnLooseModes(n)
	return nil
}

// warnLooseModes warns of each secret file that others can read.
func (c *Config) warnLooseModes(n names) {
	files := map[string]string{"TLS_KEY_FILE": c.TLSKey}
	if !c.Mock { // mock mode reads no other secret
		maps.Copy(files, map[string]string{
			"WX_SECRET_FILE": c.secretFile, "TOKEN_SECRET_FILE": c.tokenSecretFile, "TOKEN_KEY_FILE": c.keyFile,
			"WX_WEB_SECRET_FILE": c.web.secretFile, "WX_OA_SECRET_FILE": c.oa.secretFile,
		})
	}
	if c.secretDir != "" && !c.Mock {
		for _, a := range c.wechatApps() {
			files["WX_SECRET_DIR ("+a.ID+")"] = filepath.Join(c.secretDir, a.ID)
		}
	}
	var names []string
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if files[name] == "" {
			continue
		}
		if loose := looseMode(files[name]); loose != "" {
			setting, _, _ := strings.Cut(name, " ")
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s: %s is %s: make it readable by this user only (chmod 600, or defaultMode 0400 for a Kubernetes Secret)",
				strings.Replace(name, setting, n.of(setting), 1), files[name], loose))
		}
	}
}

// webLogin reports whether the OpenID Connect provider is on.
func (c *Config) webLogin() bool { return c.clientsFile != "" }

// apps reads the mini-programs' AppIDs and their secrets, and the base URL
// they are used with. Mock mode needs neither secrets nor a base URL.
func (c *Config) apps(n names) error {
	seen := map[string]bool{}
	for _, id := range c.AppIDs {
		if seen[id] {
			return &configError{n.of("WX_APPID"), fmt.Sprintf("%q is listed twice", id)}
		}
		seen[id] = true
		if !c.validAppID(id) {
			return &configError{n.of("WX_APPID"), fmt.Sprintf("%q is not an AppID (wx and 16 lowercase hex digits)", id)}
		}
	}
	if c.Mock {
		ids := c.AppIDs
		if len(ids) == 0 {
			// A mini-program with its real AppID in project.config.json
			// logs in against -mock unchanged.
			ids, c.AnyApp = []string{mockAppID}, true
		}
		for _, id := range ids {
			c.Apps = append(c.Apps, wechat.App{ID: id, Secret: wechat.MockSecret})
		}
		if c.secret != "" || c.secretFile != "" || c.secretDir != "" {
			c.Warnings = append(c.Warnings, "mock mode ignores WX_SECRET, WX_SECRET_FILE and WX_SECRET_DIR")
		}
		if n["WX_API_BASE_URL"].given {
			c.Warnings = append(c.Warnings, "mock mode ignores "+n.of("WX_API_BASE_URL"))
		}
		return nil
	}
	var err error
	if c.BaseURL, err = parseBaseURL(c.baseURL); err != nil {
		return &configError{n.of("WX_API_BASE_URL"), err.Error()}
	}
	if strings.HasPrefix(c.BaseURL, "http://") {
		c.Warnings = append(c.Warnings, "WeChat API base URL is plain http: the AppSecret travels unencrypted")
	}
	ids := c.AppIDs
	if len(ids) == 0 {
		if c.webLogin() {
			return nil // the web login alone: /openid and /phonenumber answer 404
		}
		return &configError{"WX_APPID", "required (or run with -mock to try the service without credentials)"}
	}
	if len(ids) > 1 {
		for env, v := range map[string]string{"WX_SECRET": c.secret, "WX_SECRET_FILE": c.secretFile} {
			if v != "" {
				return &configError{n.of(env), fmt.Sprintf("one secret for %d AppIDs: put one file per AppID in WX_SECRET_DIR", len(ids))}
			}
		}
		if c.secretDir == "" {
			return &configError{"WX_SECRET_DIR", fmt.Sprintf("required for %d AppIDs: a directory with one AppSecret file per AppID", len(ids))}
		}
	}
	if c.secretDir != "" {
		if err := c.checkSecretDir(n); err != nil {
			return err
		}
	}
	if c.secret != "" || c.secretFile != "" {
		// One mini-program's secret given directly; the directory, if
		// any, holds the web apps' secrets only.
		if c.secretDir != "" {
			if !c.webLogin() {
				return &configError{problem: n.of("WX_SECRET_DIR") + " and WX_SECRET or WX_SECRET_FILE are both set: give only one"}
			}
			if _, err := os.Stat(filepath.Join(c.secretDir, ids[0])); err == nil {
				return &configError{problem: fmt.Sprintf("AppID %s has two secrets: WX_SECRET or WX_SECRET_FILE, and a file in %s; give only one", ids[0], n.of("WX_SECRET_DIR"))}
			}
		}
		secret, _, err := secretFrom(c.secret, c.secretFile, "WX_SECRET", n.of("WX_SECRET_FILE"))
		if err != nil {
			return err
		}
		c.Apps = []wechat.App{{ID: ids[0], Secret: secret}}
		return nil
	}
	if c.secretDir == "" {
		return &configError{"WX_SECRET", "required: set WX_SECRET, WX_SECRET_FILE or WX_SECRET_DIR (or run with -mock)"}
	}
	for _, id := range ids {
		s, err := readSecretFile(filepath.Join(c.secretDir, id))
		if err != nil {
			return &configError{n.of("WX_SECRET_DIR"), "AppID " + id + ": " + err.Error()}
		}
		c.Apps = append(c.Apps, wechat.App{ID: id, Secret: s})
	}
	return nil
}

func (c *Config) checkSecretDir(n names) error {
	if fi, err := os.Stat(c.secretDir); err != nil || !fi.IsDir() {
		return &configError{n.of("WX_SECRET_DIR"), fmt.Sprintf("%s is not a readable directory", c.secretDir)}
	}
	return nil
}

// validAppID reports whether id is an AppID here: the shape of a real one,
// or in mock mode any 1–32 of A-Z a-z 0-9 - _.
func (c *Config) validAppID(id string) bool {
	if c.Mock {
		return wechat.IsMockAppID(id)
	}
	return wechat.IsAppID(id)
}

// Mock mode's web apps.
const (
	mockWebAppID = "wxmock-web"
	mockOAAppID  = "wxmock-oa"
)

// webApps reads the web login's WeChat apps: the website app and the
// official account, each with its secret (its own settings, or
// WX_SECRET_DIR/<AppID>).
func (c *Config) webApps(n names) error {
	if !c.webLogin() {
		if c.web.id != "" || c.oa.id != "" {
			c.Warnings = append(c.Warnings, "WX_WEB_APPID and WX_OA_APPID are used only by the web login, which is off: set OIDC_CLIENTS_FILE")
		}
		return nil
	}
	if c.Mock {
		c.WebApp = wechat.App{ID: orDefault(c.web.id, mockWebAppID), Secret: wechat.MockSecret}
		c.OAApp = wechat.App{ID: orDefault(c.oa.id, mockOAAppID), Secret: wechat.MockSecret}
		return nil
	}
	if c.web.id == "" && c.oa.id == "" {
		return &configError{n.of("OIDC_CLIENTS_FILE"), "the web login needs WX_WEB_APPID (website app, QR code) or WX_OA_APPID (official account), or both"}
	}
	var err error
	if c.WebApp, err = c.webApp(n, c.web, "WX_WEB_APPID", "WX_WEB_SECRET", "WX_WEB_SECRET_FILE"); err != nil {
		return err
	}
	c.OAApp, err = c.webApp(n, c.oa, "WX_OA_APPID", "WX_OA_SECRET", "WX_OA_SECRET_FILE")
	return err
}

func (c *Config) webApp(n names, w webApp, idEnv, secretEnv, fileEnv string) (wechat.App, error) {
	if w.id == "" {
		if w.secret != "" || w.secretFile != "" {
			return wechat.App{}, &configError{n.of(idEnv), "required when " + secretEnv + " or " + n.of(fileEnv) + " is set"}
		}
		return wechat.App{}, nil
	}
	if !wechat.IsAppID(w.id) {
		return wechat.App{}, &configError{n.of(idEnv), fmt.Sprintf("%q is not an AppID (wx and 16 lowercase hex digits)", w.id)}
	}
	secret, _, err := secretFrom(w.secret, w.secretFile, secretEnv, n.of(fileEnv))
	if err != nil {
		return wechat.App{}, err
	}
	if secret == "" && c.secretDir != "" {
		if err := c.checkSecretDir(n); err != nil {
			return wechat.App{}, err
		}
		if secret, err = readSecretFile(filepath.Join(c.secretDir, w.id)); err != nil {
			return wechat.App{}, &configError{n.of("WX_SECRET_DIR"), "AppID " + w.id + ": " + err.Error()}
		}
	}
	if secret == "" {
		return wechat.App{}, &configError{secretEnv, "required for " + w.id + ": set " + secretEnv + ", " + n.of(fileEnv) + ", or a file " + w.id + " in WX_SECRET_DIR"}
	}
	return wechat.App{ID: w.id, Secret: secret}, nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// tokenKeys reads TOKEN_SECRET's HMAC keys and orders every key: the key
// file's first, so that it signs, then the HMAC keys, which still verify.
// The web login needs a URL issuer and public keys: mock mode makes both
// up when they are not given.
func (c *Config) tokenKeys(n names) error {
	if c.Mock {
		// Its users are a function of the code: anyone can mint any of
		// them. Signed with a real key, they would be valid wherever that
		// key is trusted.
		for _, env := range []string{"TOKEN_SECRET", "TOKEN_SECRET_FILE", "TOKEN_KEY_FILE"} {
			if n[env].given {
				return &configError{n.of(env), "mock mode signs with keys of its own, never a real one: its users are fake, and a token of theirs must not be accepted anywhere else; unset it, or leave mock mode"}
			}
		}
	}
	keys, from, err := secretFrom(c.tokenSecret, c.tokenSecretFile, "TOKEN_SECRET", n.of("TOKEN_SECRET_FILE"))
	if err != nil {
		return err
	}
	if c.webLogin() && c.Mock {
		if !n["TOKEN_ISSUER"].given {
			_, port, _ := net.SplitHostPort(c.Addr)
			if port == "0" {
				return &configError{n.of("ADDR"), "mock mode's web login names its issuer http://localhost:PORT after ADDR's port: give a port other than 0, or set TOKEN_ISSUER"}
			}
			c.TokenIssuer = "http://localhost:" + port
		}
		// An RSA key (RS256, OpenID Connect's default) signs; an ES256
		// key beside it serves clients that ask for ES256 id_tokens.
		for _, alg := range []string{token.RS256, token.ES256} {
			pem, err := token.GenerateKey(alg)
			var keys []*token.Key
			if err == nil {
				keys, err = token.ParseKeys(pem)
			}
			if err != nil {
				return fmt.Errorf("mock mode: making an %s key: %w", alg, err)
			}
			c.KeyFile = append(c.KeyFile, keys...)
		}
		c.Warnings = append(c.Warnings, "mock mode: the web login's tokens are signed with keys made at start (RS256, and ES256 for clients that ask for it); clients that cache the JWKS must fetch it again after a restart")
	}
	if c.webLogin() {
		switch {
		case !strings.HasPrefix(c.TokenIssuer, "https://") && !strings.HasPrefix(c.TokenIssuer, "http://"):
			return &configError{n.of("TOKEN_ISSUER"), "the web login needs the issuer's URL, such as https://login.example.com (where wxlogin is reached)"}
		case len(c.KeyFile) == 0:
			return &configError{n.of("TOKEN_KEY_FILE"), "required by the web login: id_tokens are signed with a public key (wxlogin -genkey -alg RS256 makes one)"}
		case !slices.ContainsFunc(c.KeyFile, func(k *token.Key) bool { return k.Alg() == token.RS256 }):
			return &configError{n.of("TOKEN_KEY_FILE"), "the web login needs an RSA key in it: OpenID Connect requires RS256 among a provider's id_token algorithms (add one: wxlogin -genkey -alg RS256 >> the file; the first key still signs the other tokens)"}
		}
	}
	c.TokenKeys = append(c.TokenKeys, c.KeyFile...)
	if keys != "" {
		for i, k := range strings.Split(keys, ",") {
			key, err := token.HMACKey([]byte(strings.TrimSpace(k)))
			if err != nil {
				// Say which key and what is wrong, never the key itself.
				return &configError{from, fmt.Sprintf("key %d %v", i+1, err)}
			}
			c.TokenKeys = append(c.TokenKeys, key)
		}
	}
	if c.TokenIssuer != defaultIssuer && strings.Contains(c.TokenIssuer, "://") && len(c.KeyFile) == 0 {
		c.Warnings = append(c.Warnings, "TOKEN_ISSUER is a URL but TOKEN_KEY_FILE is not set: OpenID discovery needs public keys, so it is off")
	}
	if !c.Mock && len(c.TokenKeys) == 0 {
		c.Warnings = append(c.Warnings, "login tokens are off: set TOKEN_SECRET (HS256) or TOKEN_KEY_FILE (ES256/EdDSA/RS256); logins return no token and /session, /phonenumber answer 404")
	}
	if c.Mock && len(c.TokenKeys) == 0 {
		c.TokenKeys, c.MockKey = []*token.Key{token.MockKey()}, true
	}
	return nil
}

// clients reads the clients file, now that the keys its id_token_alg
// entries name are known.
func (c *Config) clients(n names) error {
	if !c.webLogin() {
		return nil
	}
	data, err := os.ReadFile(c.clientsFile)
	if err != nil {
		return &configError{n.of("OIDC_CLIENTS_FILE"), err.Error()}
	}
	var algs []string
	for _, k := range c.KeyFile {
		if !slices.Contains(algs, k.Alg()) {
			algs = append(algs, k.Alg())
		}
	}
	if c.Clients, err = oidc.ParseClients(data, algs); err != nil {
		return &configError{n.of("OIDC_CLIENTS_FILE"), c.clientsFile + ": " + err.Error()}
	}
	for _, cl := range c.Clients {
		for _, a := range c.Apps {
			if cl.ID == a.ID {
				return &configError{n.of("OIDC_CLIENTS_FILE"), fmt.Sprintf("client_id %q is also a mini-program's AppID: a token's aud would name both", cl.ID)}
			}
		}
	}
	return nil
}
