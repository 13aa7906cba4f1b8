"""A web application's login through wxlogin with Authlib (an OIDC client).

Run by TestAuthlib: python3 authlib_client.py ISSUER CLIENT_ID CLIENT_SECRET
REDIRECT_URI LOGIN_HINT ALG. It reads the provider's metadata (and checks it
with Authlib's OpenIDProviderMetadata), sends a browser (a requests session:
cookies, redirects) through /authorize and the mock's WeChat to the
redirect_uri, redeems the code with client_secret_post and PKCE S256, verifies
the id_token with the JWKS (CodeIDToken: iss, aud, exp, iat, nonce; the alg
pinned), calls /userinfo, and prints what the Go test checks as one JSON
object. Any failure raises: the exit status is not 0.
"""

import json
import secrets
import sys
from urllib.parse import parse_qs, urljoin, urlsplit

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, JsonWebToken
from authlib.oidc.core import CodeIDToken
from authlib.oidc.discovery import OpenIDProviderMetadata

TIMEOUT = 10


def main():
    issuer, client_id, client_secret, redirect_uri, login_hint, alg = sys.argv[1:7]

    # Every session ignores proxy settings in the environment: everything
    # here is on this machine.
    http = requests.Session()
    http.trust_env = False
    meta = http.get(issuer + "/.well-known/openid-configuration", timeout=TIMEOUT)
    meta.raise_for_status()
    metadata = OpenIDProviderMetadata(meta.json())
    metadata.validate()
    if metadata["issuer"] != issuer:
        raise SystemExit("discovery issuer %r, want %r" % (metadata["issuer"], issuer))

    client = OAuth2Session(
        client_id,
        client_secret,
        scope="openid",
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_post",
    )
    client.trust_env = False
    verifier = generate_token(48)
    nonce = secrets.token_urlsafe(16)
    auth_url, state = client.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce, login_hint=login_hint
    )

    # The browser: follow redirects (at most 10) until one leads to the
    # redirect_uri, which a real browser would load on the client's site.
    browser = requests.Session()
    browser.trust_env = False
    url, hops = auth_url, []
    for _ in range(10):
        resp = browser.get(url, allow_redirects=False, timeout=TIMEOUT)
        hops.append("%d %s" % (resp.status_code, urlsplit(url).path))
        if resp.status_code != 302:
            raise SystemExit("the browser stopped at %s" % hops)
        url = urljoin(url, resp.headers["Location"])
        if url.startswith(redirect_uri.split("?")[0] + "?"):
            break
    else:
        raise SystemExit("more than 10 redirects: %s" % hops)
    back = parse_qs(urlsplit(url).query)
    if "error" in back:
        raise SystemExit("authorization error %s: %s" % (back["error"], back.get("error_description")))
    if back.get("iss") != [issuer] or back.get("state") != [state]:
        raise SystemExit("callback iss %r / state echoed %s" % (back.get("iss"), back.get("state") == [state]))
    for name, value in parse_qs(urlsplit(redirect_uri).query).items():
        if back.get(name) != value:
            raise SystemExit("the redirect_uri's own query parameter %r was not kept" % name)

    # fetch_token checks the state again, sends code, redirect_uri,
    # code_verifier, client_id and client_secret in the form.
    token = client.fetch_token(
        metadata["token_endpoint"], authorization_response=url, code_verifier=verifier, timeout=TIMEOUT
    )
    if token.get("token_type") != "Bearer" or not token.get("id_token"):
        raise SystemExit("token response without a Bearer token or an id_token: %s" % sorted(token))

    jwks = http.get(metadata["jwks_uri"], timeout=TIMEOUT)
    jwks.raise_for_status()
    keys = JsonWebKey.import_key_set(jwks.json())
    claims = JsonWebToken([alg]).decode(
        token["id_token"],
        keys,
        claims_cls=CodeIDToken,
        claims_options={
            "iss": {"essential": True, "value": issuer},
            "aud": {"essential": True, "value": client_id},
        },
        claims_params={"nonce": nonce, "client_id": client_id, "access_token": token["access_token"]},
    )
    claims.validate(leeway=5)

    info = client.get(metadata["userinfo_endpoint"], timeout=TIMEOUT)
    info.raise_for_status()

    # The same code again: the token endpoint refuses it.
    replay = http.post(
        metadata["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": back["code"][0],
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
            "client_id": client_id,
            "client_secret": client_secret,
        },
        timeout=TIMEOUT,
    )

    print(
        json.dumps(
            {
                "alg": claims.header["alg"],
                "sub": claims["sub"],
                "aud": claims["aud"],
                "nonce_matched": claims["nonce"] == nonce,
                "openid": claims.get("openid"),
                "appid": claims.get("appid"),
                "userinfo": info.json(),
                "replay_status": replay.status_code,
                "replay_error": replay.json().get("error"),
                "hops": hops,
            }
        )
    )


if __name__ == "__main__":
    main()
