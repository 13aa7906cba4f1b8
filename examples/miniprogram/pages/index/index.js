const { MESSAGES, messageFor, errorFrom, phoneButtonError, logError } = require('../../utils/auth')

const app = getApp()

Page({
  data: {
    status: '登录中…',
    openid: '',
    phone: '',
    error: '', // 给用户看的一句话，不含错误码 / the user's sentence, never a raw code
    // 错误码及其说法，给开发者参考。
    // Every error code and what the user is told, for developers.
    codes: Object.keys(MESSAGES).map((code) => ({
      code,
      login: messageFor({ code }, 'login'),
      phone: messageFor({ code }, 'phone'),
    })),
  },

  // onLoad：等 app.js 启动时的登录结束，再调用接口。
  // onLoad waits for the login app.js starts at launch, then calls the API.
  onLoad() {
    return app.ready.then(() => this.callAPI(), (err) => this.loginFailed(err))
  },

  // callAPI：带令牌调用接口。这里用 wxlogin 自己的 GET /session，
  // 代替你在 nginx auth_request 之后的后端。
  // callAPI calls an API with the token. Here it is wxlogin's own
  // GET /session, standing in for your backend behind nginx auth_request.
  async callAPI() {
    try {
      const res = await app.auth.request({ url: app.loginServer + '/session' })
      if (res.statusCode !== 200) throw errorFrom(res, 'login')
      this.setData({ status: '已登录', openid: res.data.openid, error: '' })
    } catch (err) {
      this.loginFailed(err)
    }
  },

  // loginFailed：登录失败。开发者信息进控制台，用户只看到一句话。
  // loginFailed: the developer's detail goes to the console, the user
  // sees one sentence.
  loginFailed(err) {
    logError(err, 'login')
    this.setData({ status: '未登录', openid: '', phone: '', error: messageFor(err, 'login') })
  },

  // phoneFailed：获取手机号失败。用户仍是登录状态，只说这一步失败了；
  // 用户自己拒绝时什么都不说。
  // phoneFailed: the phone step failed. The user is still logged in, so
  // only this step is reported; when the user declined, nothing is said.
  phoneFailed(err) {
    logError(err, 'phone')
    this.setData({ error: messageFor(err, 'phone') })
  },

  // onPhone：getPhoneNumber 按钮的回调。e.detail.code 是一次性的手机号 code；
  // 没有 code 时 e.detail.errno / errMsg 说明原因（用户拒绝、隐私指引未声明、额度用完、无权限）。
  // onPhone is the getPhoneNumber button's handler. e.detail.code is the
  // one-time phone code; without it, e.detail.errno and errMsg say why (the
  // user declined, the privacy guide lacks the phone number, the quota is
  // used up, the AppID lacks the permission).
  async onPhone(e) {
    const refused = phoneButtonError(e.detail)
    if (refused) return this.phoneFailed(refused)
    try {
      const { phoneNumber } = await app.auth.phoneNumber(e.detail.code)
      this.setData({ phone: phoneNumber, error: '' })
    } catch (err) {
      this.phoneFailed(err)
    }
  },

  // relogin：“重新登录”按钮：丢掉令牌，重新登录并调用接口。
  // relogin is the 重新登录 button: forget the token, log in, call the API.
  relogin() {
    app.auth.logout()
    this.setData({ status: '登录中…', openid: '', phone: '', error: '' })
    return app.auth.login().then(() => this.callAPI(), (err) => this.loginFailed(err))
  },
})
