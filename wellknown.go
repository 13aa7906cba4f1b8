package main

import (
	"encoding/json"
	"net/http"
	"strconv"

	"wxlogin/internal/token"
)

// handleJWKS serves GET /.well-known/jwks.json: the public keys, for
// gateways and libraries that verify tokens themselves. Without
// TOKEN_KEY_FILE there is nothing to publish.
func handleJWKS(tok *token.Set) http.Handler {
	return publicJSON(tok.JWKS())
}

// handleDiscovery serves GET /.well-known/openid-configuration when the
// issuer is a URL and there are public keys: enough for go-oidc, Spring's
// issuer-uri and gateways' discovery to find the JWKS.
func handleDiscovery(tok *token.Set) http.Handler {
	var body []byte
	if d, ok := tok.Discovery(); ok {
		body, _ = json.Marshal(d)
	}
	return publicJSON(body)
}

// publicJSON serves a fixed JSON body that caches may keep five minutes;
// a nil body is 404.
func publicJSON(body []byte) http.Handler {
	length := strconv.Itoa(len(body))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if body == nil {
			writeError(w, errNotFound)
			return
		}
		h := w.Header()
		h["Content-Type"] = jsonContentType
		h["Cache-Control"] = publicCache
		h["Content-Length"] = []string{length}
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			w.Write(body)
		}
	})
}
