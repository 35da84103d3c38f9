package api

import "testing"

func TestWithQueryKeepsOAsParameters(t *testing.T) {
	t.Parallel()
	set := map[string]string{"status": "success", "provider": "gmail"}
	for in, want := range map[string]string{
		"https://app.openanalyst.com/connectors?callback=true": "https://app.openanalyst.com/connectors?callback=true&status=success&provider=gmail",
		"https://app.openanalyst.com/connectors":               "https://app.openanalyst.com/connectors?status=success&provider=gmail",
		"https://app.openanalyst.com/c?status=old&b=1&a=2":     "https://app.openanalyst.com/c?b=1&a=2&status=success&provider=gmail",
		"https://app.openanalyst.com/c?x=a%20b#/connectors":    "https://app.openanalyst.com/c?x=a%20b&status=success&provider=gmail#/connectors",
	} {
		got, err := withQuery(in, set)
		if err != nil || got != want {
			t.Errorf("withQuery(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
