// Tests for utils/auth.js under Node's built-in runner, against a real
// `wxlogin -mock` process: node --test examples/miniprogram/utils/auth.test.js
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
    // Two mini-programs: requests name theirs (wx.getAccountInfoSync).
    env: { ADDR: '127.0.0.1:0', TOKEN_TTL: '1h', WX_APPID: 'wxmock,wxshop' },
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
// next of codes (then a fresh code each time).
let codeSeq = 0
function fakeWx(codes = [], appId = 'wxmock') {
  const storage = new Map()
  const requests = []
  let logins = 0
  return {
    requests,
    logins: () => logins,
    storage,
    getAccountInfoSync: () => ({ miniProgram: { appId, envVersion: 'develop' } }),
    login({ success }) {
      logins++
      const code = codes.length ? codes.shift() : 'code' + ++codeSeq + '_' + process.pid
      setImmediate(() => success({ code, errMsg: 'login:ok' }))
    },
    request({ url, method = 'GET', data, header = {}, success, fail }) {
      requests.push({ url, method, header, data })
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

test('concurrent requests share one wx.login and one POST /openid', async () => {
  const wx = fakeWx()
  const auth = createAuth({ baseURL, wx })
  const answers = await Promise.all([1, 2, 3, 4, 5].map(() => auth.request({ url: baseURL + '/session' })))
  for (const res of answers) assert.equal(res.statusCode, 200)
  assert.equal(wx.logins(), 1, 'one code for five requests')
  assert.equal(wx.requests.filter((r) => r.url.endsWith('/openid')).length, 1)
  // A later login is a new one, not the finished shared one.
  await auth.login()
  assert.equal(wx.logins(), 2)
})

test('the token goes only to baseURL and apiBaseURLs', async () => {
  const wx = fakeWx()
  const api = baseURL.replace('127.0.0.1', 'localhost') // another origin, same server
  const auth = createAuth({ baseURL, apiBaseURLs: [api + '/api'], wx })
  for (const url of ['https://evil.example.cn/steal', baseURL + '.evil.cn/x', api + '/apix', api + '/other']) {
    await assert.rejects(auth.request({ url }), (err) => err instanceof AuthError && err.code === 'untrusted_url', url)
  }
  assert.equal(wx.requests.length, 0, 'nothing was sent, not even a login')
  const res = await auth.request({ url: api + '/api/../session' }) // wx.request does not normalise; the server does
  assert.equal(res.statusCode, 200)
  // Default: only baseURL.
  const plain = createAuth({ baseURL, wx: fakeWx() })
  await assert.rejects(plain.request({ url: api + '/session' }), (err) => err.code === 'untrusted_url')
})

test('AuthError keeps wx errMsg when wx.request or wx.login fail', async () => {
  const wx = fakeWx()
  wx.login = ({ fail }) => setImmediate(() => fail({ errMsg: 'login:fail auth deny' }))
  await assert.rejects(createAuth({ baseURL, wx }).login(), (err) =>
    err.code === 'wx_login_failed' && err.errMsg === 'login:fail auth deny')
  const wx2 = fakeWx()
  wx2.request = ({ fail }) => setImmediate(() => fail({ errMsg: 'request:fail url not in domain list' }))
  await assert.rejects(createAuth({ baseURL, wx: wx2 }).login(), (err) =>
    err.code === 'network' && err.status === 0 && err.errMsg === 'request:fail url not in domain list')
})

test('a 200 that is not the expected JSON is bad_response and stores nothing', async () => {
  for (const data of ['<html>gateway</html>', {}, { openid: 42 }, null]) {
    const wx = fakeWx()
    wx.request = ({ success }) => setImmediate(() => success({ statusCode: 200, data, header: {} }))
    await assert.rejects(createAuth({ baseURL, wx }).login(), (err) => err.code === 'bad_response' && err.status === 200, JSON.stringify(data))
    assert.equal(wx.storage.size, 0)
  }
})

test('a service without tokens is explained, never sent as an empty Bearer', async () => {
  const wx = fakeWx()
  const sent = []
  wx.request = (o) => {
    sent.push(o)
    setImmediate(() => o.success({ statusCode: 200, data: { openid: 'oNoTokens' }, header: {} }))
  }
  const auth = createAuth({ baseURL, wx })
  assert.deepEqual(await auth.login(), { openid: 'oNoTokens', unionid: undefined })
  await assert.rejects(auth.request({ url: baseURL + '/session' }), (err) => err.code === 'no_token' && /TOKEN_SECRET/.test(err.message))
  assert.ok(sent.every((o) => !(o.header && 'Authorization' in o.header)), 'no Authorization header was sent')
})

test('each mini-program logs in as itself', async () => {
  const shop = fakeWx(['same-code'], 'wxshop')
  const main = fakeWx(['same-code'], 'wxmock')
  const a = await createAuth({ baseURL, wx: shop }).login()
  const b = await createAuth({ baseURL, wx: main }).login()
  assert.notEqual(a.openid, b.openid, 'an openid is per AppID')
  assert.equal(shop.requests[0].data.appid, 'wxshop')
  const auth = createAuth({ baseURL, wx: shop })
  const res = await auth.request({ url: baseURL + '/session' })
  assert.equal(res.data.appid, 'wxshop')
  assert.equal(res.header['x-appid'], 'wxshop')
  // Without getAccountInfoSync and with two apps configured, the server asks for appid.
  const bare = fakeWx()
  delete bare.getAccountInfoSync
  await assert.rejects(createAuth({ baseURL, wx: bare }).login(), (err) => err.code === 'invalid_request' && err.status === 400)
  await assert.rejects(createAuth({ baseURL, wx: fakeWx([], 'wxnotours') }).login(), (err) => err.code === 'unknown_app')
})

test('phoneNumber returns the number and stores a token that carries it', async () => {
  const wx = fakeWx()
  const auth = createAuth({ baseURL, wx })
  const phone = await auth.phoneNumber('phonecode' + process.pid)
  assert.match(phone.phoneNumber, /^\+861\d{10}$/)
  assert.equal(phone.phoneNumber, '+' + phone.countryCode + phone.purePhoneNumber)
  assert.equal(wx.logins(), 1, 'logged in first')
  const res = await auth.request({ url: baseURL + '/session' })
  assert.equal(res.data.phone_number, phone.phoneNumber)
  assert.equal(res.header['x-phone-number'], phone.phoneNumber)
  // The same code again: WeChat's codes work once.
  await assert.rejects(auth.phoneNumber('phonecode' + process.pid), (err) => err.code === 'invalid_code' && err.status === 401)
  await assert.rejects(auth.phoneNumber('mock-ratelimit'), (err) => err.code === 'rate_limited' && err.retryAfter === 60)
})

test('the READMEs use the storage key auth.js uses', () => {
  for (const name of ['README.md', 'README.zh-CN.md']) {
    const readme = fs.readFileSync(path.join(repo, name), 'utf8')
    const keys = [...readme.matchAll(/(?:get|set|remove)StorageSync\('([^']+)'/g)].map((m) => m[1])
    for (const k of keys) assert.equal(k, TOKEN_KEY, name + ' uses storage key ' + k)
  }
})

test('the example page shows the number from its getPhoneNumber button', async () => {
  let page
  globalThis.Page = (def) => { page = def }
  const auth = createAuth({ baseURL, wx: fakeWx() })
  globalThis.getApp = () => ({ auth, loginServer: baseURL, ready: new Promise(() => {}) })
  try {
    require('../pages/index/index.js')
  } finally {
    delete globalThis.Page
    delete globalThis.getApp
  }
  page.setData = function (d) { Object.assign(this.data, d) }
  await page.onPhone({ detail: { code: 'pagephone' + process.pid } })
  assert.match(page.data.phone, /^\+861\d{10}$/)
  assert.equal(page.data.error, '')
  await page.onPhone({ detail: {} }) // the user declined: nothing happens
  await page.onPhone({ detail: { code: 'mock-invalid' } })
  assert.match(page.data.error, /^invalid_code：/)
})
