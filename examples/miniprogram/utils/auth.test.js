// Tests for utils/auth.js under Node's built-in runner, against real
// `wxlogin -mock` processes: node --test examples/miniprogram/utils/auth.test.js
//
// The wxlogin binary comes from $WXLOGIN_BIN, or is built with `go build`
// into a temporary directory that is removed afterwards. wx.login,
// wx.request and storage are faked; wx.request makes real HTTP requests
// with fetch.

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { spawn, spawnSync, execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const readline = require('node:readline')

const { createAuth, AuthError, MESSAGES, TOKEN_KEY, messageFor, errorFrom, phoneButtonError, logError } = require('./auth')

const repo = path.resolve(__dirname, '..', '..', '..')
let bin // the wxlogin binary
let builtDir // the temporary directory bin was built in, when it was
const servers = [] // the wxlogin processes
let baseURL // wxlogin -mock with WX_APPID=wxmock,wxshop
let openURL // wxlogin -mock without WX_APPID: any well-formed AppID

// removeBuilt removes the binary this run built, if any; never WXLOGIN_BIN.
function removeBuilt() {
  if (builtDir) fs.rmSync(builtDir, { recursive: true, force: true })
  builtDir = undefined
}

// wxloginBinary finds or builds the binary; null when there is no way to.
function wxloginBinary() {
  if (process.env.WXLOGIN_BIN) return process.env.WXLOGIN_BIN
  builtDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wxlogin-'))
  const out = path.join(builtDir, 'wxlogin')
  try {
    execFileSync('go', ['build', '-o', out, '.'], { cwd: repo, stdio: 'inherit' })
  } catch (err) {
    removeBuilt()
    return null
  }
  return out
}

// startWxlogin runs `wxlogin -mock` with env and resolves with its URL.
function startWxlogin(env) {
  const proc = spawn(bin, ['-mock'], { env: { ADDR: '127.0.0.1:0', TOKEN_TTL: '1h', ...env }, stdio: ['ignore', 'ignore', 'pipe'] })
  servers.push(proc)
  const lines = readline.createInterface({ input: proc.stderr })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('wxlogin did not listen within 10s')), 10000)
    lines.on('line', (line) => {
      const m = /"msg":"listening","addr":"([^"]+)"/.exec(line)
      if (m) {
        clearTimeout(timer)
        resolve('http://' + m[1])
      }
    })
    proc.on('error', (err) => { clearTimeout(timer); reject(err) })
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error('wxlogin exited with ' + code)) })
  })
}

before(async () => {
  bin = wxloginBinary()
  if (!bin) throw new Error('cannot build wxlogin: set WXLOGIN_BIN or install Go')
  // Two mini-programs: requests name theirs (wx.getAccountInfoSync).
  baseURL = await startWxlogin({ WX_APPID: 'wxmock,wxshop' })
  // No WX_APPID: the mock serves whatever AppID a request names.
  openURL = await startWxlogin({})
})

// Stop the servers, then remove what this run built: also when before()
// or a test failed.
after(async () => {
  await Promise.all(servers.map((proc) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return null
    const exited = new Promise((resolve) => proc.once('exit', resolve))
    proc.kill('SIGTERM')
    return exited
  }))
  removeBuilt()
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
      assert.equal(err.message, messageFor(err, 'login'))
      assert.equal(typeof err.detail, 'string', 'wxlogin\'s message is kept for the developer')
      return true
    })
  }
})

test('no network is an AuthError too', async () => {
  const auth = createAuth({ baseURL: 'http://127.0.0.1:1', wx: fakeWx() })
  await assert.rejects(auth.login(), (err) => err instanceof AuthError && err.code === 'network' && err.status === 0)
})

