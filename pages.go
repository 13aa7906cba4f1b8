package main

import (
	"html/template"
	"net/http"
	"strconv"
	"strings"
)

// The web login's pages: small, without script, in Chinese when the
// browser prefers it, else English. They are shown where a redirect would
// be wrong (an unknown client or redirect_uri: never an open redirector),
// or where the user must act (open the link in WeChat, tap Continue).

// pageText is one page in one language.
type pageText struct {
	Title, Body, Button string
}

// pages holds every page in both languages, by the name the web login
// gives it.
var pages = map[string]map[string]pageText{
	"unknown_client": {
		"en": {Title: "Unknown application", Body: "The application that sent you here is not registered with this login service. Go back to it and tell its operator."},
		"zh": {Title: "未知的应用", Body: "引导你来到此页面的应用未在登录服务中注册。请返回该应用，并联系其管理员。"},
	},
	"invalid_redirect_uri": {
		"en": {Title: "Login link is not valid", Body: "The address this login would return to is not registered for the application. Go back to it and tell its operator."},
		"zh": {Title: "登录链接无效", Body: "此次登录要返回的地址未在该应用的登记中。请返回该应用，并联系其管理员。"},
	},
	"open_in_wechat": {
		"en": {Title: "Open this link in WeChat", Body: "This login works inside WeChat only. Open the link in WeChat (for example, send it to yourself and tap it there)."},
		"zh": {Title: "请在微信中打开", Body: "此登录只能在微信内完成。请在微信中打开此链接（例如发送给自己，再在微信里点开）。"},
	},
	"login_expired": {
		"en": {Title: "This login expired", Body: "This login expired or was started in another browser. Go back to the application and start again."},
		"zh": {Title: "登录已失效", Body: "此次登录已过期，或是在其他浏览器中发起的。请返回应用，重新登录。"},
	},
	"continue": {
		"en": {Title: "Log in with WeChat", Body: "Tap the button to log in with your WeChat account.", Button: "Continue with WeChat"},
		"zh": {Title: "微信登录", Body: "点击下方按钮，使用微信账号登录。", Button: "使用微信继续"},
	},
	"rate_limited": {
		"en": {Title: "Too many attempts", Body: "Too many logins came from your network. Wait a moment, then reload this page."},
		"zh": {Title: "操作过于频繁", Body: "来自你所在网络的登录过多。请稍候片刻，再刷新此页面。"},
	},
	"unavailable": {
		"en": {Title: "Busy", Body: "The login service is busy. Reload this page in a moment."},
		"zh": {Title: "服务繁忙", Body: "登录服务繁忙，请稍后刷新此页面。"},
	},
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="{{.Lang}}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.Title}}</title>
<style>body{font:16px/1.5 -apple-system,"PingFang SC","Microsoft YaHei",sans-serif;max-width:28em;margin:15vh auto;padding:0 1em;color:#222}h1{font-size:1.3em}a.button{display:inline-block;margin-top:1em;padding:.7em 1.4em;background:#07c160;color:#fff;border-radius:6px;text-decoration:none}</style>
</head><body><h1>{{.Title}}</h1><p>{{.Body}}</p>{{if .Link}}<p><a class="button" href="{{.Link}}">{{.Button}}</a></p>{{end}}</body></html>
`))

// Security headers of every page: nothing runs, nothing frames it,
// nothing is cached, no Referer leaves it (WeChat's code is in the URL).
var pageHeaders = map[string][]string{
	"Content-Type":            {"text/html; charset=utf-8"},
	"Content-Security-Policy": {"default-src 'none'; style-src 'unsafe-inline'"},
	"X-Frame-Options":         {"DENY"},
	"X-Content-Type-Options":  {"nosniff"},
	"Referrer-Policy":         {"no-referrer"},
	"Cache-Control":           {"no-store"},
}

// writePage answers with the page name, in the browser's language. link,
// when set, is the page's button.
func writePage(w http.ResponseWriter, r *http.Request, status int, name, link string) {
	lang := language(r.Header.Get("Accept-Language"))
	text := pages[name][lang]
	h := w.Header()
	for k, v := range pageHeaders {
		h[k] = v
	}
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	pageTemplate.Execute(w, struct {
		pageText
		Lang, Link string
	}{text, lang, link})
}

// language is "zh" when Accept-Language prefers Chinese to every other
// language, else "en".
func language(accept string) string {
	best, bestQ := "en", -1.0
	for _, part := range strings.Split(accept, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		tag = strings.ToLower(strings.TrimSpace(tag))
		if tag == "" || q <= 0 || q <= bestQ {
			continue
		}
		bestQ, best = q, "en"
		if tag == "zh" || strings.HasPrefix(tag, "zh-") {
			best = "zh"
		}
	}
	return best
}
