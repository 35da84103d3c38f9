package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/openanalyst/mcp-integration-service/tools"
)

// The hosts of a connection string, never its credentials or options.
func TestConnStringHosts(t *testing.T) {
	t.Parallel()
	for uri, want := range map[string]string{
		"mongodb://u:p%40ss@a.example:27017,b.example:27018/db?replicaSet=rs0": "a.example:27017,b.example:27018",
		"mongodb+srv://u:secret@cluster0.example.net/db":                       "cluster0.example.net",
		"mongodb://[::1]:27017/db":                                             "[::1]:27017",
		"mongodb://h.example/db":                                               "h.example",
		"postgres://u:p@h/db":                                                  "",
		"mongodb://u:p@/db":                                                    "",
	} {
		got := connStringHosts(uri)
		if got != want || strings.Contains(got, "p%40ss") || strings.Contains(got, "secret") {
			t.Errorf("connStringHosts(%q) = %q, want %q", uri, got, want)
		}
	}
}

// Only an answer about the connection is recorded on a database.
func TestCheckOutcome(t *testing.T) {
	t.Parallel()
	if ok, msg, checked := checkOutcome(nil); !ok || msg != "" || !checked {
		t.Fatal("a success is not recorded as connected")
	}
	for code, want := range map[string]bool{"connection_failed": true, "database_unavailable": true, "query_timeout": true,
		"host_not_allowed": true, "database_not_found": false, "storage_unavailable": false, "worker_timeout": false,
		"broker_unavailable": false, "database_busy": false, "invalid_request": false} {
		ok, _, checked := checkOutcome(&tools.Error{Code: code, Message: "m"})
		if ok || checked != want {
			t.Errorf("%s: checked = %v, want %v", code, checked, want)
		}
	}
	_, msg, _ := checkOutcome(&tools.Error{Code: "connection_failed", Message: strings.Repeat("é", 400)})
	if len(msg) > maxLastError+len("…") || !strings.HasSuffix(msg, "…") || strings.ContainsRune(msg, '\uFFFD') {
		t.Errorf("long message kept as %d bytes: %q", len(msg), msg)
	}
	if statusOf("connection_failed") != http.StatusUnprocessableEntity {
		t.Fatal("connection_failed is no longer a 422")
	}
	// The fleet's own limits are the service's answer, not the database's.
	for _, code := range []string{"database_busy", "broker_unavailable"} {
		if statusOf(code) != http.StatusServiceUnavailable {
			t.Errorf("%s is a %d, want 503", code, statusOf(code))
		}
	}
}
