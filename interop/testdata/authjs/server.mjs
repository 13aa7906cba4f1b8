// A web application that logs its users in with Auth.js (@auth/core)
// through wxlogin, configured with the README's Auth.js recipe. Run by
// interop/authjs_test.go, from a directory whose node_modules holds this
// package's locked dependencies:
//
//	AUTHJS_RECIPE=recipe.mjs AUTH_SECRET=… WECHAT_ISSUER=http://localhost:PORT
//	WECHAT_CLIENT_ID=… WECHAT_CLIENT_SECRET=… LISTEN=127.0.0.1:PORT node server.mjs
//
// Auth.js answers everything under /auth (/auth/csrf, /auth/signin/wechat,
// /auth/callback/wechat, /auth/session, /auth/signout); any other path is
// the application's page, which only names itself. Node's http server hands
// Auth() a Web Request and writes back its Web Response, as a framework
// integration (next-auth, @auth/express) does.
import { createServer } from "node:http";
import { pathToFileURL } from "node:url";
import { Auth } from "@auth/core";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

const [host, port] = env("LISTEN").split(/:(?=\d+$)/);

// The README's Auth.js recipe, as the test took it from README.md: a module
// whose default export is the block (providers, callbacks), with the issuer
// made the test's.
const recipe = (await import(pathToFileURL(env("AUTHJS_RECIPE")).href)).default;

const config = {
  basePath: "/auth",
  secret: env("AUTH_SECRET"),
  trustHost: true,
  ...recipe,
  logger: {
    error: (e) => console.error("authjs error:", e?.name, e?.message, e?.cause ?? ""),
    warn: (code) => console.error("authjs warning:", code),
  },
};

async function handle(req, res) {
  const url = new URL(req.url, `http://${req.headers.host}`);
  if (!url.pathname.startsWith("/auth/")) {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ page: url.pathname }));
    return;
  }
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
  }
  const request = new Request(url, {
    method: req.method,
    headers,
    body: req.method === "GET" || req.method === "HEAD" ? undefined : Buffer.concat(chunks),
  });
  const response = await Auth(request, config);
  const out = {};
  for (const [name, value] of response.headers) {
    if (name !== "set-cookie") out[name] = value;
  }
  const cookies = response.headers.getSetCookie();
  if (cookies.length) out["set-cookie"] = cookies;
  res.writeHead(response.status, out);
  res.end(Buffer.from(await response.arrayBuffer()));
}

createServer((req, res) => {
  handle(req, res).catch((e) => {
    console.error("server error:", e);
    res.writeHead(500).end("server error");
  });
}).listen(Number(port), host, () => console.log(`listening on ${host}:${port}`));
