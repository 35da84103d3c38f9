// Command mcpbench is the service's load generator. It drives
// POST /api/tools/execute with DB_QUERY calls on the local PostgreSQL at
// several concurrencies, measures the floor (the same queries through a
// direct pgx pool from this process), the memory and CPU of `serve`, and the
// throughput of `api` with one and with two `worker` processes. It prints
// figures; it asserts nothing.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openanalyst/mcp-integration-service/embedded"
	"github.com/openanalyst/mcp-integration-service/keyring"
)

var (
	bin      = flag.String("bin", "bin/mcp-service", "service binary")
	dur      = flag.Duration("d", 4*time.Second, "duration of each measurement")
	pgHost   = flag.String("pg-host", "127.0.0.1", "PostgreSQL host")
	pgPort   = flag.Int("pg-port", 5432, "PostgreSQL port")
	pool     = flag.Int("pool", 16, "connections: MCP_POOL_SIZE of the service and MaxConns of the floor")
	levels   = flag.String("c", "1,16,64", "concurrency levels")
	scaleOut = flag.Bool("scale", true, "measure api + 1 worker vs api + 2 workers")
	syncMode = flag.String("sync", "always", "MCP_JOB_STREAM_SYNC of the service under test")
)

const apiKey = "bench-key"

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mcpbench:", err)
		os.Exit(1)
	}
}

type queryCase struct{ name, sql string }

func run() error {
	ctx := context.Background()
	dsn := fmt.Sprintf("host=%s port=%d dbname=test user=postgres sslmode=disable", *pgHost, *pgPort)
	admin, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return err
	}
	defer admin.Close()
	table := fmt.Sprintf("mcpbench_%d", time.Now().UnixNano())
	if _, err := admin.Exec(ctx, "CREATE TABLE "+table+" AS SELECT g AS id, 'name '||g AS name, g*1.5 AS score, now() AS at FROM generate_series(1,100) g"); err != nil {
		return err
	}
	defer func() { _, _ = admin.Exec(context.Background(), "DROP TABLE IF EXISTS "+table) }()
	cases := []queryCase{{"SELECT 1", "SELECT 1"}, {"100-row select", "SELECT id, name, score, at FROM " + table}}
	var cs []int
	for _, s := range strings.Split(*levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return err
		}
		cs = append(cs, n)
	}

	fmt.Printf("mcpbench: %d CPUs, %s per measurement, pool %d, PostgreSQL %s:%d\n\n", numCPU(), *dur, *pool, *pgHost, *pgPort)

	// serve, all in one process, embedded NATS and FerretDB.
	dir, _ := os.MkdirTemp("", "mcpbench-")
	defer os.RemoveAll(dir)
	port := freePort()
	serve, err := startProc(map[string]string{"MCP_DATA_DIR": filepath.Join(dir, "serve"), "MCP_SERVICE_HOST": "127.0.0.1",
		"MCP_SERVICE_PORT": strconv.Itoa(port), "AGENT_API_KEY": apiKey, "MCP_POOL_SIZE": strconv.Itoa(*pool),
		"MCP_LOG_LEVEL": "warn", "MCP_JOB_STREAM_SYNC": *syncMode}, "serve")
	if err != nil {
		return err
	}
	defer serve.stop()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := waitUp(base); err != nil {
		return err
	}
	time.Sleep(time.Second)
	fmt.Printf("serve RSS idle: %.1f MiB\n\n", rssMiB(serve.pid()))
	client := newClient()
	dbID, err := connect(client, base)
	if err != nil {
		return err
	}
	floor, err := pgxpool.New(ctx, dsn+fmt.Sprintf(" pool_max_conns=%d", *pool))
	if err != nil {
		return err
	}
	defer floor.Close()

	fmt.Printf("%-15s %4s | %10s %10s %10s | %10s %10s %10s | %7s %10s\n", "query", "c", "p50", "p99", "req/s",
		"floor p50", "floor p99", "floor r/s", "ratio", "cpu us/req")
	var peakRSS float64
	for _, qc := range cases {
		body := fmt.Sprintf(`{"user_id":"bench","action":"DB_QUERY_%s","params":{"query":%q}}`, dbID, qc.sql)
		for _, c := range cs {
			cpu0 := cpuSeconds(serve.pid())
			var rssMax float64
			stopRSS := sampleRSS(serve.pid(), &rssMax)
			ours, err := load(c, func() error { return execute(client, base, body) })
			stopRSS()
			cpu := cpuSeconds(serve.pid()) - cpu0
			if err != nil {
				return fmt.Errorf("%s c=%d: %w", qc.name, c, err)
			}
			if c == 64 && qc.name == "SELECT 1" {
				peakRSS = rssMax
			}
			fl, err := load(c, func() error { return direct(ctx, floor, qc.sql) })
			if err != nil {
				return err
			}
			fmt.Printf("%-15s %4d | %10s %10s %10.0f | %10s %10s %10.0f | %6.2fx %10.0f\n", qc.name, c,
				ms(ours.p50), ms(ours.p99), ours.rps, ms(fl.p50), ms(fl.p99), fl.rps, ours.rps/fl.rps,
				cpu*1e6/float64(ours.n))
		}
	}
	fmt.Printf("\nserve RSS under c=64 SELECT 1 load: %.1f MiB (peak sampled)\n", peakRSS)
	serve.stop()

	if *scaleOut {
		if err := scale(dsn, dir); err != nil {
			return err
		}
	}
	return nil
}