// Every code a user can meet: the README's error table, the codes auth.js
// makes itself, and unionid_missing (TOKEN_SUBJECT=unionid).
const CLIENT_CODES = ['network', 'wx_login_failed', 'bad_response', 'untrusted_url', 'no_token']
const DOCUMENTED_CODES = ['invalid_request', 'unknown_app', 'invalid_code', 'user_blocked', 'rate_limited', 'unavailable',
  'misconfigured', 'upstream_error', 'upstream_timeout', 'unionid_missing', 'invalid_token', ...CLIENT_CODES]

function readmeCodes() {
  const readme = fs.readFileSync(path.join(repo, 'README.md'), 'utf8')
  return new Set([...readme.matchAll(/\| \d{3}[^|]*\| `([a-z_]+)` \|/g)].map((m) => m[1]))
}

test('every error code of the README has a meaning', () => {
  const codes = readmeCodes()
  assert.ok(codes.size >= 12, 'found the error table')
  for (const code of [...codes, ...DOCUMENTED_CODES]) assert.ok(MESSAGES[code], 'no meaning for ' + code)
})

test('messageFor says something a user understands for every code, at login and at the phone step', () => {
  const codes = new Set([...readmeCodes(), ...DOCUMENTED_CODES])
  for (const code of codes) {
    for (const step of ['login', 'phone']) {
      const m = messageFor({ code }, step)
      const what = code + ' at ' + step + ': ' + m
      assert.ok(m.length > 0, what)
      assert.doesNotMatch(m, /[A-Za-z_]{3,}/, 'no code, no English, no setting name: ' + what)
      assert.doesNotMatch(m, /升级/, 'a user cannot upgrade a mini-program: ' + what)
      assert.ok(m.includes(step === 'login' ? '登录' : '手机号'), 'names the step that failed: ' + what)
      assert.doesNotMatch(m, step === 'phone' ? /^登录失败/ : /手机号/, what)
    }
  }
  // The sentences the example promises.
  assert.equal(messageFor({ code: 'invalid_code' }, 'phone'), '手机号授权已过期，请重新授权')
  assert.equal(messageFor({ code: 'invalid_code' }, 'login'), '登录失败，请重试')
  assert.doesNotMatch(messageFor({ code: 'invalid_code' }, 'phone'), /登录凭证/)
  for (const step of ['login', 'phone']) {
    assert.match(messageFor({ code: 'rate_limited' }, step), /操作过于频繁，请稍后再试$/)
    assert.match(messageFor({ code: 'unavailable' }, step), /服务繁忙，请稍后再试$/)
    assert.match(messageFor({ code: 'invalid_request' }, step), /请关闭小程序后重新打开$/)
    assert.match(messageFor({ code: 'network' }, step), /网络不可用/)
  }
  // An unknown code, a missing error, a step that is neither: still no raw code.
  assert.equal(messageFor({ code: 'brand_new_code' }, 'login'), '登录失败，请稍后再试')
  assert.equal(messageFor({ code: 'brand_new_code' }, 'phone'), '获取手机号失败，请稍后再试')
  assert.equal(messageFor(undefined, 'login'), '登录失败，请稍后再试')
  assert.equal(messageFor({ code: 'network' }, 'request'), '网络不可用，请检查网络后重试')
  // err.step is the default, and an AuthError's message is messageFor's.
  const err = new AuthError('invalid_code', 401, { step: 'phone' })
  assert.equal(messageFor(err), '手机号授权已过期，请重新授权')
  assert.equal(err.message, '手机号授权已过期，请重新授权')
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
  await assert.rejects(auth.request({ url: baseURL + '/session' }), (err) =>
    err.code === 'no_token' && /TOKEN_SECRET/.test(err.detail) && !/TOKEN_SECRET/.test(err.message))
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
  await assert.rejects(createAuth({ baseURL, wx: fakeWx([], 'wxnotours') }).login(), (err) =>
    err.code === 'unknown_app' && err.status === 400 && err.detail.includes('wxnotours'))
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

// claims decodes a token's payload.
const claims = (token) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString())

// captureConsole runs fn with console.error, warn, info and log recorded.
async function captureConsole(fn) {
  const logged = { error: [], warn: [], info: [], log: [] }
  const saved = {}
  for (const level of Object.keys(logged)) {
    saved[level] = console[level]
    console[level] = (...args) => logged[level].push(args.map(String).join(' '))
  }
  try {
    await fn()
  } finally {
    Object.assign(console, saved)
  }
  return logged
}

// loadPage loads pages/index/index.js with getApp() answering app.
function loadPage(app) {
  let page
  globalThis.Page = (def) => { page = def }
  globalThis.getApp = () => app
  const file = require.resolve('../pages/index/index.js')
  delete require.cache[file]
  try {
    require(file)
  } finally {
    delete globalThis.Page
    delete globalThis.getApp
  }
  page.data = JSON.parse(JSON.stringify(page.data))
  page.setData = function (d) { Object.assign(this.data, d) }
  return page
}

// loadApp loads app.js with wx as the runtime; its requests to
// http://localhost:2020 go to url.
function loadApp(wx, url) {
  const request = wx.request
  wx.request = (o) => request({ ...o, url: o.url.replace('http://localhost:2020', url) })
  let app
  globalThis.App = (def) => { app = def }
  globalThis.wx = wx
  const file = require.resolve('../app.js')
  delete require.cache[file]
  try {
    require(file)
  } finally {
    delete globalThis.App
    delete globalThis.wx
  }
  return app
}

const shown = (page) => [page.data.status, page.data.error, page.data.phone, page.data.openid].join('\n')

test('an error answer that is not wxlogin\'s JSON becomes a documented code and keeps its status', async () => {
  // A proxy in front of wxlogin, answering with its own HTML pages.
  const http = require('node:http')
  let status = 502
  const proxy = http.createServer((req, res) => {
    req.resume()
    res.writeHead(status, { 'Content-Type': 'text/html', 'Retry-After': '7' })
    res.end('<html><head><title>' + status + '</title></head><body><center><h1>' + status + '</h1></center><hr><center>nginx</center></body></html>')
  })
  await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  const proxyURL = 'http://127.0.0.1:' + proxy.address().port
  try {
    const cases = [[502, 'unavailable'], [503, 'unavailable'], [504, 'unavailable'], [500, 'bad_response'], [404, 'bad_response'], [400, 'bad_response'], [401, 'bad_response'], [429, 'bad_response']]
    for (const [s, code] of cases) {
      status = s
      await assert.rejects(createAuth({ baseURL: proxyURL, wx: fakeWx() }).login(), (err) => {
        assert.ok(err instanceof AuthError, String(s))
        assert.equal(err.code, code, String(s))
        assert.equal(err.status, s, 'the status stays for the developer')
        assert.equal(err.retryAfter, 7)
        assert.ok(MESSAGES[err.code], 'a code the example knows: ' + err.code)
        assert.equal(err.message, messageFor(err, 'login'))
        assert.match(err.detail, new RegExp('HTTP ' + s + '.*nginx'))
        return true
      })
    }
    // The phone step too: a logged-in user, a proxy's 502 on /phonenumber.
    const wx = fakeWx()
    const auth = createAuth({ baseURL, wx })
    await auth.login()
    const request = wx.request
    wx.request = (o) => request({ ...o, url: o.url.replace(baseURL, proxyURL) })
    status = 502
    await assert.rejects(auth.phoneNumber('proxied' + process.pid), (err) =>
      err.code === 'unavailable' && err.status === 502 && err.message === '获取手机号失败，服务繁忙，请稍后再试')
  } finally {
    proxy.close()
  }
  // JSON that is not wxlogin's (a gateway's own error shape) is the same.
  for (const data of [{ code: 502, msg: 'bad gateway' }, { error: { code: 1 } }, null, '']) {
    const err = errorFrom({ statusCode: 503, data, header: {} }, 'login')
    assert.equal(err.code, 'unavailable', JSON.stringify(data))
    assert.equal(err.status, 503)
  }
  // wxlogin's own JSON keeps its code and its message goes to detail.
  const own = errorFrom({ statusCode: 503, data: { error: 'unavailable', message: 'too many requests in flight; retry shortly' }, header: { 'retry-after': '1' } }, 'login')
  assert.deepEqual([own.code, own.status, own.retryAfter, own.detail], ['unavailable', 503, 1, 'too many requests in flight; retry shortly'])
})

test('a real AppID logs in against wxlogin -mock without WX_APPID, through app.js', async () => {
  const real = 'wx0123456789abcdef'
  const wx = fakeWx(['realapp' + process.pid], real)
  const auth = createAuth({ baseURL: openURL, wx })
  const ids = await auth.login()
  assert.match(ids.openid, /^o[A-Za-z0-9_-]{27}$/)
  assert.equal(wx.requests[0].data.appid, real, 'the AppID of wx.getAccountInfoSync()')
  assert.equal(claims(auth.token()).aud, real)
  const res = await auth.request({ url: openURL + '/session' })
  assert.equal(res.statusCode, 200)
  assert.equal(res.data.appid, real)
  const phone = await auth.phoneNumber('realphone' + process.pid)
  assert.match(phone.phoneNumber, /^\+861\d{10}$/)
  assert.equal(claims(auth.token()).aud, real, 'the phone token keeps the AppID')

  // The example app itself: app.js logs in at launch with the AppID.
  const appWx = fakeWx([], real)
  const app = loadApp(appWx, openURL)
  app.onLaunch()
  await app.ready
  assert.equal(appWx.requests[0].url, openURL + '/openid')
  assert.equal(appWx.requests[0].data.appid, real)
  assert.equal(claims(app.auth.token()).aud, real)

  // The developer tools' tourist AppID names nothing: the mock's default app.
  const tourist = fakeWx([], 'touristappid')
  const t = createAuth({ baseURL: openURL, wx: tourist })
  await t.login()
  assert.equal(tourist.requests[0].data.appid, undefined)
  assert.equal(claims(t.token()).aud, 'wxmock')
})

test('unknown_app names the AppID sent, for the developer, not for the user', async () => {
  const real = 'wx0123456789abcdef'
  // wxlogin configured for other apps (WX_APPID=wxmock,wxshop).
  const app = loadApp(fakeWx([], real), baseURL)
  let failure
  const logged = await captureConsole(async () => {
    app.onLaunch()
    failure = await app.ready.then(() => null, (err) => err)
  })
  assert.ok(failure instanceof AuthError)
  assert.equal(failure.code, 'unknown_app')
  assert.equal(failure.status, 400)
  assert.match(failure.detail, /AppID wx0123456789abcdef is not configured/)
  assert.equal(logged.error.length, 1, 'app.js logs it once')
  assert.match(logged.error[0], /unknown_app.*AppID wx0123456789abcdef is not configured/)
  // The user is told something else, without the code or the AppID.
  assert.equal(failure.message, '登录失败，服务暂不可用，请联系客服')
  assert.doesNotMatch(messageFor(failure, 'login'), /wx0123|unknown_app/)
  // The page shows the user's sentence and logs the developer's.
  const page = loadPage({ auth: app.auth, loginServer: baseURL, ready: Promise.reject(failure) })
  const pageLog = await captureConsole(() => page.onLoad())
  assert.equal(page.data.status, '未登录')
  assert.equal(page.data.error, '登录失败，服务暂不可用，请联系客服')
  assert.match(pageLog.error.join('\n'), /AppID wx0123456789abcdef/)
})

test('logError tells the developer what the user is not told', async () => {
  const domain = new AuthError('network', 0, { step: 'login', errMsg: 'request:fail url not in domain list' })
  const logged = await captureConsole(() => {
    logError(domain)
    logError(new AuthError('rate_limited', 429, { step: 'login', retryAfter: 60, detail: 'WeChat\'s login rate limit was reached; retry in a minute' }))
    logError(new AuthError('phone_declined', 0, { step: 'phone', errMsg: 'getPhoneNumber:fail user deny' }))
    logError(new TypeError('a bug'))
  })
  assert.equal(logged.error.length, 2)
  assert.match(logged.error[0], /network.*request:fail url not in domain list/)
  assert.match(logged.error[1], /a bug/)
  assert.equal(logged.warn.length, 1)
  assert.match(logged.warn[0], /rate_limited HTTP 429/)
  assert.doesNotMatch(messageFor(domain, 'login'), /domain|request:fail/)
})

test('a page that cannot reach a domain that is not a 服务器域名 says network, and logs why', async () => {
  const wx = fakeWx()
  wx.request = ({ fail }) => setImmediate(() => fail({ errMsg: 'request:fail url not in domain list' }))
  const auth = createAuth({ baseURL: 'https://login.example.com', wx })
  const page = loadPage({ auth, loginServer: 'https://login.example.com', ready: auth.login() })
  const logged = await captureConsole(() => page.onLoad())
  assert.equal(page.data.status, '未登录')
  assert.equal(page.data.error, '登录失败，网络不可用，请检查网络后重试')
  assert.doesNotMatch(shown(page), /domain|request:fail|network/)
  assert.equal(logged.error.length, 1)
  assert.match(logged.error[0], /request:fail url not in domain list/)
  assert.match(logged.error[0], /https:\/\/login\.example\.com.*request 合法域名/)
})

test('the example page: phone number, and phone failures that keep the user logged in', async () => {
  const wx = fakeWx()
  const auth = createAuth({ baseURL, wx })
  const page = loadPage({ auth, loginServer: baseURL, ready: auth.login() })
  await page.onLoad()
  assert.equal(page.data.status, '已登录')
  const openid = page.data.openid
  assert.match(openid, /^o/)

  await page.onPhone({ detail: { code: 'pagephone' + process.pid } })
  assert.match(page.data.phone, /^\+861\d{10}$/)
  assert.equal(page.data.error, '')

  // A failed phone request: still logged in, the phone step named, no code.
  const loggedIn = () => {
    assert.equal(page.data.status, '已登录')
    assert.equal(page.data.openid, openid)
    // What the user reads, but for the openid (which may hold an underscore).
    assert.doesNotMatch(shown(page).replace(openid, ''), /登录失败|[a-z]+_[a-z]+|：/)
  }
  let logged = await captureConsole(() => page.onPhone({ detail: { code: 'mock-invalid' } }))
  loggedIn()
  assert.equal(page.data.error, '手机号授权已过期，请重新授权')
  assert.match(logged.warn.join('\n'), /invalid_code HTTP 401/)
  await captureConsole(() => page.onPhone({ detail: { code: 'mock-ratelimit' } }))
  loggedIn()
  assert.equal(page.data.error, '获取手机号失败，操作过于频繁，请稍后再试')
  await captureConsole(() => page.onPhone({ detail: { code: 'mock-busy' } }))
  loggedIn()
  assert.equal(page.data.error, '获取手机号失败，服务繁忙，请稍后再试')

  // The button's own failures: nothing is sent to wxlogin.
  const sent = wx.requests.length
  const button = async (detail) => {
    page.setData({ error: '' })
    const out = await captureConsole(() => page.onPhone({ detail }))
    loggedIn()
    return out
  }
  for (const errMsg of ['getPhoneNumber:fail user deny', 'getPhoneNumber:fail:user deny', 'getPhoneNumber:fail user cancel']) {
    logged = await button({ errMsg })
    assert.equal(page.data.error, '', 'the user declined: ' + errMsg)
    assert.deepEqual(logged.error, [])
  }
  logged = await button({ errMsg: 'getPhoneNumber:fail api scope is not declared in the privacy agreement', errno: 112 })
  assert.equal(page.data.error, '获取手机号失败，该功能暂不可用')
  assert.match(logged.error.join('\n'), /用户隐私保护指引.*手机号/)
  logged = await button({ errMsg: 'getPhoneNumber:fail 该功能使用次数已达当前小程序上限', errno: 1400001 })
  assert.equal(page.data.error, '获取手机号失败，该功能暂不可用，请稍后再试')
  assert.match(logged.error.join('\n'), /额度已用完/)
  logged = await button({ errMsg: 'getPhoneNumber:fail no permission', errno: 102 })
  assert.equal(page.data.error, '获取手机号失败，该功能暂不可用')
  assert.match(logged.error.join('\n'), /非个人主体.*微信认证/)
  logged = await button({ errMsg: 'getPhoneNumber:fail something new', errno: 99999 })
  assert.equal(page.data.error, '获取手机号失败，请稍后再试')
  assert.match(logged.warn.join('\n'), /something new errno 99999/)
  assert.equal(wx.requests.length, sent, 'no request for a button that gave no code')

  // The phone codes of phoneButtonError, with a code there is none.
  assert.equal(phoneButtonError({ code: 'abc', errMsg: 'getPhoneNumber:ok' }), null)
  assert.equal(phoneButtonError({ errMsg: 'getPhoneNumber:fail privacy permission is not authorized', errno: 104 }).code, 'phone_declined')

  // Logging in again clears the phone step's message.
  await page.relogin()
  assert.equal(page.data.status, '已登录')
  assert.equal(page.data.error, '')
})

test('an API answer that is not JSON fails the page\'s login without a raw code', async () => {
  const wx = fakeWx()
  const auth = createAuth({ baseURL, wx })
  await auth.login()
  const request = wx.request
  wx.request = (o) => (o.url.endsWith('/session')
    ? setImmediate(() => o.success({ statusCode: 502, data: '<html>502 Bad Gateway</html>', header: {} }))
    : request(o))
  const page = loadPage({ auth, loginServer: baseURL, ready: Promise.resolve() })
  await captureConsole(() => page.onLoad())
  assert.equal(page.data.status, '未登录')
  assert.equal(page.data.error, '登录失败，服务繁忙，请稍后再试')
})

test('without WXLOGIN_BIN the binary it builds is removed, also when the tests fail', { skip: process.platform === 'win32' }, (t) => {
  // Run this file again in a child with its own TMPDIR and a fake `go`
  // that copies our binary, builds one that crashes, or fails to build.
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'wxlogin-cleanup-'))
  t.after(() => fs.rmSync(work, { recursive: true, force: true }))
  const goDir = path.join(work, 'bin')
  fs.mkdirSync(goDir)
  fs.writeFileSync(path.join(goDir, 'go'), [
    '#!/bin/sh',
    'while [ $# -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done',
    'case "$FAKE_GO" in',
    '  ok) cp "$REAL_WXLOGIN" "$out" ;;',
    '  crash) printf \'#!/bin/sh\\nexit 3\\n\' > "$out" && chmod +x "$out" ;;',
    '  *) echo "fake go: build failed" >&2; exit 1 ;;',
    'esac',
    '',
  ].join('\n'), { mode: 0o755 })
  for (const [mode, passes] of [['ok', true], ['crash', false], ['fail', false]]) {
    const tmp = fs.mkdtempSync(path.join(work, mode + '-'))
    const env = { ...process.env, TMPDIR: tmp, PATH: goDir + path.delimiter + process.env.PATH, FAKE_GO: mode, REAL_WXLOGIN: bin }
    delete env.WXLOGIN_BIN
    delete env.NODE_TEST_CONTEXT // a test runner of its own, not a child of ours
    const r = spawnSync(process.execPath, ['--test', '--test-name-pattern=^login stores a token', __filename], { env, encoding: 'utf8', timeout: 60000 })
    assert.equal(r.status === 0, passes, mode + ': exit ' + r.status + '\n' + r.stdout + r.stderr)
    assert.deepEqual(fs.readdirSync(tmp), [], mode + ': left behind in TMPDIR')
  }
})
