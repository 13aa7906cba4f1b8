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

// What the well-known paths answer when there is nothing to serve.
var (
	errNoJWKS = &apiError{status: http.StatusNotFound, code: "not_found",
		message: "no public key to publish: set TOKEN_KEY_FILE (wxlogin -genkey makes one); HS256 keys are secrets and never published"}
	errNoDiscovery = &apiError{status: http.StatusNotFound, code: "not_found",
		message: "OpenID discovery needs TOKEN_ISSUER set to this service's http(s) URL and TOKEN_KEY_FILE"}
)

// publicJSON serves a fixed JSON body that caches may keep five minutes;
// with a nil body, it answers missing.
func publicJSON(body []byte, missing *apiError) http.Handler {
	length := strconv.Itoa(len(body))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if body == nil {
			writeError(w, missing)
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
