// Command floor is the smallest program that does what a wxlogin login
// must do, for benchmarks to measure wxlogin's own process against: read
// the code from a JSON body, call WeChat's code2Session through one tuned,
// shared transport, sign a login token (HS256 or ES256, the claims encoded
// by hand), answer JSON. It checks nothing, logs nothing, retries nothing.
//
// Settings: ADDR, WX_API_BASE_URL, WX_APPID, WX_SECRET, and TOKEN_SECRET
// (HS256) or TOKEN_KEY_FILE (a PKCS#8 P-256 key, ES256).
package main

import (
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
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
	"time"
)

var b64 = base64.RawURLEncoding

func main() {
	base, appID, secret := os.Getenv("WX_API_BASE_URL"), os.Getenv("WX_APPID"), os.Getenv("WX_SECRET")
	sign, alg := signer()
	header := b64.EncodeToString([]byte(`{"alg":"` + alg + `","typ":"JWT"}`))

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
		resp, err := client.Get(base + "/sns/jscode2session?" + q.Encode())
		if err != nil {
			http.Error(w, "upstream", http.StatusBadGateway)
			return
		}
		var s struct {
			OpenID  string `json:"openid"`
			UnionID string `json:"unionid"`
		}
		err = json.NewDecoder(resp.Body).Decode(&s)
		resp.Body.Close()
		if err != nil || s.OpenID == "" {
			http.Error(w, "upstream", http.StatusBadGateway)
			return
		}
		now := time.Now().Unix()
		claims := `{"sub":"` + s.OpenID + `","iss":"wxlogin","aud":"` + appID + `","iat":` + strconv.FormatInt(now, 10) +
			`,"exp":` + strconv.FormatInt(now+7200, 10) + `,"unionid":"` + s.UnionID + `"}`
		input := header + "." + b64.EncodeToString([]byte(claims))
		token := input + "." + b64.EncodeToString(sign(input))
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"openid": s.OpenID, "unionid": s.UnionID, "token": token, "expires_in": 7200})
	})
	log.Fatal(http.ListenAndServe(os.Getenv("ADDR"), nil))
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
