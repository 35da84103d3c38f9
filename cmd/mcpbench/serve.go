package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

const apiKey = "bench-key"

// startServe starts `serve` in its default configuration, as `make run`
// gives it: only the data dir, host, port and API key are set (plus
// MCP_JOB_STREAM_SYNC when -sync asks for the opt-out).
func startServe(dir string) (*proc, string, error) {
	port := freePort()
	env := map[string]string{"MCP_DATA_DIR": dir, "MCP_SERVICE_HOST": "127.0.0.1",
		"MCP_SERVICE_PORT": strconv.Itoa(port), "AGENT_API_KEY": apiKey}
	if *syncMode != "" {
		env["MCP_JOB_STREAM_SYNC"] = *syncMode
	}
	p, err := startProc("serve", dir+".log", *bin, env, "serve")
	if err != nil {
		return nil, "", err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := waitHTTP(base + "/api/tools/health"); err != nil {
		p.stop()
		return nil, "", p.failed(err)
	}
	return p, base, nil
}

// connect registers the local PostgreSQL with the service and returns its db id.
func connect(c *http.Client, base string) (string, error) {
	body := fmt.Sprintf(`{"user_id":"bench","db_type":"postgres","name":"bench","host":%q,"port":%d,"database":"test","username":"postgres","password":"x"}`, *pgHost, *pgPort)
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, base+"/api/databases/connect", strings.NewReader(body))
	req.Header.Set("X-API-Key", apiKey)
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		DBID string `json:"db_id"`
	}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out); err != nil || out.DBID == "" {
		return "", fmt.Errorf("connect: %d %.200s", resp.StatusCode, b)
	}
	return out.DBID, nil
}

var serveHeaders = map[string]string{"X-API-Key": apiKey, "Content-Type": "application/json"}

func serveBody(dbID, sql string) []byte {
	return fmt.Appendf(nil, `{"user_id":"bench","action":"DB_QUERY_%s","params":{"query":%q}}`, dbID, sql)
}

// serveWorker calls DB_QUERY with sql through POST /api/tools/execute.
func serveWorker(c *http.Client, base, dbID, sql string) newWorker {
	return httpWorker(c, base+"/api/tools/execute", serveHeaders, serveBody(dbID, sql), checkServe)
}

// edgeWorker calls POST /api/tools/execute with an action the API refuses
// at its edge (400 invalid_field): the HTTP stack, the middleware, the body
// decoding and the error encoding, without the queue or a database.
func edgeWorker(c *http.Client, base string) newWorker {
	body := []byte(`{"user_id":"bench","action":"NOT A TOOL","params":{"query":"SELECT 1"}}`)
	return httpWorker(c, base+"/api/tools/execute", serveHeaders, body, func(status int, b []byte) error {
		if status != http.StatusBadRequest || !bytes.Contains(b, []byte(`"code":"invalid_field"`)) {
			return fmt.Errorf("edge: %d %.200s", status, b)
		}
		return nil
	})
}

func checkServe(status int, b []byte) error {
	if status != http.StatusOK || !bytes.HasPrefix(b, []byte(`{"success":true`)) {
		return fmt.Errorf("serve execute: %d %.200s", status, b)
	}
	return nil
}

// serveRows runs sql once and returns how many rows the service answered.
func serveRows(c *http.Client, base, dbID, sql string) (int, error) {
	var out struct {
		RowCount int `json:"row_count"`
	}
	err := postJSON(c, base+"/api/tools/execute", serveHeaders, serveBody(dbID, sql), checkServe, &out)
	return out.RowCount, err
}

// expectRows checks that sql answers want rows through the service.
func expectRows(c *http.Client, base, dbID, sql string, want int) error {
	n, err := serveRows(c, base, dbID, sql)
	if err != nil {
		return err
	}
	if n != want {
		return fmt.Errorf("serve answered %d rows for %.40q, want %d", n, sql, want)
	}
	return nil
}

// postJSON POSTs body once, judges the answer with check and decodes it into out.
func postJSON(c *http.Client, url string, headers map[string]string, body []byte,
	check func(int, []byte) error, out any) error {
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, url, bytes.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if err := check(resp.StatusCode, b); err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}
