package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/config"
	"github.com/openanalyst/mcp-integration-service/embedded"
	"github.com/openanalyst/mcp-integration-service/storage"
)

// `mcp-service audit` finds the store of a serve running on the data dir
// and prints a user's newest entries, newest first, as JSON lines.
func TestAuditCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data := t.TempDir()
	cfg := &config.Config{DataDir: data, MongoDBName: "mcp_integrations"}
	var out bytes.Buffer
	if code := printAudit(ctx, cfg, nil, &out); code != 1 {
		t.Fatalf("no store running: exit %d", code)
	}
	f, err := embedded.StartFerret(ctx, filepath.Join(data, "ferretdb"), -1, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	store, err := storage.Open(ctx, f.URI(), cfg.MongoDBName)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close(ctx)
	a, err := store.NewAuditor(ctx, storage.Retention{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Truncate(time.Millisecond)
	for i, u := range []string{"alice", "bob", "alice", "alice"} {
		a.Record(storage.AuditEntry{UserID: u, Action: "tool.execute", Target: string(rune('a' + i)), At: at.Add(time.Duration(i) * time.Second)})
	}
	a.Close()
	if code := printAudit(ctx, cfg, []string{"-user", "alice", "-limit", "2"}, &out); code != 0 {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var got []string
	for _, l := range lines {
		var e storage.AuditEntry
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.UserID != "alice" {
			t.Fatalf("line %q: %v", l, err)
		}
		got = append(got, e.Target)
	}
	if strings.Join(got, ",") != "d,c" {
		t.Fatalf("printed %v, want d,c", got)
	}
	if code := printAudit(ctx, cfg, []string{"-limit", "0"}, &out); code != 2 {
		t.Fatalf("-limit 0: exit %d", code)
	}
}
