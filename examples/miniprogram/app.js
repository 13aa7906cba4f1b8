const { createAuth } = require('./utils/auth')

// During development: `go run . -mock` in the wxlogin repository, and in the
// developer tools tick "不校验合法域名" (project.config.json sets urlCheck
// false). In production: your wxlogin's HTTPS domain, listed as a request
// domain (request合法域名) in the mini-program's console.
const LOGIN_SERVER = 'http://localhost:2020'

App({
  auth: createAuth({ baseURL: LOGIN_SERVER }),
  loginServer: LOGIN_SERVER,

  onLaunch() {
    // Log in on launch; pages wait for this promise.
    this.ready = this.auth.login().catch((err) => {
      console.warn('wxlogin:', err.code, err.message)
      throw err
    })
  },
})
