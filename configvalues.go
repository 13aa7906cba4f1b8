package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"wxlogin/internal/token"
)

// configError is a setting that stops startup; main exits 2 on it.
type configError struct {
	setting string // the variable or flag, as the user wrote it
	problem string
}

func (e *configError) Error() string {
	if e.setting == "" {
		return e.problem
	}
	return e.setting + ": " + e.problem
}

// Parsers of the settings table. Each checks a value and stores it in its
// field, and returns the problem with the value without naming the
// setting.

func text(s *string) func(string) error {
	return func(v string) error { *s = v; return nil }
}

// list reads comma-separated values, spaces trimmed, empty ones dropped.
func list(l *[]string) func(string) error {
	return func(v string) error {
		*l = nil
		for _, x := range strings.Split(v, ",") {
			if x = strings.TrimSpace(x); x != "" {
				*l = append(*l, x)
			}
		}
		return nil
	}
}

func duration(d *time.Duration, lowest time.Duration) func(string) error {
	return func(v string) error {
		x, err := time.ParseDuration(strings.TrimSpace(v))
		switch {
		case err != nil:
			return fmt.Errorf("%q is not a duration such as 5s or 2h", v)
		case x >= lowest:
			*d = x
			return nil
		case lowest == 0:
			return fmt.Errorf("%q must not be negative", v)
		case lowest == time.Nanosecond:
			return fmt.Errorf("%q must be positive", v)
		}
		return fmt.Errorf("%q must be at least %v", v, lowest)
	}
}

func atLeastOne(n *int) func(string) error {
	return func(v string) error {
		x, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || x < 1 {
			return fmt.Errorf("%q is not a whole number of at least 1", v)
		}
		*n = x
		return nil
	}
}

func onOff(b *bool) func(string) error {
	return func(v string) error {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "1", "true", "yes":
			*b = true
		case "", "0", "false", "no":
			*b = false
		default:
			return fmt.Errorf("%q is not one of 1, true, yes, 0, false, no", v)
		}
		return nil
	}
}

func oneOf(s *string, choices ...string) func(string) error {
	return func(v string) error {
		x := strings.ToLower(strings.TrimSpace(v))
		for _, c := range choices {
			if x == c {
				*s = x
				return nil
			}
		}
		return fmt.Errorf("%q is not %s", v, strings.Join(choices, " or "))
	}
}

func logLevel(l *slog.Level) func(string) error {
	return func(v string) error {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "info":
			*l = slog.LevelInfo
		case "debug":
			*l = slog.LevelDebug
		case "warn", "warning":
			*l = slog.LevelWarn
		case "error":
			*l = slog.LevelError
		default:
			return fmt.Errorf("%q is not debug, info, warn or error", v)
		}
		return nil
	}
}

// listenAddr validates a listen address, host:port with a numeric port.
func listenAddr(addr *string) func(string) error {
	return func(v string) error {
		_, p, err := net.SplitHostPort(v)
		if err != nil {
			return fmt.Errorf("%q is not host:port (for example :2020)", v)
		}
		if err := port(new(string))(p); err != nil {
			return err
		}
		*addr = v
		return nil
	}
}

// port reads a port number, 0–65535.
func port(p *string) func(string) error {
	return func(v string) error {
		if v == "" {
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 65535 {
			return fmt.Errorf("%q is not a port number", v)
		}
		*p = v
		return nil
	}
}

// issuer accepts a name such as wxlogin, or an absolute http(s) URL without
// query or fragment (its trailing slash dropped), which turns on discovery.
func issuer(s *string) func(string) error {
	return func(v string) error {
		v = strings.TrimSpace(v)
		if v == "" {
			return errors.New("must not be empty")
		}
		if strings.Contains(v, "://") {
			u, err := url.Parse(v)
			switch {
			case err != nil:
				return errors.New("is not a URL") // its text may hold a password: not echoed
			case u.User != nil:
				return fmt.Errorf("%q must not hold user info", u.Redacted())
			case (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
				u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(v, "?") || strings.HasSuffix(v, "#"):
				return fmt.Errorf("%q is not an absolute https:// (or http://) URL without query or fragment", v)
			}
			v = strings.TrimRight(v, "/")
		}
		*s = v
		return nil
	}
}

// rateSetting reads N/duration (600/1m, 10/1h); 0, off or empty is no limit.
func rateSetting(r *rate) func(string) error {
	return func(v string) error {
		v = strings.TrimSpace(v)
		switch strings.ToLower(v) {
		case "", "0", "off":
			*r = rate{}
			return nil
		}
		ns, ds, ok := strings.Cut(v, "/")
		n, err := strconv.Atoi(ns)
		if !ok || err != nil || n < 1 {
			return fmt.Errorf("%q is not N/duration with N at least 1, such as 600/1m or 10/1h (0 = off)", v)
		}
		d, err := time.ParseDuration(ds)
		if err != nil || d <= 0 {
			return fmt.Errorf("%q is not N/duration with a positive duration, such as 600/1m or 10/1h", v)
		}
		*r = rate{n, d}
		return nil
	}
}

// prefixes reads comma-separated CIDRs or single addresses.
func prefixes(p *[]netip.Prefix) func(string) error {
	return func(v string) error {
		*p = nil
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			if pre, err := netip.ParsePrefix(s); err == nil {
				*p = append(*p, pre.Masked())
				continue
			}
			a, err := netip.ParseAddr(s)
			if err != nil {
				return fmt.Errorf("%q is not an IP address or CIDR", s)
			}
			a = a.Unmap()
			*p = append(*p, netip.PrefixFrom(a, a.BitLen()))
		}
		return nil
	}
}

// keyFile reads TOKEN_KEY_FILE: a PEM file of one or more private keys.
func keyFile(keys *[]*token.Key) func(string) error {
	return func(path string) error {
		if path == "" {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err // a *PathError: the path and the reason
		}
		if *keys, err = token.ParseKeys(data); err != nil {
			return fmt.Errorf("%s: %v", path, err)
		}
		return nil
	}
}

// secretFrom returns a secret given directly (value, from the variable
// env) or in a file, trimmed, and the name to blame for it. Giving both is
// ambiguous; an unreadable or empty file is an error. An empty result
// means neither was given.
func secretFrom(value, file, env, fileName string) (secret, from string, err error) {
	if value != "" && file != "" {
		return "", "", &configError{problem: env + " and " + fileName + " are both set: give only one"}
	}
	if file == "" {
		return strings.TrimSpace(value), env, nil
	}
	s, err := readSecretFile(file)
	if err != nil {
		return "", "", &configError{fileName, err.Error()}
	}
	return s, fileName, nil
}

// readSecretFile reads a secret file, trimmed; unreadable or empty is an
// error, which names the file and never its content.
func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err // a *PathError: the path and the reason
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("file %s is empty", path)
	}
	return s, nil
}

// parseBaseURL checks that raw is an absolute http(s) URL and returns it
// without a trailing slash, so that the endpoint path is never doubled.
func parseBaseURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	switch {
	case err != nil:
		return "", errors.New("is not a URL") // its text may hold a password: not echoed
	case u.User != nil:
		return "", fmt.Errorf("%q must not hold user info", u.Redacted())
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return "", fmt.Errorf("%q is not an absolute http:// or https:// URL", raw)
	case u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("%q must not have a query or fragment", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}
