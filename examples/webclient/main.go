// Command webclient is a website that logs its users in with WeChat through
// wxlogin, as any OpenID Connect client does: a public client with PKCE,
// registered as "demo-web" in examples/oidc-clients.json. Try it with the
// mock WeChat:
//
//	go run . -mock -oidc-clients examples/oidc-clients.json     # wxlogin on :2020
//	go run ./examples/webclient                                 # this site on :5173
//
// then open http://localhost:5173 and log in. It shows what wxlogin
// answered: the id_token's claims and /userinfo. (A real site verifies the
// id_token's signature with the JWKS; an OIDC library does that for you.)
package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"html/template"
	"io"
	"log"
	"net/http"
	"net/url"
	"strings"
)

func main() {
	issuer := flag.String("issuer", "http://localhost:2020", "wxlogin's TOKEN_ISSUER")
	addr := flag.String("addr", "localhost:5173", "where this site listens")
	flag.Parse()
	const clientID, redirectURI = "demo-web", "http://localhost:5173/callback"

	http.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		page.Execute(w, map[string]any{"Hints": []string{"", "alice", "bob", "mock-invalid", "mock-nounionid", "mock-snapshot"}})
	})
	http.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		state, verifier := rand.Text(), rand.Text()+rand.Text()
		sum := sha256.Sum256([]byte(verifier))
		// The state and the verifier wait for /callback in a cookie.
		http.SetCookie(w, &http.Cookie{Name: "login", Value: state + "." + verifier, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: 600})
		q := url.Values{"client_id": {clientID}, "redirect_uri": {redirectURI}, "response_type": {"code"}, "scope": {"openid"},
			"state": {state}, "nonce": {rand.Text()}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])},
			"code_challenge_method": {"S256"}}
		if hint := r.URL.Query().Get("hint"); hint != "" {
			q.Set("login_hint", hint) // mock mode: the WeChat code, to show each outcome
		}
		http.Redirect(w, r, *issuer+"/authorize?"+q.Encode(), http.StatusFound)
	})
	http.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("login")
		if err != nil {
			http.Error(w, "this login was not started here", http.StatusBadRequest)
			return
		}
		state, verifier, _ := strings.Cut(c.Value, ".")
		if r.URL.Query().Get("state") != state {
			http.Error(w, "this login was not started here", http.StatusBadRequest)
			return
		}
		if e := r.URL.Query().Get("error"); e != "" {
			page.Execute(w, map[string]any{"Error": e + ": " + r.URL.Query().Get("error_description")})
			return
		}
		form := url.Values{"grant_type": {"authorization_code"}, "code": {r.URL.Query().Get("code")},
			"redirect_uri": {redirectURI}, "client_id": {clientID}, "code_verifier": {verifier}}
		var tok struct {
			AccessToken string `json:"access_token"`
			IDToken     string `json:"id_token"`
			Error       string `json:"error"`
		}
		if err := call(http.MethodPost, *issuer+"/token", "", form, &tok); err != nil || tok.Error != "" {
			http.Error(w, fmt.Sprintf("token: %v %s", err, tok.Error), http.StatusBadGateway)
			return
		}
		var info map[string]any
		if err := call(http.MethodGet, *issuer+"/userinfo", tok.AccessToken, nil, &info); err != nil {
			http.Error(w, "userinfo: "+err.Error(), http.StatusBadGateway)
			return
		}
		parts := strings.Split(tok.IDToken, ".")
		claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
		page.Execute(w, map[string]any{"Claims": string(claims), "UserInfo": info})
	})
	log.Printf("open http://%s (wxlogin at %s)", *addr, *issuer)
	log.Fatal(http.ListenAndServe(*addr, nil))
}

// call sends a form (POST) or a Bearer token (GET) and decodes the JSON
// answer into v.
func call(method, u, bearer string, form url.Values, v any) error {
	req, err := http.NewRequest(method, u, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return json.Unmarshal(body, v)
}

var page = template.Must(template.New("").Parse(`<!doctype html><meta charset="utf-8"><title>Log in with WeChat — demo</title>
<body style="font:16px sans-serif;max-width:40em;margin:2em auto">
{{if .Claims}}<h1>Logged in</h1><p>id_token claims:</p><pre>{{.Claims}}</pre><p>/userinfo:</p><pre>{{.UserInfo}}</pre><p><a href="/">again</a></p>
{{else if .Error}}<h1>Login failed</h1><p>{{.Error}}</p><p><a href="/">again</a></p>
{{else}}<h1>Demo site</h1><p>Log in with WeChat (mock mode: choose the WeChat user by its code):</p>
<ul>{{range .Hints}}<li><a href="/login?hint={{.}}">{{if .}}{{.}}{{else}}a new user{{end}}</a></li>{{end}}</ul>{{end}}`))
