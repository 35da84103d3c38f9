package main

import (
	"bytes"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/openanalyst/mcp-integration-service/config"
)

// The usage names every command, and every variable once, with at most one
// default.
func TestUsage(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	printUsage(&buf)
	out := buf.String()
	first, _, _ := strings.Cut(out, "\n")
	for _, cmd := range []string{"serve", "api", "worker", "rotate-keys", "audit", "nats", "help"} {
		if !strings.Contains(first, cmd) {
			t.Errorf("usage line %q lacks %s", first, cmd)
		}
	}
	for _, v := range config.Env {
		var line string
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) > 0 && f[0] == v.Name {
				line = l
			}
		}
		if line == "" {
			t.Errorf("%s is not listed", v.Name)
			continue
		}
		if n := strings.Count(line, "default"); n > 1 {
			t.Errorf("%s shows %d defaults: %s", v.Name, n, line)
		}
		if v.Default != "" && !strings.Contains(line, `(default "`+v.Default+`")`) {
			t.Errorf("%s does not show its default %q: %s", v.Name, v.Default, line)
		}
		if strings.Contains(line, `(default "")`) {
			t.Errorf("%s shows an empty default: %s", v.Name, line)
		}
	}
}

// With GOGC unset the binary sets its own GC target; an operator's GOGC wins.
func TestGCDefault(t *testing.T) {
	old := debug.SetGCPercent(50) // as the runtime does for GOGC=50
	defer debug.SetGCPercent(old)
	setGCDefault(func(k string) string {
		if k == "GOGC" {
			return "50"
		}
		return ""
	})
	if got := debug.SetGCPercent(50); got != 50 {
		t.Fatalf("GOGC=50: target %d, want 50 kept", got)
	}
	setGCDefault(func(string) string { return "" })
	if got := debug.SetGCPercent(100); got != gcPercent {
		t.Fatalf("GOGC unset: target %d, want %d", got, gcPercent)
	}
}
