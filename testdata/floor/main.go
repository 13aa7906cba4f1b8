// Command floor is the smallest program that does what a wxlogin login
// must do, for benchmarks to measure wxlogin's own process against. It
// checks nothing, logs nothing, retries nothing.
//
// POST /openid: read the code from a JSON body, call WeChat's code2Session
// through one tuned, shared transport, sign a login token (HS256, ES256
// or RS256, the claims encoded by hand), answer JSON.
//
// The web login, in the same spirit: GET /authorize sends the browser to
// WeChat's page; GET /callback exchanges WeChat's code
// (sns/oauth2/access_token) and keeps the user in memory under a code of
// its own; POST /token hands out an id_token and an access_token, signed
// with the key.
//
// Settings: ADDR, WX_API_BASE_URL, WX_APPID, WX_SECRET, and TOKEN_SECRET
// (HS256) or TOKEN_KEY_FILE (a PKCS#8 P-256 key: ES256, or RSA: RS256);
// for the web login also ISSUER, WX_OPEN_BASE_URL, WX_WEB_APPID and
// WX_WEB_SECRET.
package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"log"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"
)

var b64 = base64.RawURLEncoding

func main() {
	base, appID, secret := os.Getenv("WX_API_BASE_URL"), os.Getenv("WX_APPID"), os.Getenv("WX_SECRET")
	sign, alg := signer()
	header := b64.EncodeToString([]byte(`{"alg":"` + alg + `","typ":"JWT"}`))
	token := func(claims string) string {
		input := header + "." + b64.EncodeToString([]byte(claims))
		return input + "." + b64.EncodeToString(sign(input))
	}

	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 512, 512
	client := &http.Client{Transport: t}

	http.HandleFunc("POST /openid", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Code string `json:"code"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		q := url.Values{"appid": {appID}, "secret": {secret}, "js_code": {req.Code}, "grant_type": {"authorization_code"}}
		var s struct {
			OpenID  string `json:"openid"`
			UnionID string `json:"unionid"`
		}
		if !get(client, base+"/sns/jscode2session?"+q.Encode(), &s) || s.OpenID == "" {
			http.Error(w, "upstream", http.StatusBadGateway)
			return
		}
		now := time.Now().Unix()
		tk := token(`{"sub":"` + s.OpenID + `","iss":"wxlogin","aud":"` + appID + `","iat":` + strconv.FormatInt(now, 10) +
			`,"exp":` + strconv.FormatInt(now+7200, 10) + `,"unionid":"` + s.UnionID + `"}`)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"openid": s.OpenID, "unionid": s.UnionID, "token": tk, "expires_in": 7200})
	})

	issuer, openBase := os.Getenv("ISSUER"), os.Getenv("WX_OPEN_BASE_URL")
	webAppID, webSecret := os.Getenv("WX_WEB_APPID"), os.Getenv("WX_WEB_SECRET")
	type login struct{ client, redirect, nonce, state, openid, unionid string }
	var mu sync.Mutex
	pending := map[string]login{} // by WeChat's state, then by our code
	http.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		state := rand.Text()
		mu.Lock()
		pending[state] = login{client: q.Get("client_id"), redirect: q.Get("redirect_uri"), nonce: q.Get("nonce"), state: q.Get("state")}
		mu.Unlock()
		http.Redirect(w, r, openBase+"/connect/qrconnect?appid="+webAppID+"&redirect_uri="+url.QueryEscape(issuer+"/callback")+
			"&response_type=code&scope=snsapi_login&state="+state+"#wechat_redirect", http.StatusFound)
	})
	http.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		mu.Lock()
		l := pending[q.Get("state")]
		delete(pending, q.Get("state"))
		mu.Unlock()
		wq := url.Values{"appid": {webAppID}, "secret": {webSecret}, "code": {q.Get("code")}, "grant_type": {"authorization_code"}}
		var u struct {
			OpenID  string `json:"openid"`
			UnionID string `json:"unionid"`
		}
		if !get(client, base+"/sns/oauth2/access_token?"+wq.Encode(), &u) || u.UnionID == "" {
			http.Error(w, "upstream", http.StatusBadGateway)
			return
		}
		l.openid, l.unionid = u.OpenID, u.UnionID
		code := rand.Text()
		mu.Lock()
		pending[code] = l
		mu.Unlock()
		http.Redirect(w, r, l.redirect+"?code="+code+"&state="+url.QueryEscape(l.state), http.StatusFound)
	})
	http.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		code := r.PostFormValue("code")
		mu.Lock()
		l, ok := pending[code]
		delete(pending, code)
		mu.Unlock()
		if !ok {
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
			return
		}
		now := strconv.FormatInt(time.Now().Unix(), 10)
		exp := strconv.FormatInt(time.Now().Unix()+7200, 10)
		common := `{"sub":"` + l.unionid + `","iss":"` + issuer + `","aud":"` + l.client + `","iat":` + now + `,"exp":` + exp +
			`,"openid":"` + l.openid + `","appid":"` + webAppID + `"`
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"access_token": token(common + `,"unionid":"` + l.unionid + `","scope":"openid"}`), "token_type": "Bearer", "expires_in": 7200,
			"id_token": token(common + `,"nonce":"` + l.nonce + `","auth_time":` + now + `}`), "scope": "openid",
		})
	})
	log.Fatal(http.ListenAndServe(os.Getenv("ADDR"), nil))
}

// get fetches u and decodes its JSON answer into v.
func get(client *http.Client, u string, v any) bool {
	resp, err := client.Get(u)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v) == nil
}

// signer returns the token's signature function and algorithm.
func signer() (func(string) []byte, string) {
	if file := os.Getenv("TOKEN_KEY_FILE"); file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			log.Fatal(err)
		}
		block, _ := pem.Decode(data)
		if block == nil {
			log.Fatal("TOKEN_KEY_FILE: no PEM block")
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			log.Fatal(err)
		}
		if key, ok := k.(*rsa.PrivateKey); ok {
			return func(input string) []byte {
				h := sha256.Sum256([]byte(input))
				sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, h[:])
				if err != nil {
					log.Fatal(err)
				}
				return sig
			}, "RS256"
		}
		key := k.(*ecdsa.PrivateKey)
		return func(input string) []byte {
			h := sha256.Sum256([]byte(input))
			r, s, err := ecdsa.Sign(rand.Reader, key, h[:])
			if err != nil {
				log.Fatal(err)
			}
			sig := make([]byte, 64)
			r.FillBytes(sig[:32])
			s.FillBytes(sig[32:])
			return sig
		}, "ES256"
	}
	key := []byte(os.Getenv("TOKEN_SECRET"))
	return func(input string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(input))
		return m.Sum(nil)
	}, "HS256"
}
