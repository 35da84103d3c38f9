package web_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/internal/testservices"
)

// RequireBrowserEnv turns the browser test's skip into a failure.
const RequireBrowserEnv = "MCP_REQUIRE_BROWSER"

// TestBrowserE2E builds the service, starts it with the Composio sandbox,
// and drives the connectors page in headless Chromium (web/e2e).
//
// Needs: Debian's chromium (or CHROMIUM), node, web/e2e/node_modules
// (cd web/e2e && npm ci) and PostgreSQL. Without them it skips loudly, or
// fails under MCP_REQUIRE_BROWSER=1.
func TestBrowserE2E(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	var missing []string
	if _, err := os.Stat(chromium); err != nil {
		missing = append(missing, "Chromium at "+chromium+" (apt-get install -y chromium, or set CHROMIUM)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing = append(missing, "node on PATH")
	}
	if _, err := os.Stat(filepath.Join(root, "web", "e2e", "node_modules", "playwright-core", "package.json")); err != nil {
		missing = append(missing, "web/e2e/node_modules/playwright-core (cd web/e2e && npm ci)")
	}
	if len(missing) > 0 {
		msg := "!!! the browser test cannot run: missing " + strings.Join(missing, "; ") +
			". Install with: apt-get install -y chromium && (cd web/e2e && npm ci)"
		if os.Getenv(RequireBrowserEnv) == "1" {
			t.Fatal(msg + "; " + RequireBrowserEnv + "=1 forbids skipping")
		}
		t.Skip(msg + "; skipping (set " + RequireBrowserEnv + "=1 to fail instead)")
	}
	pgHost, pgPort := testservices.Need(t, testservices.Postgres)

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	tmp := t.TempDir()
	bin := filepath.Join(tmp, "mcp-service")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/mcp-service")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/mcp-service: %v\n%s", err, out)
	}

	port := freePort(t)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	key := randomHex(t, 24)
	svc := startService(t, bin, tmp, serviceEnv(map[string]string{
		"MCP_DATA_DIR":            tmp,
		"MCP_SERVICE_HOST":        "127.0.0.1",
		"MCP_SERVICE_PORT":        strconv.Itoa(port),
		"AGENT_API_KEY":           key,
		"OAUTH_ALLOWED_REDIRECTS": base,
		"OAUTH_REDIRECT_BASE":     base,
		"MCP_ALLOW_PRIVATE_HOSTS": "true",
		"MCP_METRICS_ADDR":        "127.0.0.1:" + strconv.Itoa(freePort(t)),
		"MCP_LOG_LEVEL":           "debug",
	}))
	svc.waitHealthy(t, base+"/api/tools/health", 2*time.Minute)

	out := os.Getenv("MCP_E2E_OUT")
	if out == "" {
		out = filepath.Join(root, "web", "e2e", "out")
	}
	spec := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", "web/e2e/connectors.spec.mjs")
	spec.Dir = root
	spec.Env = append(os.Environ(),
		"MCP_E2E_BASE_URL="+base,
		"MCP_E2E_API_KEY="+key,
		"MCP_E2E_USER=e2e-user-"+randomHex(t, 4),
		"MCP_E2E_PG_HOST="+pgHost,
		"MCP_E2E_PG_PORT="+strconv.Itoa(pgPort),
		"MCP_E2E_PG_DATABASE=test",
		"MCP_E2E_PG_USER=postgres",
		"MCP_E2E_OUT="+out,
		"CHROMIUM="+chromium,
		"NO_COLOR=1",
	)
	spec.WaitDelay = 10 * time.Second
	pr, pw := io.Pipe()
	spec.Stdout, spec.Stderr = pw, pw
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			t.Log(sc.Text())
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	err = spec.Run()
	_ = pw.Close()
	<-logged
	if err != nil {
		t.Fatalf("node --test web/e2e/connectors.spec.mjs: %v (screenshots in %s)", err, out)
	}
	t.Logf("screenshots in %s", out)
}

// TestPageRules runs the unit tests of the page's pure rules
// (web/static/lib.js) in Node; they need no browser and no service.
func TestPageRules(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		msg := "!!! node is not on PATH: the page's unit tests (web/e2e/lib.test.mjs) cannot run"
		if os.Getenv(RequireBrowserEnv) == "1" {
			t.Fatal(msg + "; " + RequireBrowserEnv + "=1 forbids skipping")
		}
		t.Skip(msg + "; skipping")
	}
	cmd := exec.Command(node, "--test", "--test-reporter=spec", "e2e/lib.test.mjs")
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("node --test web/e2e/lib.test.mjs: %v", err)
	}
}

// serviceEnv is this process's environment without anything the service
// reads (so a developer's settings cannot leak in), plus set.
func serviceEnv(set map[string]string) []string {
	prefixes := []string{"MCP_", "COMPOSIO_", "OAUTH_", "MONGODB_", "NATS_URL=", "AGENT_API_KEY=",
		"DB_ENCRYPTION_KEY=", "RATE_LIMIT_", "OTEL_"}
	var env []string
next:
	for _, kv := range os.Environ() {
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				continue next
			}
		}
		env = append(env, kv)
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	return env
}

type service struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  string
}

func startService(t *testing.T, bin, dir string, env []string) *service {
	t.Helper()
	logPath := filepath.Join(dir, "service.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--composio-sandbox")
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the service: %v", err)
	}
	s := &service{cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		s.err = cmd.Wait()
		_ = logFile.Close()
		close(s.done)
	}()
	t.Cleanup(func() {
		s.stop(t)
		if t.Failed() {
			s.dumpLog(t)
		}
	})
	return s
}

// stop sends SIGTERM, then SIGKILL after 10 s.
func (s *service) stop(t *testing.T) {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Log("the service did not stop within 10s of SIGTERM; killing it")
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

func (s *service) dumpLog(t *testing.T) {
	b, err := os.ReadFile(s.log)
	if err != nil {
		return
	}
	const max = 16 << 10
	if len(b) > max {
		b = append([]byte("…\n"), b[len(b)-max:]...)
	}
	t.Logf("service log (%s):\n%s", s.log, b)
}

func (s *service) waitHealthy(t *testing.T, url string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	client := &http.Client{Timeout: 3 * time.Second}
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			s.dumpLog(t)
			t.Fatalf("the service exited before it was healthy: %v", s.err)
		default:
		}
		res, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("%d %s", res.StatusCode, bytes.TrimSpace(body))
		} else {
			last = err.Error()
		}
		time.Sleep(250 * time.Millisecond)
	}
	s.dumpLog(t)
	t.Fatalf("GET %s did not answer 200 within %s; last: %s", url, within, last)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		t.Fatalf("unexpected address %v", l.Addr())
	}
	return addr.Port
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
