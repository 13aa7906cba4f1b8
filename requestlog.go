package main

import (
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"wxlogin/internal/wechat"
)

const maxRequestID = 64

// logRequests gives every answer an X-Request-Id and logs one line per
// request. It never logs a body, a query or an Authorization header, so
// codes, tokens and phone numbers stay out of the log.
func logRequests(logger *slog.Logger, proxies []netip.Prefix, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = rand.Text()
		}
		w.Header().Set("X-Request-Id", id)
		lw := &loggedResponse{ResponseWriter: w}
		next.ServeHTTP(lw, r)

		level := slog.LevelInfo
		switch {
		case r.URL.Path == "/healthz" || r.URL.Path == "/metrics":
			level = slog.LevelDebug
		case r.URL.Path == "/session" && lw.status == http.StatusOK:
			level = slog.LevelDebug // behind a gateway, every API call comes here
		case lw.status == http.StatusInternalServerError:
			level = slog.LevelError
		case lw.status >= 500:
			level = slog.LevelWarn
		}
		ctx := r.Context()
		if !logger.Enabled(ctx, level) {
			return
		}
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", lw.status),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			slog.String("request_id", id),
			slog.String("remote", r.RemoteAddr),
		}
		if len(proxies) > 0 {
			if c := clientAddr(r, proxies); c != clientAddr(r, nil) {
				attrs = append(attrs, slog.String("client", c.String()))
			}
		}
		if lw.err != nil {
			if code := wechat.Errcode(lw.err); code != 0 {
				attrs = append(attrs, slog.Int("errcode", code))
			}
			ae := clientError(lw.err)
			attrs = append(attrs, slog.String("error", ae.code))
			if ae != lw.err {
				attrs = append(attrs, slog.String("detail", lw.err.Error())) // what went wrong upstream
			}
		}
		logger.LogAttrs(ctx, level, "request", attrs...)
	})
}

// validRequestID accepts a client's id of 1–64 characters from
// A-Z a-z 0-9 . _ - (UUIDs included).
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestID {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c != '.' && !isCodeChar(c) {
			return false
		}
	}
	return true
}
