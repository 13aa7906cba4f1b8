// 用 wxlogin 登录，并带上它签发的令牌调用你的接口。
// Login with wxlogin and call your APIs with its token.
//
//   const { createAuth, messageFor, logError } = require('./utils/auth')
//   const auth = createAuth({ baseURL: 'https://login.example.com', apiBaseURLs: ['https://api.example.com'] })
//   await auth.login()                                   // wx.login → POST /openid → 令牌存入 storage / token in storage
//   const res = await auth.request({ url: 'https://api.example.com/me' })  // Authorization: Bearer …
//   const phone = await auth.phoneNumber(e.detail.code)  // <button open-type="getPhoneNumber"> 的 code
//
//   出错时 / on failure:
//   catch (err) { logError(err); wx.showToast({ title: messageFor(err, 'login'), icon: 'none' }) }
//
// request() 在没有有效令牌时先登录，接口返回 401（令牌过期或密钥已轮换）时再登录一次；
// 同时发起的调用共用一次登录；令牌只发往 baseURL 和 apiBaseURLs。
// request() logs in when there is no valid token, and once more when the
// API answers 401 (the token expired or the key was rotated). Concurrent
// calls share one login. The token goes only to baseURL and apiBaseURLs.
//
// 错误都是 AuthError：code 给程序判断，messageFor(err, step) 给用户看，
// logError(err) 把 detail（wxlogin 的 message、wx 的 errMsg）打到控制台给开发者看。
// Errors are AuthErrors: code is for your code, messageFor(err, step) for
// the user, logError(err) prints detail (wxlogin's message, wx's errMsg)
// to the console for the developer. Users never see a raw code.

const TOKEN_KEY = 'wxlogin_token'

// 每个错误码对用户的说法（不含“登录失败”等前缀，见 messageFor）。
// What each error code means to the user, without the step's prefix (see messageFor).
const MESSAGES = {
  // 小程序发出的请求有误：多半是旧版本，重新打开会拿到新版本。
  // The request was wrong: most likely an old version; reopening gets the new one.
  invalid_request: '请关闭小程序后重新打开',
  method_not_allowed: '请关闭小程序后重新打开',
  request_too_large: '请关闭小程序后重新打开',
  unsupported_media_type: '请关闭小程序后重新打开',
  // 服务端或公众平台的配置问题：用户无能为力，开发者看控制台。
  // Setup problems of the service or the AppID: the developer reads the console.
  unknown_app: '服务暂不可用，请联系客服',
  misconfigured: '服务暂不可用，请联系客服',
  not_found: '服务暂不可用，请联系客服',
  no_token: '服务暂不可用，请联系客服',
  untrusted_url: '服务暂不可用，请联系客服',
  unionid_missing: '服务暂不可用，请联系客服',
  // 用户或网络的问题，稍后再试通常就好。
  // The user's or the network's, usually gone on a retry.
  invalid_code: '请重试',
  wx_login_failed: '请重试',
  user_blocked: '微信判定当前账号存在安全风险，暂时无法使用',
  rate_limited: '操作过于频繁，请稍后再试',
  unavailable: '服务繁忙，请稍后再试', // 微信繁忙，或 wxlogin 自身满载 / WeChat busy, or wxlogin overloaded
  upstream_error: '服务暂时异常，请稍后再试',
  upstream_timeout: '服务响应超时，请稍后再试',
  bad_response: '服务暂时异常，请稍后再试',
  invalid_token: '登录已过期，请重新登录',
  network: '网络不可用，请检查网络后重试',
  // getPhoneNumber 按钮自己的失败（见 phoneButtonError）。
  // The getPhoneNumber button's own failures (see phoneButtonError).
  phone_declined: '',
  phone_privacy: '该功能暂不可用',
  phone_quota: '该功能暂不可用，请稍后再试',
  phone_no_permission: '该功能暂不可用',
  phone_failed: '请稍后再试',
}

