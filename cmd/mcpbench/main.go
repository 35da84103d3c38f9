// Command mcpbench is the service's load generator. It drives
// POST /api/tools/execute with DB_QUERY calls on the local PostgreSQL at
// several concurrencies against `serve` in its default configuration, the
// same queries against the peer MCP Toolbox for Databases (its REST invoke
// endpoint) and through a direct pgx pool from this process (the floor),
// then api with one and with two worker processes. With -soak it instead
// holds a steady load on `serve` and watches its resources. It prints
// figures; it asserts nothing.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

var (
	bin       = flag.String("bin", "bin/mcp-service", "service binary")
	dur       = flag.Duration("d", 4*time.Second, "measured duration of each cell")
	warm      = flag.Duration("warm", 500*time.Millisecond, "unmeasured warm-up before each cell")
	pgHost    = flag.String("pg-host", "127.0.0.1", "PostgreSQL host")
	pgPort    = flag.Int("pg-port", 5432, "PostgreSQL port")
	pool      = flag.Int("pool", 4, "MaxConns of the floor and MCP_POOL_SIZE of the split-mode workers (serve's default is 4, as is Toolbox's pgx default on 2 CPUs)")
	levels    = flag.String("c", "1,16,64", "concurrency levels")
	scaleOut  = flag.Bool("scale", true, "measure api + 1 worker vs api + 2 workers")
	syncMode  = flag.String("sync", "", "opt-out: MCP_JOB_STREAM_SYNC of serve (unset = the default, fsync always)")
	withPeer  = flag.Bool("toolbox", true, "measure MCP Toolbox too")
	cache     = flag.String("cache", ".cache/toolbox", "where the Toolbox npm package and its tools.yaml live")
	soak      = flag.Duration("soak", 0, "soak mode: hold a steady load on serve for this long")
	soakC     = flag.Int("soak-c", 32, "soak mode: concurrency")
	soakEvery = flag.Duration("soak-every", 30*time.Second, "soak mode: report interval")
	queueOnly = flag.Bool("queue", false, "only the queue floor (also printed by a full run): the job queue's round trip alone, in-process, no HTTP and no database")
)

func main() {
	flag.Parse()
	run := bench
	if *soak > 0 {
		run = runSoak
	}
	if *queueOnly {
		run = runQueueFloor
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mcpbench:", err)
		os.Exit(1)
	}
}

// queryCase is one measured query: its row label, Toolbox tool name, SQL
// and the number of rows it answers.
type queryCase struct {
	name, tool, sql string
	rows            int
}

// benchTable creates the 100-row table the queries read; drop removes it.
func benchTable(ctx context.Context) (dsn, table string, drop func(), err error) {
	dsn = fmt.Sprintf("host=%s port=%d dbname=test user=postgres sslmode=disable", *pgHost, *pgPort)
	admin, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return "", "", nil, err
	}
	table = fmt.Sprintf("mcpbench_%d", time.Now().UnixNano())
	if _, err := admin.Exec(ctx, "CREATE TABLE "+table+" AS SELECT g AS id, 'name '||g AS name, g*1.5 AS score, now() AS at FROM generate_series(1,100) g"); err != nil {
		admin.Close()
		return "", "", nil, err
	}
	return dsn, table, func() {
		_, _ = admin.Exec(context.Background(), "DROP TABLE IF EXISTS "+table)
		admin.Close()
	}, nil
}

// server is a measured server process and the figures gathered on it.
type server struct {
	p         *proc
	idle, rss float64 // MiB: idle after start, peak under load
}

type cellKey struct {
	query string
	c     int
}

