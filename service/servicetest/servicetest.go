// Package servicetest starts a whole service in-process (embedded NATS and
// FerretDB in a temporary directory) for end-to-end tests, with a small HTTP
// client bundle.
package servicetest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/openanalyst/mcp-integration-service/config"
	"github.com/openanalyst/mcp-integration-service/keyring"
	"github.com/openanalyst/mcp-integration-service/service"
)

// Bundle is a running service and a client for it.
type Bundle struct {
	In   *service.Instance
	URL  string
	Key  string
	HTTP *http.Client
}

var seq atomic.Int64

// Env is extra configuration for Start.
type Env map[string]string

// Start runs a service in mode with a fresh data dir and the given extra
// environment, stopping it when the test (or the calling TestMain) ends.
// Pass t == nil from TestMain and call Close yourself.
func Start(t testing.TB, mode service.Mode, env Env, opts service.Options) (*Bundle, error) {
	dir, err := os.MkdirTemp("", "mcp-test-")
	if err != nil {
		return nil, err
	}
	key, _ := keyring.Generate()
	base := map[string]string{
		"MCP_DATA_DIR": dir, "MCP_SERVICE_HOST": "127.0.0.1", "MCP_SERVICE_PORT": "0",
		"AGENT_API_KEY":     "test-key-" + strings.Repeat("x", 8) + time.Now().Format("150405.000000"),
		"DB_ENCRYPTION_KEY": key, "MCP_LOG_LEVEL": "warn", "MCP_JOB_TIMEOUT": "20s",
	}
	for k, v := range env {
		base[k] = v
	}
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := base[k]; return v, ok })
	if err != nil {
		return nil, err
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Logger == nil {
		opts.Logger = service.NewLogger(io.Discard, "error")
		if os.Getenv("MCP_TEST_LOG") != "" {
			opts.Logger = service.NewLogger(os.Stderr, os.Getenv("MCP_TEST_LOG"))
		}
	}
	in, err := service.Start(context.Background(), cfg, mode, opts)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	b := &Bundle{In: in, URL: in.URL, Key: cfg.APIKey, HTTP: &http.Client{Timeout: 60 * time.Second}}
	if t != nil {
		t.Cleanup(func() { b.Close(); _ = os.RemoveAll(dir) })
	}
	return b, nil
}

// Close stops the service.
func (b *Bundle) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = b.In.Shutdown(ctx)
}

// Collection opens a collection of the service's own database directly,
// for tests that inspect stored documents raw (encrypted credentials, token
// hashes, audit entries). The client closes when the test ends.
func (b *Bundle) Collection(t testing.TB, name string) *mongo.Collection {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(b.In.StorageURI()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c.Database(b.In.Config.MongoDBName).Collection(name)
}

// User returns a user id unique to this test run.
func User(t testing.TB) string {
	return "u-" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + time.Now().Format("150405.000") + "-" +
		string(rune('a'+seq.Add(1)%26))
}

// Response is a decoded answer.
type Response struct {
	Status int
	Body   []byte
	JSON   map[string]any
	Header http.Header
}

// Do sends a request with the API key. body may be nil, a string/[]byte
// (sent as is) or anything JSON-encodable.
func (b *Bundle) Do(t testing.TB, method, path string, body any) *Response {
	t.Helper()
	return b.DoKey(t, b.Key, method, path, body)
}

// DoKey is Do with another API key ("" sends none).
func (b *Bundle) DoKey(t testing.TB, key, method, path string, body any) *Response {
	t.Helper()
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(v)
	case []byte:
		rd = bytes.NewReader(v)
	default:
		buf, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, b.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.HTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	r := &Response{Status: resp.StatusCode, Body: data, Header: resp.Header}
	_ = json.Unmarshal(data, &r.JSON)
	return r
}

// Expect fails the test unless the status matches.
func (r *Response) Expect(t testing.TB, status int) *Response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body: %s", r.Status, status, r.Body)
	}
	return r
}

// Str returns a top-level string field.
func (r *Response) Str(key string) string {
	s, _ := r.JSON[key].(string)
	return s
}