// 每一步的整句说法，优先于“前缀 + MESSAGES”。
// Whole sentences for a step, used instead of prefix + MESSAGES.
const STEP_MESSAGES = {
  login: {
    invalid_token: '登录已过期，请重新登录',
    user_blocked: '微信判定当前账号存在安全风险，暂时无法登录',
  },
  phone: {
    invalid_code: '手机号授权已过期，请重新授权',
    invalid_token: '登录已过期，请重新登录后再获取手机号',
    phone_declined: '', // 用户拒绝了：什么都不说 / the user said no: say nothing
  },
}

const PREFIX = { login: '登录失败，', phone: '获取手机号失败，' }

// 开发者必须处理的错误，logError 用 console.error 打出；其余用 console.warn。
// Errors the developer has to fix: logError prints them with console.error.
const DEVELOPER_ERRORS = new Set([
  'invalid_request', 'method_not_allowed', 'request_too_large', 'unsupported_media_type',
  'unknown_app', 'misconfigured', 'not_found', 'no_token', 'untrusted_url', 'unionid_missing',
  'bad_response', 'network', 'phone_privacy', 'phone_quota', 'phone_no_permission',
])

// messageFor：给用户看的一句话。step 为 'login'（登录）或 'phone'（获取手机号），
// 省略时用 err.step；其他值只给原因、不加前缀。永远不含错误码。
// messageFor is the sentence to show the user. step is 'login' or 'phone'
// (default: err.step); any other step gives the reason without a prefix.
// It never contains the error code; an unknown code gets a generic sentence.
function messageFor(err, step = err && err.step) {
  const code = err && err.code
  const whole = STEP_MESSAGES[step]
  if (whole && Object.prototype.hasOwnProperty.call(whole, code)) return whole[code]
  const reason = Object.prototype.hasOwnProperty.call(MESSAGES, code) ? MESSAGES[code] : '请稍后再试'
  if (reason === '') return ''
  return (PREFIX[step] || '') + reason
}

// AuthError：code 见 README 的错误表，外加 network、wx_login_failed、bad_response、
// untrusted_url、no_token 和 phone_*；message 是给用户看的话（messageFor）。
// AuthError: code is wxlogin's error code or one of network,
// wx_login_failed, bad_response, untrusted_url, no_token, phone_*; message
// is the user's sentence (messageFor); detail is for the developer.
class AuthError extends Error {
  constructor(code, status, { retryAfter, errMsg, detail, step } = {}) {
    super(messageFor({ code }, step))
    this.name = 'AuthError'
    this.code = code
    this.status = status // HTTP 状态码，没有收到响应时为 0 / HTTP status, 0 when there was no answer
    this.retryAfter = retryAfter // 秒，rate_limited 和 unavailable 有 / seconds, for rate_limited and unavailable
    this.errMsg = errMsg // wx.request、wx.login 或按钮自己的 errMsg / wx's own errMsg
    this.detail = detail // 给开发者：wxlogin 的 message 或说明 / for the developer: wxlogin's message or a hint
    this.step = step // 'login'、'phone' 或 'request'
  }
}

// errorFrom：把 wxlogin（或其前面的代理）的非 200 响应变成 AuthError。
// 不是 wxlogin 的 JSON（例如代理的 HTML 502 页面）时：502/503/504 为 unavailable
// （代理或服务满载、重启中），其余为 bad_response；err.status 保留原状态码。
// errorFrom turns a non-200 answer of wxlogin, or of a proxy in front of
// it, into an AuthError. A body that is not wxlogin's error JSON (say an
// HTML 502 page) becomes unavailable for 502/503/504 (a proxy, or the
// service overloaded or restarting) and bad_response otherwise; err.status
// keeps the status either way.
function errorFrom(res, step) {
  const status = res.statusCode
  const body = res.data && typeof res.data === 'object' ? res.data : null
  const header = res.header || {}
  const retryAfter = Number(header['Retry-After'] || header['retry-after']) || undefined
  if (body && typeof body.error === 'string' && /^[a-z_]{1,64}$/.test(body.error)) {
    const detail = typeof body.message === 'string' ? body.message : undefined
    return new AuthError(body.error, status, { retryAfter, detail, step })
  }
  const code = status === 502 || status === 503 || status === 504 ? 'unavailable' : 'bad_response'
  const sample = typeof res.data === 'string' ? ': ' + res.data.replace(/\s+/g, ' ').slice(0, 120) : ''
  return new AuthError(code, status, {
    retryAfter,
    step,
    detail: 'HTTP ' + status + ' 不是 wxlogin 的错误 JSON（代理或网关的错误页？）/ not wxlogin\'s error JSON (a proxy\'s error page?)' + sample,
  })
}

