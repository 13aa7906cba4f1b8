const { createAuth, logError } = require('./utils/auth')

// 开发时：在 wxlogin 仓库里运行 `go run . -mock`，并在开发者工具里勾选
// “不校验合法域名”（project.config.json 已设 urlCheck: false）。mock 不设
// WX_APPID 时接受任何格式正确的 AppID，所以 project.config.json 里可以直接填你自己的 AppID。
// 上线时：换成你的 wxlogin 的 HTTPS 域名，并在公众平台「开发管理 → 开发设置 →
// 服务器域名」把它加入 request 合法域名，否则真机上 wx.request 报
// `request:fail url not in domain list`（logError 会在控制台说明）。
//
// During development: `go run . -mock` in the wxlogin repository, and in
// the developer tools tick "不校验合法域名" (project.config.json sets
// urlCheck false). The mock without WX_APPID takes any well-formed AppID,
// so your own AppID can stay in project.config.json. In production: your
// wxlogin's HTTPS domain, listed as a request domain (服务器域名 → request
// 合法域名) in the mini-program's console; otherwise wx.request fails on
// phones with `request:fail url not in domain list` (logError says so).
const LOGIN_SERVER = 'http://localhost:2020'

App({
  auth: createAuth({ baseURL: LOGIN_SERVER }),
  loginServer: LOGIN_SERVER,

  // onLaunch：启动即登录；页面等待 this.ready。失败时开发者信息（如 unknown_app
  // 说明的是哪个 AppID）打到控制台。
  // onLaunch logs in at launch; pages wait for this.ready. On failure the
  // developer's detail (for unknown_app, which AppID was sent) goes to the
  // console.
  onLaunch() {
    this.ready = this.auth.login().catch((err) => {
      logError(err, 'login')
      throw err
    })
  },
})
