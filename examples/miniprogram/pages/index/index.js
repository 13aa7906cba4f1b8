const { MESSAGES } = require('../../utils/auth')

const app = getApp()

Page({
  data: {
    status: '登录中…',
    openid: '',
    phone: '',
    error: '',
    // Every error code and what it means, as a table on the page.
    codes: Object.keys(MESSAGES).map((code) => ({ code, meaning: MESSAGES[code] })),
  },

  onLoad() {
    app.ready.then(() => this.callAPI(), (err) => this.showError(err))
  },

  // callAPI calls an API with the token. Here it is wxlogin's own
  // GET /session, standing in for your backend behind nginx auth_request.
  async callAPI() {
    try {
      const res = await app.auth.request({ url: app.loginServer + '/session' })
      if (res.statusCode !== 200) throw { code: res.data.error, message: MESSAGES[res.data.error] }
      this.setData({ status: '已登录', openid: res.data.openid, error: '' })
    } catch (err) {
      this.showError(err)
    }
  },

  showError(err) {
    this.setData({ status: '登录失败', error: err.code + '：' + err.message })
  },

  // onPhone is the getPhoneNumber button: e.detail.code is the one-time
  // phone code (absent when the user declined).
  async onPhone(e) {
    if (!e.detail.code) return
    try {
      const { phoneNumber } = await app.auth.phoneNumber(e.detail.code)
      this.setData({ phone: phoneNumber, error: '' })
    } catch (err) {
      this.showError(err)
    }
  },

  relogin() {
    app.auth.logout()
    this.setData({ status: '登录中…', openid: '', error: '' })
    app.auth.login().then(() => this.callAPI(), (err) => this.showError(err))
  },
})
