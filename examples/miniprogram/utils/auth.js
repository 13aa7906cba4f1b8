// Login with wxlogin and call your APIs with its token.
//
//   const { createAuth } = require('./utils/auth')
//   const auth = createAuth({ baseURL: 'https://login.example.com', apiBaseURLs: ['https://api.example.com'] })
//   await auth.login()                                   // wx.login → POST /openid → token in storage
//   const res = await auth.request({ url: 'https://api.example.com/me' })  // Authorization: Bearer …
//   const phone = await auth.phoneNumber(e.detail.code)  // from <button open-type="getPhoneNumber">
//
// request() logs in when there is no valid token, and once more when the
// API answers 401 (the token expired or the key was rotated). Concurrent
// calls share one login. The token goes only to baseURL and apiBaseURLs.

const TOKEN_KEY = 'wxlogin_token'

// What each error code means, for the user.
const MESSAGES = {
  invalid_request: '登录请求格式有误，请升级小程序',
  unknown_app: '登录服务未配置此小程序，请联系开发者',
  method_not_allowed: '登录请求方式有误，请升级小程序',
  request_too_large: '登录请求过大，请升级小程序',
  unsupported_media_type: '登录请求格式有误，请升级小程序',
  invalid_code: '登录凭证已失效，请重试',
  user_blocked: '微信判定此次登录存在风险，已被拦截',
  rate_limited: '请求太频繁了，请稍后再试',
  unavailable: '微信登录服务繁忙，请稍后重试',
  misconfigured: '登录服务配置有误，请联系开发者',
  upstream_error: '微信登录服务异常，请稍后重试',
  upstream_timeout: '微信登录服务超时，请稍后重试',
  invalid_token: '登录已过期，请重新登录',
  not_found: '登录服务地址有误，请联系开发者',
  network: '网络不可用，请检查网络后重试',
  wx_login_failed: '微信登录失败，请重试',
  bad_response: '登录服务返回了无法识别的结果，请联系开发者',
  untrusted_url: '不向此地址发送登录凭证',
  no_token: '登录服务未开启登录凭证（需设置 TOKEN_SECRET 或 TOKEN_KEY_FILE）',
}

class AuthError extends Error {
  constructor(code, status, { retryAfter, errMsg } = {}) {
    super(MESSAGES[code] || '登录失败（' + code + '）')
    this.code = code // wxlogin's error code, or one of network, wx_login_failed, bad_response, untrusted_url, no_token
    this.status = status // HTTP status, 0 when there was no answer
    this.retryAfter = retryAfter // seconds, for rate_limited and unavailable
    this.errMsg = errMsg // wx's own errMsg when wx.request or wx.login failed
  }
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

function createAuth({ baseURL, apiBaseURLs = [baseURL], wx = globalThis.wx, appid } = {}) {
  if (!baseURL) throw new Error('createAuth: baseURL is required')
  const trusted = [baseURL, ...apiBaseURLs]
  const app = appid || ownAppID(wx)

  const call = (options) =>
    new Promise((resolve, reject) =>
      wx.request({
        ...options,
        success: resolve,
        fail: (res) => reject(new AuthError('network', 0, { errMsg: res && res.errMsg })),
      }))

  const wxLogin = () =>
    new Promise((resolve, reject) =>
      wx.login({
        success: (res) => (res && res.code ? resolve(res.code) : reject(new AuthError('wx_login_failed', 0, { errMsg: res && res.errMsg }))),
        fail: (res) => reject(new AuthError('wx_login_failed', 0, { errMsg: res && res.errMsg })),
      }))

  // fail turns a non-200 answer of wxlogin into an AuthError.
  function fail(res) {
    const body = res.data && typeof res.data === 'object' ? res.data : {}
    const header = res.header || {}
    const retryAfter = Number(header['Retry-After'] || header['retry-after']) || undefined
    return new AuthError(body.error || 'http_' + res.statusCode, res.statusCode, { retryAfter })
  }

  function store(token, expiresIn) {
    if (typeof token === 'string' && token && expiresIn > 0) {
      wx.setStorageSync(TOKEN_KEY, { token, expiresAt: Date.now() + expiresIn * 1000 })
    }
  }

  let inFlight = null // the login under way, shared by everyone who needs one

  // login exchanges a fresh wx.login() code for the user's ids and a token.
  // Calls made while a login is under way share it.
  function login() {
    if (!inFlight) {
      inFlight = doLogin().finally(() => { inFlight = null })
    }
    return inFlight
  }

  async function doLogin() {
    const code = await wxLogin()
    const data = app ? { code, appid: app } : { code }
    const res = await call({ url: baseURL + '/openid', method: 'POST', header: { 'Content-Type': 'application/json' }, data })
    if (res.statusCode !== 200) throw fail(res)
    const body = res.data
    if (!body || typeof body !== 'object' || typeof body.openid !== 'string' || !body.openid) {
      throw new AuthError('bad_response', res.statusCode)
    }
    store(body.token, body.expires_in)
    return { openid: body.openid, unionid: body.unionid }
  }

  // token returns the stored token while it is valid, else ''.
  function token() {
    const t = wx.getStorageSync(TOKEN_KEY)
    return t && t.expiresAt > Date.now() ? t.token : ''
  }

  function logout() {
    wx.removeStorageSync(TOKEN_KEY)
  }

  // freshToken returns a valid token, logging in first when needed.
  async function freshToken() {
    if (!token()) await login()
    const t = token()
    if (!t) throw new AuthError('no_token', 0) // logged in, but wxlogin issues no tokens
    return t
  }

  const withToken = (options, t) => ({
    ...options,
    header: { ...(options.header || {}), Authorization: 'Bearer ' + t },
  })

  // request is wx.request with the token, logging in first when needed and
  // once more on a 401. The token goes only to trusted URLs.
  async function request(options) {
    if (!trusted.some((base) => under(options.url, base))) {
      throw new AuthError('untrusted_url', 0)
    }
    let res = await call(withToken(options, await freshToken()))
    if (res.statusCode === 401) {
      logout()
      res = await call(withToken(options, await freshToken()))
    }
    return res
  }

  // phoneNumber exchanges the code of <button open-type="getPhoneNumber">
  // for the user's number; the new token it gets carries the number.
  async function phoneNumber(code) {
    const send = async () =>
      call(withToken({ url: baseURL + '/phonenumber', method: 'POST', header: { 'Content-Type': 'application/json' }, data: { code } }, await freshToken()))
    let res = await send()
    if (res.statusCode === 401 && res.data && res.data.error === 'invalid_token') {
      logout() // refused before WeChat saw the code: log in and try once more
      res = await send()
    }
    if (res.statusCode !== 200) throw fail(res)
    const body = res.data
    if (!body || typeof body !== 'object' || typeof body.phone_number !== 'string' || !body.phone_number) {
      throw new AuthError('bad_response', res.statusCode)
    }
    store(body.token, body.expires_in)
    return { phoneNumber: body.phone_number, purePhoneNumber: body.pure_phone_number, countryCode: body.country_code }
  }

  return { login, token, logout, request, phoneNumber }
}

module.exports = { createAuth, AuthError, MESSAGES, TOKEN_KEY }