func bench() error {
	ctx := context.Background()
	var cs []int
	for _, s := range strings.Split(*levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return err
		}
		cs = append(cs, n)
	}
	dsn, table, drop, err := benchTable(ctx)
	if err != nil {
		return err
	}
	defer drop()
	cases := []queryCase{{"SELECT 1", "select1", "SELECT 1", 1},
		{"100-row select", "rows100", "SELECT id, name, score, at FROM " + table, 100}}
	tmp, err := os.MkdirTemp("", "mcpbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	fmt.Printf("mcpbench: %d CPUs (shared by load generator and servers), %s per cell after %s warm-up, PostgreSQL %s:%d\n",
		numCPU(), *dur, *warm, *pgHost, *pgPort)
	fmt.Printf("serve: default configuration (MCP_POOL_SIZE default 4%s); floor: pgx pool of %d in this process\n",
		map[bool]string{true: ", MCP_JOB_STREAM_SYNC=" + *syncMode + " (OPT-OUT, not the default)", false: ""}[*syncMode != ""], *pool)

	client := newClient()
	sp, sBase, err := startServe(filepath.Join(tmp, "serve"))
	if err != nil {
		return err
	}
	defer sp.stop()
	dbID, err := connect(client, sBase)
	if err != nil {
		return sp.failed(err)
	}
	for _, qc := range cases {
		if err := expectRows(client, sBase, dbID, qc.sql, qc.rows); err != nil {
			return sp.failed(err)
		}
	}
	srv := &server{p: sp}
	tb, tBase := startPeer(client, cases)
	if tb != nil {
		defer tb.p.stop()
	}
	time.Sleep(time.Second)
	srv.idle = rssMiB(sp.pid())
	if tb != nil {
		tb.idle = rssMiB(tb.p.pid())
	}

	floor, err := pgxpool.New(ctx, dsn+fmt.Sprintf(" pool_max_conns=%d", *pool))
	if err != nil {
		return err
	}
	defer floor.Close()

	fmt.Printf("\n%-15s %3s | %-8s %9s %10s %10s %9s | %10s %9s\n", "query", "c", "target", "req/s", "p50", "p99",
		"cpu µs/req", "serve/tbx", "serve/floor")
	cells := map[cellKey]result{}
	for _, qc := range cases {
		for _, c := range cs {
			ours, err := load(c, *warm, *dur, sp.pid(), serveWorker(client, sBase, dbID, qc.sql))
			if err != nil {
				return sp.failed(fmt.Errorf("%s c=%d: %w", qc.name, c, err))
			}
			srv.rss = max(srv.rss, ours.rssPeak)
			cells[cellKey{qc.name, c}] = ours
			var peer *result
			if tb != nil {
				r, err := load(c, *warm, *dur, tb.p.pid(), toolboxWorker(client, tBase, qc.tool))
				if err != nil {
					return tb.p.failed(fmt.Errorf("%s c=%d: %w", qc.name, c, err))
				}
				tb.rss = max(tb.rss, r.rssPeak)
				cells[cellKey{"tbx " + qc.name, c}] = r
				peer = &r
			}
			fl, err := load(c, *warm, *dur, 0, floorWorker(floor, qc.sql))
			if err != nil {
				return fmt.Errorf("floor %s c=%d: %w", qc.name, c, err)
			}
			printCell(qc.name, c, ours, peer, fl)
		}
	}
	// The service's own HTTP edge, for reading the CPU figures: the same
	// process and route, answered before the queue.
	fmt.Printf("\nedge floor: the same serve, POST /api/tools/execute refused at its HTTP edge (400, no queue, no database)\n")
	fmt.Printf("%4s | %9s %10s %10s %12s\n", "c", "req/s", "p50", "p99", "cpu µs/req")
	edge := map[int]float64{}
	for _, c := range cs {
		r, err := load(c, *warm, *dur, sp.pid(), edgeWorker(client, sBase))
		if err != nil {
			return sp.failed(fmt.Errorf("edge c=%d: %w", c, err))
		}
		edge[c] = r.cpuPerReqUS
		fmt.Printf("%4d | %9.0f %10s %10s %12.0f\n", c, r.rps, ms(r.p50), ms(r.p99), r.cpuPerReqUS)
	}
	fmt.Printf("\nmemory (RSS MiB)   idle  loaded (peak sampled over all cells)\n")
	fmt.Printf("  serve         %7.1f %7.1f\n", srv.idle, srv.rss)
	if tb != nil {
		fmt.Printf("  toolbox       %7.1f %7.1f\n", tb.idle, tb.rss)
		tb.p.stop()
	}
	sp.stop()

	if *scaleOut {
		if err := scale(tmp); err != nil {
			return err
		}
	}
	// What crossing the queue costs by itself, for reading the CPU figures.
	fmt.Println()
	qcpu, err := queueFloor()
	if err != nil {
		return err
	}
	goals(cells, srv, tb != nil)
	if e, q := edge[64], qcpu[64]; e > 0 && q > 0 {
		fmt.Printf("\nfixed CPU per call at c=64, before any database work: edge %.0f µs + queue %.0f µs = %.0f µs\n", e, q, e+q)
		if tb != nil {
			budgets(cells, e+q)
		}
	}
	return nil
}

