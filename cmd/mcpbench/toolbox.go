package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// The peer: MCP Toolbox for Databases (googleapis/mcp-toolbox, formerly
// genai-toolbox), from npm at a pinned version.
const (
	toolboxPkg     = "@toolbox-sdk/server-linux-x64"
	toolboxVersion = "1.12.0"
)

// toolboxBin returns the Toolbox binary in cache, installing the pinned
// version with npm when it is missing or another version.
func toolboxBin(cache string) (string, error) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		return "", fmt.Errorf("%s runs on linux/amd64 only, this is %s/%s", toolboxPkg, runtime.GOOS, runtime.GOARCH)
	}
	modDir := filepath.Join(cache, "node_modules", toolboxPkg)
	binPath := filepath.Join(modDir, "bin", "toolbox")
	if installedVersion(modDir) == toolboxVersion {
		return binPath, nil
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return "", errors.New("npm is not installed")
	}
	if err := os.MkdirAll(cache, 0o750); err != nil {
		return "", err
	}
	fmt.Printf("installing %s@%s into %s ...\n", toolboxPkg, toolboxVersion, cache)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "install", "--prefix", cache, "--no-save", "--no-package-lock",
		"--no-audit", "--no-fund", "--loglevel=error", toolboxPkg+"@"+toolboxVersion)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("npm install %s@%s: %w: %.300s", toolboxPkg, toolboxVersion, err, out)
	}
	if v := installedVersion(modDir); v != toolboxVersion {
		return "", fmt.Errorf("npm installed version %q, want %s", v, toolboxVersion)
	}
	return binPath, nil
}

func installedVersion(modDir string) string {
	b, err := os.ReadFile(filepath.Join(modDir, "package.json"))
	if err != nil {
		return ""
	}
	var pkg struct{ Version string }
	if json.Unmarshal(b, &pkg) != nil {
		return ""
	}
	if _, err := os.Stat(filepath.Join(modDir, "bin", "toolbox")); err != nil {
		return ""
	}
	return pkg.Version
}

// writeToolsYAML writes Toolbox's configuration (the flat format of 1.x)
// with a source on the local PostgreSQL and one tool per query. The
// postgres source requires a password; trust auth ignores it.
func writeToolsYAML(path string, cases []queryCase) error {
	var b strings.Builder
	fmt.Fprintf(&b, "kind: source\nname: pg\ntype: postgres\nhost: %s\nport: %d\ndatabase: test\nuser: postgres\npassword: unused-with-trust-auth\n",
		*pgHost, *pgPort)
	for _, qc := range cases {
		fmt.Fprintf(&b, "---\nkind: tool\nname: %s\ntype: postgres-sql\nsource: pg\ndescription: bench %s\nstatement: %s\n",
			qc.tool, qc.name, qc.sql)
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// startToolbox serves cfg on a free port. 1.x serves the REST endpoint
// POST /api/tool/<name>/invoke only with --enable-api (otherwise 410 Gone,
// pointing at /mcp); --disable-version-check keeps it off the network.
func startToolbox(binPath, cfg, logPath string) (*proc, string, error) {
	port := freePort()
	p, err := startProc("toolbox", logPath, binPath, nil, "--config", cfg, "--address", "127.0.0.1",
		"--port", strconv.Itoa(port), "--enable-api", "--disable-version-check", "--disable-reload", "--log-level", "WARN")
	if err != nil {
		return nil, "", err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := waitHTTP(base + "/api/toolset"); err != nil {
		p.stop()
		return nil, "", p.failed(err)
	}
	return p, base, nil
}

// toolboxWorker invokes a Toolbox tool with no parameters.
func toolboxWorker(c *http.Client, base, tool string) newWorker {
	return httpWorker(c, base+"/api/tool/"+tool+"/invoke", toolboxHeaders, []byte("{}"), checkToolbox)
}

// toolboxHeaders: Toolbox answers 415 without a JSON content type.
var toolboxHeaders = map[string]string{"Content-Type": "application/json"}

func checkToolbox(status int, b []byte) error {
	if status != http.StatusOK || !bytes.HasPrefix(b, []byte(`{"result":`)) {
		return fmt.Errorf("toolbox invoke: %d %.200s", status, b)
	}
	return nil
}

// toolboxRows invokes tool once and counts the rows of its answer, which
// Toolbox gives as a JSON array encoded in a string.
func toolboxRows(c *http.Client, base, tool string) (int, error) {
	var out struct{ Result string }
	if err := postJSON(c, base+"/api/tool/"+tool+"/invoke", toolboxHeaders, []byte("{}"), checkToolbox, &out); err != nil {
		return 0, err
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out.Result), &rows); err != nil {
		return 0, fmt.Errorf("toolbox %s: result is not rows: %.100s", tool, out.Result)
	}
	return len(rows), nil
}

// loud prints a note nobody can miss.
func loud(format string, args ...any) {
	bar := strings.Repeat("!", 78)
	fmt.Printf("\n%s\n!!! %s\n%s\n\n", bar, fmt.Sprintf(format, args...), bar)
}