// phoneButtonError：<button open-type="getPhoneNumber"> 的 e.detail 没有 code 时，
// 给出原因；有 code 时返回 null。
// phoneButtonError says why the getPhoneNumber button gave no code, or
// returns null when e.detail has one.
function phoneButtonError(detail) {
  const d = detail || {}
  if (d.code) return null
  const errMsg = typeof d.errMsg === 'string' ? d.errMsg : ''
  const errno = d.errno
  const step = 'phone'
  if (/deny|cancel/i.test(errMsg) || errno === 104) {
    // 用户拒绝了授权，或没有同意隐私保护指引（104）。
    // The user declined, or has not agreed to the privacy guide (errno 104).
    return new AuthError('phone_declined', 0, { errMsg, step,
      detail: errno === 104 ? '用户未同意隐私保护指引 / the user has not agreed to the privacy guide (errno 104)' : undefined })
  }
  if (errno === 112) {
    return new AuthError('phone_privacy', 0, { errMsg, step,
      detail: '用户隐私保护指引未声明收集手机号：公众平台 → 设置 → 服务内容声明 → 用户隐私保护指引，勾选「手机号」并提交审核 / ' +
        'the privacy guide does not declare the phone number (errno 112): declare it in mp.weixin.qq.com → 设置 → 服务内容声明 → 用户隐私保护指引' })
  }
  if (errno === 1400001) {
    return new AuthError('phone_quota', 0, { errMsg, step,
      detail: '手机号快速验证组件的额度已用完，请在公众平台购买 / the quota of the phone-number component is used up (errno 1400001): buy more in mp.weixin.qq.com' })
  }
  if (/no permission/i.test(errMsg)) {
    // 微信未公开此情况的 errno，只认 errMsg。
    // WeChat documents no errno for this: the errMsg is what we match.
    return new AuthError('phone_no_permission', 0, { errMsg, step,
      detail: '此 AppID 没有手机号快速验证权限：需非个人主体并完成微信认证 / this AppID may not use getPhoneNumber: it needs a non-individual account with 微信认证' })
  }
  let hint = ''
  if (!errMsg && (d.encryptedData || d.iv)) hint = '；基础库 2.21.2 起才有 code / e.detail.code needs base library 2.21.2 or newer'
  return new AuthError('phone_failed', 0, { errMsg, step,
    detail: 'getPhoneNumber 没有给出 code / gave no code: ' + (errMsg || '(no errMsg)') + (errno !== undefined ? ' errno ' + errno : '') + hint })
}

// logError：把错误的开发者信息打到控制台（要开发者处理的用 console.error）。
// 用户拒绝授权手机号不打印。
// logError prints what the developer needs to know about err to the
// console: console.error for what the developer must fix, console.warn
// for the rest; nothing when the user merely declined.
function logError(err, step) {
  if (!(err instanceof AuthError)) {
    console.error('wxlogin:', err)
    return
  }
  if (err.code === 'phone_declined' && !err.detail) return
  const parts = ['wxlogin:', step || err.step || '', err.code]
  if (err.status) parts.push('HTTP ' + err.status)
  if (err.detail) parts.push('—', err.detail)
  if (err.errMsg && !(err.detail || '').includes(err.errMsg)) parts.push('(' + err.errMsg + ')')
  const log = DEVELOPER_ERRORS.has(err.code) ? console.error : console.warn
  log(parts.filter(Boolean).join(' '))
}

