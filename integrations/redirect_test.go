package integrations

import (
	"strings"
	"testing"
)

func TestParseOrigin(t *testing.T) {
	t.Parallel()
	good := map[string]string{
		"https://app.openanalyst.com":       "https://app.openanalyst.com",
		"HTTPS://App.OpenAnalyst.com/":      "https://app.openanalyst.com",
		"https://app.openanalyst.com:443":   "https://app.openanalyst.com",
		"http://localhost:3000":             "http://localhost:3000",
		"http://127.0.0.1:80":               "http://127.0.0.1",
		"http://[::1]:8001":                 "http://[::1]:8001",
		" https://app.openanalyst.com:8443": "https://app.openanalyst.com:8443",
	}
	for in, want := range good {
		got, err := ParseOrigin(in)
		if err != nil || got != want {
			t.Errorf("ParseOrigin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "app.openanalyst.com", "https://app.openanalyst.com/connectors",
		"https://user@app.openanalyst.com", "javascript:alert(1)", "ftp://app.openanalyst.com",
		"https://app.openanalyst.com?x=1", "https://app.openanalyst.com:99999", "https://"} {
		if got, err := ParseOrigin(in); err == nil {
			t.Errorf("ParseOrigin(%q) = %q, want an error", in, got)
		}
	}
}

func TestCheckRedirect(t *testing.T) {
	t.Parallel()
	allowed := []string{"https://app.openanalyst.com", "http://localhost:3000"}
	good := map[string]string{
		"https://app.openanalyst.com/connectors?callback=true": "https://app.openanalyst.com/connectors?callback=true",
		"https://APP.openanalyst.com:443/x#/connectors":        "https://app.openanalyst.com:443/x#/connectors",
		"HTTPS://app.openanalyst.com":                          "https://app.openanalyst.com",
		"http://localhost:3000/ui/":                            "http://localhost:3000/ui/",
	}
	for in, want := range good {
		got, err := CheckRedirect(in, allowed)
		if err != nil || got != want {
			t.Errorf("CheckRedirect(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"",
		"https://evil.com/connectors",
		"https://app.openanalyst.com.evil.com/",
		"https://evil.com?https://app.openanalyst.com",
		"https://app.openanalyst.com@evil.com/",
		"https://user:pass@app.openanalyst.com/",
		"http://app.openanalyst.com/",       // scheme differs
		"https://app.openanalyst.com:8443/", // port differs
		"http://localhost:3001/",            // port differs
		"https://app.openanalyst.com./",     // trailing dot
		"javascript:alert(document.cookie)", // not http(s)
		"JavaScript://app.openanalyst.com/%0aalert(1)",
		"data:text/html,<script>alert(1)</script>",
		"//app.openanalyst.com/connectors", // scheme-relative
		"/connectors",                      // relative
		"https:app.openanalyst.com",        // opaque
		"https:\\\\evil.com",               // backslashes
		"https://app.openanalyst.com\\@evil.com",
		"https://app.openanalyst.com/\r\nLocation: https://evil.com",
		"https://app.openanalyst.com/ x",
		"https://app.openanalyst.com/" + strings.Repeat("a", maxRedirectLen),
	} {
		if got, err := CheckRedirect(in, allowed); err == nil {
			t.Errorf("CheckRedirect(%q) = %q, want an error", in, got)
		}
	}
	if _, err := CheckRedirect("https://app.openanalyst.com/", nil); err == nil || !strings.Contains(err.Error(), "OAUTH_ALLOWED_REDIRECTS") {
		t.Errorf("empty allowlist: %v", err)
	}
}
