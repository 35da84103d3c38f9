package connectors_test

import (
	"strings"
	"testing"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

func FuzzToolName(f *testing.F) {
	f.Add("DB_QUERY_db_abc123")
	f.Add("GMAIL_SEND_EMAIL")
	f.Fuzz(func(t *testing.T, action string) {
		prefix, dbID, ok := connectors.ParseToolName(action)
		if !ok {
			if prefix != "" || dbID != "" {
				t.Fatalf("refused %q but returned %q, %q", action, prefix, dbID)
			}
			return
		}
		// (The prefix may be a bare "DB", as in "DB_db_0": no tool has it, so
		// the worker answers tool_not_found.)
		if !strings.HasPrefix(prefix, "DB") || !strings.HasPrefix(dbID, "db_") || len(dbID) <= len("db_") {
			t.Fatalf("%q parsed as prefix %q, db_id %q", action, prefix, dbID)
		}
		if prefix+"_"+dbID != action {
			t.Fatalf("%q parsed as %q + %q", action, prefix, dbID)
		}
		// The db_id is the last "_db_" part: it holds no other.
		if strings.Contains(dbID[1:], "_db_") {
			t.Fatalf("%q: db_id %q is not the last part", action, dbID)
		}
		// The parts rebuild a name that parses the same way.
		p2, id2, ok2 := connectors.ParseToolName(prefix + "_" + dbID)
		if !ok2 || p2 != prefix || id2 != dbID {
			t.Fatalf("%q does not round-trip", action)
		}
	})
}
