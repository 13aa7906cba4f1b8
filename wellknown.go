package main

import (
	"net/http"
	"strconv"
)

// GET /.well-known/jwks.json serves the public keys, for gateways and
// libraries that verify tokens themselves (none without TOKEN_KEY_FILE);
// GET /.well-known/openid-configuration the metadata that leads go-oidc,
// Spring's issuer-uri and gateways to them, and to the web login
// (weblogin.go's discovery).

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