// budgets says, for each throughput goal set as a multiple of Toolbox, how
// much CPU a server may spend per call to reach it on this machine. At the
// goal's rate the whole machine has numCPU()/rate per call; the load
// generator, PostgreSQL and the kernel take what they took per Toolbox call
// in this run (at least as much for this service, which sends PostgreSQL
// more statements per read); the server has the rest. A budget below the
// fixed CPU of the HTTP edge and the queue cannot be met by any work on the
// path behind them.
func budgets(cells map[cellKey]result, fixed float64) {
	fmt.Printf("\nCPU budget of a goal at c=64: whole machine per call at the goal's rate, minus what the load generator,\n" +
		"PostgreSQL and the kernel took per Toolbox call in this run, leaves the server:\n")
	for _, g := range []struct {
		query string
		want  float64
	}{{"SELECT 1", 1.2}, {"100-row select", 3}} {
		tbx, ok := cells[cellKey{"tbx " + g.query, 64}]
		if !ok || tbx.machinePerReqUS <= 0 {
			continue
		}
		rate := tbx.rps * g.want
		whole := float64(numCPU()) * 1e6 / rate
		others := tbx.machinePerReqUS - tbx.cpuPerReqUS
		server := whole - others
		verdict := fmt.Sprintf("above the fixed %.0f µs: reachable only if the rest of the path fits in %.0f µs", fixed, server-fixed)
		if server < fixed {
			verdict = fmt.Sprintf("BELOW the fixed %.0f µs of the edge and the queue: out of reach on this machine", fixed)
		}
		fmt.Printf("  %-15s %.1fx = %6.0f req/s: machine %4.0f µs - others %4.0f µs = server %4.0f µs per call; %s\n",
			g.query, g.want, rate, whole, others, server, verdict)
	}
}

// startPeer installs and starts MCP Toolbox and checks each tool answers
// rows; on any failure it says so loudly and returns nil.
func startPeer(client *http.Client, cases []queryCase) (*server, string) {
	if !*withPeer {
		loud("MCP Toolbox NOT MEASURED: -toolbox=false")
		return nil, ""
	}
	binPath, err := toolboxBin(*cache)
	if err != nil {
		loud("MCP Toolbox NOT MEASURED (its column and goals are skipped): %v", err)
		return nil, ""
	}
	cfg := filepath.Join(*cache, "tools.yaml")
	if err := writeToolsYAML(cfg, cases); err != nil {
		loud("MCP Toolbox NOT MEASURED: %v", err)
		return nil, ""
	}
	p, base, err := startToolbox(binPath, cfg, filepath.Join(*cache, "toolbox.log"))
	if err != nil {
		loud("MCP Toolbox NOT MEASURED: %v", err)
		return nil, ""
	}
	var got []string
	for _, qc := range cases {
		n, err := toolboxRows(client, base, qc.tool)
		if err == nil && n != qc.rows {
			err = fmt.Errorf("%d rows, want %d", n, qc.rows)
		}
		if err != nil {
			p.stop()
			loud("MCP Toolbox NOT MEASURED: tool %s: %v", qc.tool, err)
			return nil, ""
		}
		got = append(got, fmt.Sprintf("%s -> %d row(s)", qc.tool, n))
	}
	fmt.Printf("toolbox: %s@%s, POST %s/api/tool/<name>/invoke {} answers %s\n", toolboxPkg, toolboxVersion, base,
		strings.Join(got, ", "))
	return &server{p: p}, base
}

