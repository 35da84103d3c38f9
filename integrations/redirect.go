package integrations

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// maxRedirectLen bounds a redirect_url.
const maxRedirectLen = 2048

// ParseOrigin normalises an allowlist entry such as
// "https://app.openanalyst.com" or "http://localhost:3000" to
// scheme://host[:port], lower case, without a default port. It refuses
// anything that is not a bare http(s) origin.
func ParseOrigin(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return "", fmt.Errorf("origin %q: %w", s, err)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("origin %q must be scheme://host[:port] only", s)
	}
	o, err := origin(u)
	if err != nil {
		return "", fmt.Errorf("origin %q: %w", s, err)
	}
	return o, nil
}

// origin returns the normalised origin of an absolute http(s) URL.
func origin(u *url.URL) (string, error) {
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", errors.New("only http and https are allowed")
	}
	if u.Opaque != "" || u.Host == "" {
		return "", errors.New("an absolute URL with a host is required")
	}
	host := strings.ToLower(u.Hostname())
	if host == "" || strings.HasSuffix(host, ".") {
		return "", errors.New("the host is missing or malformed")
	}
	port := u.Port()
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "", errors.New("the port is out of range")
		}
		port = strconv.Itoa(n)
	}
	if port == "443" && scheme == "https" || port == "80" && scheme == "http" {
		port = ""
	}
	if port != "" {
		return scheme + "://" + net.JoinHostPort(host, port), nil
	}
	if strings.Contains(host, ":") { // an IPv6 literal
		return scheme + "://[" + host + "]", nil
	}
	return scheme + "://" + host, nil
}

// CheckRedirect accepts raw only when it is an absolute http(s) URL whose
// origin (scheme, host and port) is exactly one of allowed (normalised by
// ParseOrigin), and returns it re-encoded, as the browser will be sent to
// it. It refuses credentials in the URL, control characters, backslashes
// and other schemes (javascript:, data:, …), so the service is never an
// open redirect.
func CheckRedirect(raw string, allowed []string) (string, error) {
	if raw == "" {
		return "", errors.New("redirect_url is required")
	}
	if len(raw) > maxRedirectLen {
		return "", fmt.Errorf("redirect_url is longer than %d characters", maxRedirectLen)
	}
	if strings.ContainsFunc(raw, func(r rune) bool { return r < 0x21 || r == 0x7f || r == '\\' }) {
		return "", errors.New("redirect_url contains spaces, control characters or backslashes")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("redirect_url is not a valid URL")
	}
	if u.User != nil {
		return "", errors.New("redirect_url may not carry credentials")
	}
	o, err := origin(u)
	if err != nil {
		return "", fmt.Errorf("redirect_url: %w", err)
	}
	if !slices.Contains(allowed, o) {
		if len(allowed) == 0 {
			return "", fmt.Errorf("redirect_url origin %s is not allowed: no origin is (set OAUTH_ALLOWED_REDIRECTS)", clip(o))
		}
		return "", fmt.Errorf("redirect_url origin %s is not in OAUTH_ALLOWED_REDIRECTS", clip(o))
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	return u.String(), nil
}

// clip keeps an echoed origin short: at most 64 bytes, then "…".
func clip(s string) string {
	if len(s) <= 64 {
		return s
	}
	return strings.ToValidUTF8(s[:64], "") + "…"
}
