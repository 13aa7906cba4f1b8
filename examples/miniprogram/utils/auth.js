// Login with wxlogin and call your APIs with its token.
//
//   const { createAuth } = require('./utils/auth')
//   const auth = createAuth({ baseURL: 'https://login.example.com' })
//   await auth.login()                                   // wx.login → POST /openid → token in storage
//   const res = await auth.request({ url: 'https://api.example.com/me' })  // Authorization: Bearer …
//
// request() logs in when there is no valid token, and once more when the
// API answers 401 (the token expired or the key was rotated).

const TOKEN_KEY = 'wxlogin_token'

// What each error code of wxlogin means, for the user.
const MESSAGES = {
  invalid_request: '登录请求格式有误，请升级小程序',
  method_not_allowed: '登录请求方式有误，请升级小程序',
  request_too_large: '登录请求过大，请升级小程序',
  unsupported_media_type: '登录请求格式有误，请升级小程序',
  invalid_code: '登录凭证已失效，请重试',
  user_blocked: '微信判定此次登录存在风险，已被拦截',
  rate_limited: '登录的人太多了，请一分钟后再试',
  unavailable: '微信登录服务繁忙，请稍后重试',
  misconfigured: '登录服务配置有误，请联系开发者',
  upstream_error: '微信登录服务异常，请稍后重试',
  upstream_timeout: '微信登录服务超时，请稍后重试',
  invalid_token: '登录已过期，请重新登录',
  not_found: '登录服务地址有误，请联系开发者',
  network: '网络不可用，请检查网络后重试',
  wx_login_failed: '微信登录失败，请重试',
}

class AuthError extends Error {
  constructor(code, status, retryAfter) {
    super(MESSAGES[code] || '登录失败（' + code + '）')
    this.code = code // wxlogin's error code, or network / wx_login_failed
    this.status = status // HTTP status, 0 when there was no answer
    this.retryAfter = retryAfter // seconds, for rate_limited and unavailable
  }
}

function createAuth({ baseURL, wx = globalThis.wx }) {
  const call = (options) =>
    new Promise((resolve, reject) =>
      wx.request({ ...options, success: resolve, fail: () => reject(new AuthError('network', 0)) }))

  const wxLogin = () =>
    new Promise((resolve, reject) =>
      wx.login({ success: (res) => resolve(res.code), fail: () => reject(new AuthError('wx_login_failed', 0)) }))

  // login exchanges a fresh wx.login() code for the user's ids and a token.
  async function login() {
    const code = await wxLogin()
    const res = await call({
      url: baseURL + '/openid',
      method: 'POST',
      header: { 'Content-Type': 'application/json' },
      data: { code },
    })
    if (res.statusCode !== 200) {
      const code = (res.data && res.data.error) || 'http_' + res.statusCode
      const header = res.header || {}
      const retryAfter = Number(header['Retry-After'] || header['retry-after']) || undefined
      throw new AuthError(code, res.statusCode, retryAfter)
    }
    const { openid, unionid, token, expires_in: expiresIn } = res.data
    if (token) {
      wx.setStorageSync(TOKEN_KEY, { token, expiresAt: Date.now() + expiresIn * 1000 })
    }
    return { openid, unionid }
  }

  // token returns the stored token while it is valid, else ''.
  function token() {
    const t = wx.getStorageSync(TOKEN_KEY)
    return t && t.expiresAt > Date.now() ? t.token : ''
  }

  function logout() {
    wx.removeStorageSync(TOKEN_KEY)
  }

  const withToken = (options, t) => ({
    ...options,
    header: { ...(options.header || {}), Authorization: 'Bearer ' + t },
  })

  // request is wx.request with the token, logging in first when needed and
  // once more on a 401.
  async function request(options) {
    if (!token()) await login()
    let res = await call(withToken(options, token()))
    if (res.statusCode === 401) {
      logout()
      await login()
      res = await call(withToken(options, token()))
    }
    return res
  }

  return { login, token, logout, request }
}

module.exports = { createAuth, AuthError, MESSAGES, TOKEN_KEY }