func printCell(query string, c int, ours result, peer *result, fl result) {
	cpu := func(r result) string { return fmt.Sprintf("%9.0f", r.cpuPerReqUS) }
	vsPeer := "        -"
	if peer != nil {
		vsPeer = fmt.Sprintf("%8.2fx", ours.rps/peer.rps)
	}
	fmt.Printf("%-15s %3d | %-8s %9.0f %10s %10s %s | %10s %8.2fx\n", query, c, "serve", ours.rps, ms(ours.p50),
		ms(ours.p99), cpu(ours), vsPeer, ours.rps/fl.rps)
	if peer != nil {
		fmt.Printf("%-15s %3s | %-8s %9.0f %10s %10s %s |\n", "", "", "toolbox", peer.rps, ms(peer.p50), ms(peer.p99), cpu(*peer))
	}
	fmt.Printf("%-15s %3s | %-8s %9.0f %10s %10s %9s |\n", "", "", "floor", fl.rps, ms(fl.p50), ms(fl.p99), "-")
}

// goals compares the figures with the targets set for the service.
func goals(cells map[cellKey]result, srv *server, peer bool) {
	fmt.Printf("\ngoals:\n")
	line := func(name string, ok bool, figure string) {
		fmt.Printf("  %-6s %-44s %s\n", map[bool]string{true: "met", false: "MISSED"}[ok], name, figure)
	}
	na := func(name, why string) { fmt.Printf("  %-6s %-44s %s\n", "n/a", name, why) }
	ratio := func(name, query string, want float64) {
		ours, ok1 := cells[cellKey{query, 64}]
		tbx, ok2 := cells[cellKey{"tbx " + query, 64}]
		switch {
		case !peer:
			na(name, "Toolbox not measured")
		case !ok1 || !ok2:
			na(name, "c=64 not measured")
		default:
			r := ours.rps / tbx.rps
			line(name, r >= want, fmt.Sprintf("%.2fx (%.0f vs %.0f req/s)", r, ours.rps, tbx.rps))
		}
	}
	ratio("SELECT 1 c=64 >= 1.2x Toolbox", "SELECT 1", 1.2)
	ratio("100-row c=64 >= 3x Toolbox", "100-row select", 3)
	if r, ok := cells[cellKey{"SELECT 1", 1}]; ok {
		line("SELECT 1 c=1 p50 <= 0.5 ms", r.p50 <= 500*time.Microsecond, ms(r.p50))
	} else {
		na("SELECT 1 c=1 p50 <= 0.5 ms", "c=1 not measured")
	}
	if r, ok := cells[cellKey{"SELECT 1", 64}]; ok {
		line("serve CPU/request SELECT 1 c=64 <= 100 µs", r.cpuPerReqUS <= 100, fmt.Sprintf("%.0f µs", r.cpuPerReqUS))
	} else {
		na("serve CPU/request SELECT 1 c=64 <= 100 µs", "c=64 not measured")
	}
	line("serve RSS idle <= 80 MiB", srv.idle <= 80, fmt.Sprintf("%.1f MiB", srv.idle))
	line("serve RSS loaded <= 150 MiB", srv.rss <= 150, fmt.Sprintf("%.1f MiB (peak sampled)", srv.rss))
}
