package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/config"
	"github.com/openanalyst/mcp-integration-service/service"
)

// syncBuffer is a log sink safe for the service's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func load(t *testing.T, vars map[string]string) *config.Config {
	t.Helper()
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// call sends one request with the API key and decodes the JSON answer.
func call(t *testing.T, in *service.Instance, method, path, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, in.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-API-Key", in.Config.APIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// serve starts a serve-mode process on dir, logging into logs.
func serve(t *testing.T, dir string, logs io.Writer) *service.Instance {
	t.Helper()
	cfg := load(t, map[string]string{"MCP_DATA_DIR": dir, "MCP_SERVICE_HOST": "127.0.0.1", "MCP_SERVICE_PORT": "0"})
	in, err := service.Start(context.Background(), cfg, service.ModeServe,
		service.Options{Out: io.Discard, Logger: service.NewLogger(logs, "info")})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// serve mode in an empty data dir generates its secrets, serves, shuts down
// gracefully, and Close after Shutdown (twice) is harmless. Started again on
// the same dir it keeps its key and its records and logs no error: the
// indexes that exist are not created again.
func TestServeStartStopRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	logs := &syncBuffer{}
	in := serve(t, dir, logs)
	for _, f := range []string{"agent_api_key", "db_encryption_key"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("generated %s: %v %v", f, st, err)
		}
	}
	if status, body := call(t, in, http.MethodGet, "/readyz", ""); status != http.StatusOK || body["status"] != "ok" {
		t.Fatalf("readyz: %d %v", status, body)
	}
	status, minted := call(t, in, http.MethodPost, "/api/mcp/tokens", `{"user_id":"restart-user","label":"kept"}`)
	if status != http.StatusCreated || minted["token_id"] == nil {
		t.Fatalf("mint: %d %v", status, minted)
	}
	key, url := in.Config.APIKey, in.URL
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := in.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	in.Close()
	in.Close()
	if resp, err := http.Get(url + "/healthz"); err == nil { //nolint:noctx // a plain probe of a closed port
		resp.Body.Close()
		t.Fatalf("still serving after shutdown: %d", resp.StatusCode)
	}

	again := serve(t, dir, logs)
	defer again.Close()
	if again.Config.APIKey != key {
		t.Fatal("the restarted process generated another API key")
	}
	status, list := call(t, again, http.MethodGet, "/api/mcp/tokens?user_id=restart-user", "")
	tokens, _ := list["tokens"].([]any)
	if status != http.StatusOK || len(tokens) != 1 || tokens[0].(map[string]any)["label"] != "kept" {
		t.Fatalf("tokens after restart: %d %v", status, list)
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `"level":"ERROR`) || strings.Contains(line, "index") {
			t.Errorf("logged: %s", line)
		}
	}
}

// api and worker modes need external servers, and say which are missing,
// before anything starts.
func TestStartRefusesWithoutExternalServers(t *testing.T) {
	t.Parallel()
	for _, mode := range []service.Mode{service.ModeAPI, service.ModeWorker} {
		for _, c := range []struct {
			vars          map[string]string
			want, notWant string
		}{
			{map[string]string{}, "set NATS_URL and MONGODB_URI", ""},
			{map[string]string{"NATS_URL": "nats://127.0.0.1:1"}, "set MONGODB_URI", "NATS_URL"},
			{map[string]string{"MONGODB_URI": "mongodb://127.0.0.1:1"}, "set NATS_URL", "MONGODB_URI"},
			// Both set, no secrets: refused before dialling either.
			{map[string]string{"NATS_URL": "nats://127.0.0.1:1", "MONGODB_URI": "mongodb://127.0.0.1:1"},
				"AGENT_API_KEY, DB_ENCRYPTION_KEY", ""},
		} {
			c.vars["MCP_DATA_DIR"] = t.TempDir()
			start := time.Now()
			in, err := service.Start(context.Background(), load(t, c.vars), mode, service.Options{Out: io.Discard,
				Logger: service.NewLogger(io.Discard, "error")})
			if err == nil {
				in.Close()
				t.Fatalf("%s %v: started", mode, c.vars)
			}
			if !strings.Contains(err.Error(), c.want) || (c.notWant != "" && strings.Contains(err.Error(), c.notWant)) {
				t.Errorf("%s %v: %v; want %q", mode, c.vars, err, c.want)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("%s %v: refused after %s", mode, c.vars, took)
			}
			if entries, _ := os.ReadDir(c.vars["MCP_DATA_DIR"]); len(entries) != 0 {
				t.Errorf("%s %v: wrote to the data dir before refusing", mode, c.vars)
			}
		}
	}
}
