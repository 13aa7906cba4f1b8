// Tests for utils/auth.js under Node's built-in runner, against a real
// `wxlogin -mock` process: node --test examples/miniprogram/
//
// The wxlogin binary comes from $WXLOGIN_BIN, or is built with `go build`
// from the repository. wx.login, wx.request and storage are faked; wx.request
// makes real HTTP requests with fetch.

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { spawn, execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const readline = require('node:readline')

const { createAuth, AuthError, MESSAGES, TOKEN_KEY } = require('./auth')

const repo = path.resolve(__dirname, '..', '..', '..')
let server // the wxlogin process
let baseURL

// wxlogin finds or builds the binary; null when there is no way to.
function wxloginBinary() {
  if (process.env.WXLOGIN_BIN) return process.env.WXLOGIN_BIN
  const bin = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'wxlogin-')), 'wxlogin')
  try {
    execFileSync('go', ['build', '-o', bin, '.'], { cwd: repo, stdio: 'inherit' })
  } catch (err) {
    return null
  }
  return bin
}

before(async () => {
  const bin = wxloginBinary()
  if (!bin) throw new Error('cannot build wxlogin: set WXLOGIN_BIN or install Go')
  server = spawn(bin, ['-mock'], {
    env: { ADDR: '127.0.0.1:0', TOKEN_TTL: '1h' },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  const lines = readline.createInterface({ input: server.stderr })
  baseURL = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('wxlogin did not listen within 10s')), 10000)
    lines.on('line', (line) => {
      const m = /"msg":"listening","addr":"([^"]+)"/.exec(line)
      if (m) {
        clearTimeout(timer)
        resolve('http://' + m[1])
      }
    })
    server.on('exit', (code) => reject(new Error('wxlogin exited with ' + code)))
  })
})

after(() => {
  if (server) server.kill('SIGTERM')
})

// fakeWx stands in for the mini-program runtime. Each wx.login() gives the
// next of codes (then "code1", "code2", …).
function fakeWx(codes = []) {
  const storage = new Map()
  const requests = []
  let logins = 0
  return {
    requests,
    logins: () => logins,
    storage,
    login({ success }) {
      logins++
      const code = codes.length ? codes.shift() : 'code' + logins
      setImmediate(() => success({ code, errMsg: 'login:ok' }))
    },
    request({ url, method = 'GET', data, header = {}, success, fail }) {
      requests.push({ url, method, header })
      fetch(url, { method, headers: header, body: method === 'GET' ? undefined : JSON.stringify(data) })
        .then(async (r) => {
          const text = await r.text()
          let body = text
          try { body = JSON.parse(text) } catch {}
          success({ statusCode: r.status, data: body, header: Object.fromEntries(r.headers) })
        })
        .catch((err) => fail({ errMsg: 'request:fail ' + err.message }))
    },
    getStorageSync: (k) => (storage.has(k) ? storage.get(k) : ''),
    setStorageSync: (k, v) => storage.set(k, v),
    removeStorageSync: (k) => storage.delete(k),
  }
}

test('login stores a token and returns the ids', async () => {
  const wx = fakeWx(['abc'])
  const auth = createAuth({ baseURL, wx })
  const ids = await auth.login()
  assert.match(ids.openid, /^o[A-Za-z0-9_-]{27}$/)
  assert.match(ids.unionid, /^o[A-Za-z0-9_-]{27}$/)
  assert.notEqual(ids.openid, ids.unionid)
  assert.equal(auth.token().split('.').length, 3)
  assert.ok(wx.storage.get(TOKEN_KEY).expiresAt > Date.now() + 3500 * 1000)
  const [req] = wx.requests
  assert.equal(req.method, 'POST')
  assert.equal(req.url, baseURL + '/openid')
})

test('request sends the token as Authorization: Bearer', async () => {
  const wx = fakeWx(['abc'])
  const auth = createAuth({ baseURL, wx })
  const res = await auth.request({ url: baseURL + '/session' })
  assert.equal(res.statusCode, 200)
  assert.equal(wx.logins(), 1, 'logs in first when there is no token')
  const last = wx.requests[wx.requests.length - 1]
  assert.equal(last.header.Authorization, 'Bearer ' + auth.token())
  assert.equal(res.data.openid, (await createAuth({ baseURL, wx: fakeWx(['abc']) }).login()).openid)

  await auth.request({ url: baseURL + '/session' })
  assert.equal(wx.logins(), 1, 'reuses a valid token')
})

test('a 401 from the API logs in again and retries once', async () => {
  const wx = fakeWx()
  const auth = createAuth({ baseURL, wx })
  await auth.login()
  const stored = wx.storage.get(TOKEN_KEY)
  wx.storage.set(TOKEN_KEY, { ...stored, token: stored.token.slice(0, -2) + 'xx' }) // tampered
  const res = await auth.request({ url: baseURL + '/session' })
  assert.equal(res.statusCode, 200)
  assert.equal(wx.logins(), 2)
  const sessionCalls = wx.requests.filter((r) => r.url.endsWith('/session'))
  assert.equal(sessionCalls.length, 2, 'one refused call, one retry')
})

test('an expired token is replaced before the call', async () => {
  const wx = fakeWx()
  const auth = createAuth({ baseURL, wx })
  await auth.login()
  wx.storage.set(TOKEN_KEY, { ...wx.storage.get(TOKEN_KEY), expiresAt: Date.now() - 1 })
  assert.equal(auth.token(), '')
  const res = await auth.request({ url: baseURL + '/session' })
  assert.equal(res.statusCode, 200)
  assert.equal(wx.logins(), 2)
})

test('each WeChat error becomes an AuthError with its meaning', async () => {
  const cases = [
    ['mock-invalid', 'invalid_code', 401, undefined],
    ['mock-used', 'invalid_code', 401, undefined],
    ['mock-risky', 'user_blocked', 403, undefined],
    ['mock-ratelimit', 'rate_limited', 429, 60],
    ['mock-busy', 'unavailable', 503, 1],
    ['bad code!', 'invalid_request', 400, undefined],
  ]
  for (const [code, error, status, retryAfter] of cases) {
    const auth = createAuth({ baseURL, wx: fakeWx([code]) })
    await assert.rejects(auth.login(), (err) => {
      assert.ok(err instanceof AuthError)
      assert.equal(err.code, error, code)
      assert.equal(err.status, status, code)
      assert.equal(err.retryAfter, retryAfter, code)
      assert.equal(err.message, MESSAGES[error])
      return true
    })
  }
})

test('no network is an AuthError too', async () => {
  const auth = createAuth({ baseURL: 'http://127.0.0.1:1', wx: fakeWx() })
  await assert.rejects(auth.login(), (err) => err instanceof AuthError && err.code === 'network' && err.status === 0)
})

test('every error code of the README has a meaning', () => {
  const readme = fs.readFileSync(path.join(repo, 'README.md'), 'utf8')
  const codes = new Set([...readme.matchAll(/\| \d{3}[^|]*\| `([a-z_]+)` \|/g)].map((m) => m[1]))
  assert.ok(codes.size >= 12, 'found the error table')
  for (const code of codes) assert.ok(MESSAGES[code], 'no meaning for ' + code)
})