// under reports whether url is base itself or a path below it: the check
// compares whole origins and path segments, so https://api.example.com
// does not cover https://api.example.com.evil.cn.
function under(url, base) {
  const b = base.replace(/\/+$/, '')
  return url === b || url.startsWith(b + '/') || url.startsWith(b + '?') || url.startsWith(b + '#')
}

// ownAppID is the mini-program's AppID, sent so that one wxlogin can serve
// several mini-programs. The developer tools' tourist AppID names nothing.
function ownAppID(wx) {
  try {
    const id = wx.getAccountInfoSync().miniProgram.appId
    return id && id !== 'touristappid' ? id : undefined
  } catch (err) {
    return undefined
  }
}

// networkDetail explains wx.request's errMsg to the developer.
function networkDetail(errMsg, url) {
  const msg = errMsg || 'request:fail'
  if (/not in domain list/.test(msg)) {
    const origin = (/^[a-z]+:\/\/[^/?#]+/i.exec(url) || [url])[0]
    return msg + ' — 把 ' + origin + ' 加入公众平台「开发管理 → 开发设置 → 服务器域名」的 request 合法域名 / ' +
      'add ' + origin + ' to the request domains (服务器域名) of the mini-program in mp.weixin.qq.com'
  }
  return msg
}

// createAuth：创建登录对象。baseURL 是 wxlogin 的地址；apiBaseURLs 是令牌可以发往的
// 接口地址（默认只有 baseURL）；appid 默认取 wx.getAccountInfoSync()。
// createAuth makes the login object. baseURL is wxlogin; apiBaseURLs are
// where the token may go (default: baseURL only); appid defaults to the
// mini-program's own, from wx.getAccountInfoSync().
function createAuth({ baseURL, apiBaseURLs = [baseURL], wx = globalThis.wx, appid } = {}) {
  if (!baseURL) throw new Error('createAuth: baseURL is required')
  const trusted = [baseURL, ...apiBaseURLs]
  const app = appid || ownAppID(wx)

  const call = (options, step) =>
    new Promise((resolve, reject) =>
      wx.request({
        ...options,
        success: resolve,
        fail: (res) => {
          const errMsg = res && res.errMsg
          reject(new AuthError('network', 0, { errMsg, step, detail: networkDetail(errMsg, options.url) }))
        },
      }))

  const wxLogin = () =>
    new Promise((resolve, reject) => {
      const failed = (res) => reject(new AuthError('wx_login_failed', 0, { errMsg: res && res.errMsg, detail: res && res.errMsg, step: 'login' }))
      wx.login({
        success: (res) => (res && res.code ? resolve(res.code) : failed(res)),
        fail: failed,
      })
    })

  function store(token, expiresIn) {
    if (typeof token === 'string' && token && expiresIn > 0) {
      wx.setStorageSync(TOKEN_KEY, { token, expiresAt: Date.now() + expiresIn * 1000 })
    }
  }

  let inFlight = null // the login under way, shared by everyone who needs one

  // login：用新的 wx.login() code 换取用户的 openid（和 unionid）及令牌。
  // 登录进行中时再调用，共用同一次登录。
  // login exchanges a fresh wx.login() code for the user's ids and a
  // token. Calls made while a login is under way share it.
  function login() {
    if (!inFlight) {
      inFlight = doLogin().finally(() => { inFlight = null })
    }
    return inFlight
  }

  async function doLogin() {
    const code = await wxLogin()
    const data = app ? { code, appid: app } : { code }
    const url = baseURL + '/openid'
    const res = await call({ url, method: 'POST', header: { 'Content-Type': 'application/json' }, data }, 'login')
    if (res.statusCode !== 200) throw errorFrom(res, 'login')
    const body = res.data
    if (!body || typeof body !== 'object' || typeof body.openid !== 'string' || !body.openid) {
      throw new AuthError('bad_response', res.statusCode, { step: 'login', detail: 'POST /openid 返回了 200 但没有 openid / answered 200 without an openid' })
    }
    store(body.token, body.expires_in)
    return { openid: body.openid, unionid: body.unionid }
  }

  // token：返回仍有效的令牌，没有则返回 ''。
  // token returns the stored token while it is valid, else ''.
  function token() {
    const t = wx.getStorageSync(TOKEN_KEY)
    return t && t.expiresAt > Date.now() ? t.token : ''
  }

  // logout：删除存着的令牌。
  // logout forgets the stored token.
  function logout() {
    wx.removeStorageSync(TOKEN_KEY)
  }

  // freshToken returns a valid token, logging in first when needed.
  async function freshToken(step) {
    if (!token()) await login()
    const t = token()
    if (!t) {
      // 登录成功但 wxlogin 不签发令牌 / logged in, but wxlogin issues no tokens
      throw new AuthError('no_token', 0, { step,
        detail: 'wxlogin 未开启登录令牌：设置 TOKEN_SECRET 或 TOKEN_KEY_FILE / wxlogin issues no tokens: set TOKEN_SECRET or TOKEN_KEY_FILE' })
    }
    return t
  }

  const withToken = (options, t) => ({
    ...options,
    header: { ...(options.header || {}), Authorization: 'Bearer ' + t },
  })

  // request：带令牌的 wx.request，需要时先登录，遇 401 再登录重试一次；
  // 令牌只发往受信任的地址。返回 wx.request 的 res，非 200 不抛错。
  // request is wx.request with the token, logging in first when needed
  // and once more on a 401. The token goes only to trusted URLs. It
  // resolves with wx.request's res, whatever the status.
  async function request(options) {
    if (!trusted.some((base) => under(options.url, base))) {
      throw new AuthError('untrusted_url', 0, { step: 'request',
        detail: '令牌只发往 baseURL 和 apiBaseURLs / the token goes only to baseURL and apiBaseURLs: ' + options.url })
    }
    let res = await call(withToken(options, await freshToken('request')), 'request')
    if (res.statusCode === 401) {
      logout()
      res = await call(withToken(options, await freshToken('request')), 'request')
    }
    return res
  }

  // phoneNumber：用 getPhoneNumber 按钮的 code 换取用户手机号；同时拿到带手机号的新令牌。
  // phoneNumber exchanges the code of <button open-type="getPhoneNumber">
  // for the user's number; the new token it gets carries the number.
  async function phoneNumber(code) {
    const send = async () =>
      call(withToken({ url: baseURL + '/phonenumber', method: 'POST', header: { 'Content-Type': 'application/json' }, data: { code } }, await freshToken('phone')), 'phone')
    let res = await send()
    if (res.statusCode === 401 && res.data && res.data.error === 'invalid_token') {
      logout() // refused before WeChat saw the code: log in and try once more
      res = await send()
    }
    if (res.statusCode !== 200) throw errorFrom(res, 'phone')
    const body = res.data
    if (!body || typeof body !== 'object' || typeof body.phone_number !== 'string' || !body.phone_number) {
      throw new AuthError('bad_response', res.statusCode, { step: 'phone', detail: 'POST /phonenumber 返回了 200 但没有 phone_number / answered 200 without a phone_number' })
    }
    store(body.token, body.expires_in)
    return { phoneNumber: body.phone_number, purePhoneNumber: body.pure_phone_number, countryCode: body.country_code }
  }

  return { login, token, logout, request, phoneNumber }
}

module.exports = { createAuth, AuthError, MESSAGES, TOKEN_KEY, messageFor, errorFrom, phoneButtonError, logError }
