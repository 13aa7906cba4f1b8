// Package interop holds wxlogin's interoperability tests against real
// OpenID Connect clients: go-oidc with golang.org/x/oauth2, oauth2-proxy,
// Python's Authlib and Auth.js (@auth/core, with the README's recipe). It
// is a module of its own so that wxlogin's go.mod stays free of
// requirements; the tests build wxlogin from the parent directory (or take
// WXLOGIN_BIN) and run it as a child process in mock mode.
//
// Run them with -count=1: go test's cache sees neither wxlogin's source
// (outside this module) nor the tools installed, so a cached result can be
// stale.
//
//	cd interop && go test -count=1 ./...
//
// oauth2-proxy is built once with go install into
// $HOME/.cache/wxlogin-interop/bin (WXLOGIN_OAUTH2_PROXY names another
// binary; WXLOGIN_INTEROP_PREPARE=1 only builds it and installs Auth.js,
// as .ci/run does in the background); Authlib comes from Debian's
// python3-authlib. Auth.js is testdata/authjs, a Node application whose
// package-lock.json pins every dependency: npm ci installs them once into
// $HOME/.cache/wxlogin-interop/authjs (again when the lock changes). A test
// whose tool is missing (node 20 or newer and npm, or the registry, for
// Auth.js) prints a SKIP line.
package interop