// scale measures api + 1 worker, then api + 2 workers, on one NATS.
func scale(_ string, dir string) error {
	ns, err := embedded.StartNATS(filepath.Join(dir, "scale-nats"), 0)
	if err != nil {
		return err
	}
	defer ns.Close()
	fdb, err := embedded.StartFerret(context.Background(), filepath.Join(dir, "scale-ferret"), 0, nil)
	if err != nil {
		return err
	}
	defer func() { _ = fdb.Close() }()
	key, _ := keyring.Generate()
	port := freePort()
	env := map[string]string{"NATS_URL": ns.URL(), "MONGODB_URI": fdb.URI(), "AGENT_API_KEY": apiKey,
		"DB_ENCRYPTION_KEY": key, "MCP_ALLOW_PRIVATE_HOSTS": "true", "MCP_LOG_LEVEL": "warn",
		"MCP_POOL_SIZE": strconv.Itoa(*pool), "MCP_METRICS_ADDR": "127.0.0.1:0"}
	apiEnv := map[string]string{"MCP_SERVICE_HOST": "127.0.0.1", "MCP_SERVICE_PORT": strconv.Itoa(port)}
	for k, v := range env {
		apiEnv[k] = v
	}
	apiP, err := startProc(apiEnv, "api")
	if err != nil {
		return err
	}
	defer apiP.stop()
	w1, err := startProc(env, "worker")
	if err != nil {
		return err
	}
	defer w1.stop()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := waitUp(base); err != nil {
		return err
	}
	client := newClient()
	dbID, err := connect(client, base)
	if err != nil {
		return err
	}
	body := fmt.Sprintf(`{"user_id":"bench","action":"DB_QUERY_%s","params":{"query":"SELECT 1"}}`, dbID)
	fmt.Printf("\nscale-out (SELECT 1, c=64, one NATS):\n")
	r1, err := load(64, func() error { return execute(client, base, body) })
	if err != nil {
		return err
	}
	fmt.Printf("  api + 1 worker : %8.0f req/s  p50 %s  p99 %s\n", r1.rps, ms(r1.p50), ms(r1.p99))
	w2, err := startProc(env, "worker")
	if err != nil {
		return err
	}
	defer w2.stop()
	time.Sleep(2 * time.Second)
	r2, err := load(64, func() error { return execute(client, base, body) })
	if err != nil {
		return err
	}
	fmt.Printf("  api + 2 workers: %8.0f req/s  p50 %s  p99 %s  (%.2fx; all processes share %d CPUs)\n",
		r2.rps, ms(r2.p50), ms(r2.p99), r2.rps/r1.rps, numCPU())
	return nil
}

type result struct {
	n        int
	rps      float64
	p50, p99 time.Duration
}

// load runs f from c goroutines for the measurement duration.
func load(c int, f func() error) (result, error) {
	// Warm up.
	for i := 0; i < c; i++ {
		if err := f(); err != nil {
			return result{}, err
		}
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		lat      []time.Duration
		firstErr atomic.Value
		stop     atomic.Bool
	)
	start := time.Now()
	for i := 0; i < c; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 4096)
			for !stop.Load() {
				t0 := time.Now()
				if err := f(); err != nil {
					firstErr.CompareAndSwap(nil, err)
					stop.Store(true)
					break
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	time.Sleep(*dur)
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)
	if err, _ := firstErr.Load().(error); err != nil {
		return result{}, err
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) == 0 {
		return result{}, fmt.Errorf("no request completed")
	}
	return result{n: len(lat), rps: float64(len(lat)) / elapsed.Seconds(),
		p50: lat[len(lat)/2], p99: lat[len(lat)*99/100]}, nil
}

func newClient() *http.Client {
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256,
		IdleConnTimeout: time.Minute}}
}

func execute(c *http.Client, base, body string) error {
	req, _ := http.NewRequestWithContext(context.Background(), "POST", base+"/api/tools/execute", strings.NewReader(body))
	req.Header.Set("X-API-Key", apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 || !bytes.HasPrefix(b, []byte(`{"success":true`)) {
		return fmt.Errorf("execute: %d %.200s", resp.StatusCode, b)
	}
	return nil
}

// direct is the floor: the same query through pgx, rows decoded as the
// service must (to values), nothing else.
func direct(ctx context.Context, p *pgxpool.Pool, sql string) error {
	rows, err := p.Query(ctx, sql)
	if err != nil {
		return err
	}
	for rows.Next() {
		if _, err := rows.Values(); err != nil {
			rows.Close()
			return err
		}
	}
	rows.Close()
	return rows.Err()
}

func connect(c *http.Client, base string) (string, error) {
	body := fmt.Sprintf(`{"user_id":"bench","db_type":"postgres","name":"bench","host":%q,"port":%d,"database":"test","username":"postgres","password":"x"}`, *pgHost, *pgPort)
	req, _ := http.NewRequestWithContext(context.Background(), "POST", base+"/api/databases/connect", strings.NewReader(body))
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
		return "", fmt.Errorf("connect: %d %s", resp.StatusCode, b)
	}
	return out.DBID, nil
}

type proc struct {
	cmd  *exec.Cmd
	once sync.Once
}

func startProc(env map[string]string, args ...string) (*proc, error) {
	cmd := exec.CommandContext(context.Background(), *bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", *bin, err)
	}
	return &proc{cmd: cmd}, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) stop() {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-done
		}
	})
}

func waitUp(base string) error {
	for i := 0; i < 300; i++ {
		req, _ := http.NewRequestWithContext(context.Background(), "GET", base+"/api/tools/health", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not become healthy", base)
}

func freePort() int {
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d.Microseconds())/1000) }

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

// rssMiB reads a process's resident set size.
func rssMiB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func sampleRSS(pid int, peak *float64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			if r := rssMiB(pid); r > *peak {
				*peak = r
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// cpuSeconds reads a process's user+system CPU time.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // clock ticks; USER_HZ is 100 on Linux
}
