package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openanalyst/mcp-integration-service/connectors/postgres"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: clusterbench ferret|run [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "ferret":
		err = runFerret(os.Args[2:])
	case "run":
		err = runBench(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "clusterbench:", err)
		os.Exit(1)
	}
}

// errVerdict is returned when an invariant failed; the report says which.
var errVerdict = errors.New("FAIL")

type options struct {
	dir, script, net, pg   string
	reduced, strictBudget  bool
	budget, syncN, asyncN  int
	clientTimeout, drain   time.Duration
	asyncEvery, tputWindow time.Duration
}

func runBench(args []string) error {
	var o options
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	fs.StringVar(&o.dir, "dir", "/tmp/mcp-cluster", "bed state directory (CLUSTER_DIR)")
	fs.StringVar(&o.script, "bed", "scripts/cluster/bed.sh", "the bed script")
	fs.StringVar(&o.net, "net", "10.77.0", "the bridge's /24, without the last octet")
	fs.StringVar(&o.pg, "pg", "127.0.0.1:5432", "the user database (PostgreSQL) in the root namespace")
	fs.BoolVar(&o.reduced, "reduced", false, "CI mode: fewer faults, shorter phases")
	fs.BoolVar(&o.strictBudget, "strict-budget", false, "fail when the connection budget is exceeded")
	fs.IntVar(&o.budget, "budget", 8, "MCP_DB_MAX_CONNECTIONS the bed sets")
	fs.IntVar(&o.syncN, "sync", 6, "closed-loop sync callers during the fault phase")
	fs.IntVar(&o.asyncN, "async", 2, "async submitters during the fault phase")
	fs.DurationVar(&o.asyncEvery, "async-every", 100*time.Millisecond, "pause between one submitter's async jobs")
	fs.DurationVar(&o.clientTimeout, "client-timeout", 40*time.Second, "HTTP client timeout of every call (> MCP_JOB_TIMEOUT and haproxy's server timeout)")
	fs.DurationVar(&o.drain, "drain", 45*time.Second, "how long accepted async jobs, and those of 504s, may take to finish after the load")
	fs.DurationVar(&o.tputWindow, "tput", 6*time.Second, "duration of each throughput run")
	_ = fs.Parse(args)
	if o.reduced {
		o.drain, o.tputWindow = 25*time.Second, 4*time.Second
	}
	return bench(context.Background(), o)
}

func bench(ctx context.Context, o options) error {
	b := bed{script: o.script, net: o.net}
	key, err := os.ReadFile(filepath.Join(o.dir, "secrets", "api-key"))
	if err != nil {
		return err
	}
	fwd, err := startForwarder(ctx, o.net+".1:5432", o.pg)
	if err != nil {
		return fmt.Errorf("forwarder: %w", err)
	}
	defer fwd.close()
	lb := "http://" + b.addr("lb") + ":8001"
	if err := waitOK(ctx, lb+"/readyz", 30*time.Second); err != nil {
		return err
	}
	c := newClient(lb, strings.TrimSpace(string(key)), "cluster-user", o.clientTimeout)
	if c.dbID, err = c.connectDB(ctx, o.net+".1", 5432); err != nil {
		return err
	}
	fmt.Printf("user database %s:5432 (forwarded to %s) saved as %s\n", o.net+".1", o.pg, c.dbID)
	policyOK := hostPolicy(ctx, c, b)

	smp, err := startSampler(ctx, o.pg, fwd)
	if err != nil {
		return err
	}
	defer smp.stop()

	// Throughput with 1, 2 and 4 workers (1 and 4 reduced); w1 is running.
	levels := []int{1, 2, 4}
	if o.reduced {
		levels = []int{1, 4}
	}
	fmt.Printf("\nthroughput (sync SELECT 1 through haproxy, 16 callers, %s each):\n", o.tputWindow)
	running := 1
	for _, n := range levels {
		for running < n {
			running++
			if err := b.startWorker(ctx, fmt.Sprintf("w%d", running)); err != nil {
				return err
			}
		}
		// Every worker knows its share of the connection budget; then a
		// moment for the connections beyond a share to be given back.
		took, err := b.settled(ctx, n, 15*time.Second)
		if err != nil {
			return err
		}
		time.Sleep(time.Second)
		t := throughput(ctx, c, 16, o.tputWindow)
		fmt.Printf("  %d worker(s): %7.1f req/s  p50 %6s  p99 %6s  (%d ok, %d not ok; shares known %.1fs after the last worker was up)\n",
			n, t.rps, ms(t.p50), ms(t.p99), t.ok, t.failed, took.Seconds())
	}

	loadLen := 120 * time.Second
	if o.reduced {
		loadLen = 26 * time.Second
	}
	fmt.Printf("\nmixed load for %s: %d sync callers, %d async submitters (one job per %s each); faults:\n",
		loadLen, o.syncN, o.asyncN, o.asyncEvery)
	stop := make(chan struct{})
	var drainBy atomic.Pointer[time.Time]
	far := time.Now().Add(time.Hour)
	drainBy.Store(&far)
	deadline := func() time.Time { return *drainBy.Load() }
	s := &schedule{ctx: ctx, b: b, start: time.Now()}
	rec, callers := mixedLoad(ctx, c, o.syncN, o.asyncN, o.asyncEvery, stop, deadline)
	if o.reduced {
		s.killNATS(4*time.Second, 4*time.Second, false)
		s.killWorker(15*time.Second, 3*time.Second, "w1")
	} else {
		s.killNATS(8*time.Second, 5*time.Second, true)
		s.killNATS(28*time.Second, 5*time.Second, false)
		s.killWorker(48*time.Second, 5*time.Second, "w1")
		s.cutAPI(66*time.Second, 10*time.Second, "api1")
		s.scale(90*time.Second, 15*time.Second, "w5", "w6")
	}
	s.until(loadLen)
	end := time.Now()
	close(stop)
	callers.Wait()
	dl := time.Now().Add(o.drain)
	drainBy.Store(&dl)
	var late map[string]int
	var followed sync.WaitGroup
	followed.Go(func() { late = follow504(ctx, c, rec.snapshot(), deadline) })
	rec.polls.Wait()
	fmt.Printf("  +%5.1fs  load stopped; every accepted async job followed to its end %.1fs later\n",
		end.Sub(s.start).Seconds(), time.Since(end).Seconds())
	followed.Wait()
	smp.stop()
	printBacklog(ctx, c)

	r := report{calls: rec.snapshot(), faults: s.faults, start: s.start, end: end}
	ok := r.print(late)
	peak, fpeak := smp.peaks()
	verdict := "held"
	if peak > o.budget {
		verdict = "EXCEEDED"
	}
	fmt.Printf("\nuser database connections (pg_stat_activity, datname test, application_name %s, from the forwarder; sampled every 200 ms):\n",
		postgres.ApplicationName)
	fmt.Printf("  peak %d (forwarder's own peak %d) vs MCP_DB_MAX_CONNECTIONS=%d: budget %s\n", peak, fpeak, o.budget, verdict)
	if !policyOK {
		fmt.Println("host policy: FAILED (see above)")
		ok = false
	}
	for _, e := range s.errs {
		fmt.Println("fault step failed:", e)
		ok = false
	}
	if verdict == "EXCEEDED" && o.strictBudget {
		ok = false
	}
	if !ok {
		fmt.Println("\nRESULT: FAIL")
		return errVerdict
	}
	fmt.Println("\nRESULT: PASS (no accepted async job lost, every call answered)")
	return nil
}

// hostPolicy checks that a user may not save a database on the service's own
// infrastructure (NATS, FerretDB) even though it is inside the allowed CIDR,
// nor on loopback.
func hostPolicy(ctx context.Context, c *client, b bed) bool {
	ok := true
	for _, hp := range []struct {
		host string
		port int
	}{{b.addr("nats1"), 4222}, {b.net + ".20", 27017}, {"127.0.0.1", 5432}} {
		if id, err := c.connectDB(ctx, hp.host, hp.port); err == nil {
			fmt.Printf("host policy: connect to %s:%d was ACCEPTED (%s)\n", hp.host, hp.port, id)
			ok = false
		}
	}
	if ok {
		fmt.Println("host policy: NATS, FerretDB and loopback refused as user databases")
	}
	return ok
}

// follow504 follows every job a sync call got a 504 for.
func follow504(ctx context.Context, c *client, calls []*call, deadline func() time.Time) map[string]int {
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		out = map[string]int{}
		sem = make(chan struct{}, 16)
	)
	for _, k := range calls {
		if k.async || k.class != gotSvc504 || k.jobID == "" {
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			st := c.follow(ctx, k.jobID, deadline)
			mu.Lock()
			k.final = st
			out[st]++
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// printBacklog prints the job consumers' backlog from /api/tools/health: a
// job stored in the stream but never run would show here.
func printBacklog(ctx context.Context, c *client) {
	st, b := c.do(ctx, http.MethodGet, "/api/tools/health", nil)
	var h struct {
		Workers map[string]map[string]int `json:"workers"`
	}
	if st != http.StatusOK || json.Unmarshal(b, &h) != nil {
		fmt.Printf("  health: HTTP %d\n", st)
		return
	}
	e := h.Workers["execute"]
	fmt.Printf("  execute consumer after the run: pending %d, in flight %d, redelivered %d\n",
		e["pending"], e["in_flight"], e["redelivered"])
}

// sampler counts the service's connections to the user database.
type sampler struct {
	cancel      context.CancelFunc
	done        chan struct{}
	mu          sync.Mutex
	peak, fpeak int
}

func startSampler(ctx context.Context, pg string, fwd *forwarder) (*sampler, error) {
	conn, err := pgx.Connect(ctx, "postgres://postgres@"+pg+"/test?sslmode=disable&application_name=clusterbench")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &sampler{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer conn.Close(context.WithoutCancel(ctx))
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			var n int
			err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = 'test'
				AND client_addr = '127.0.0.1' AND client_port = ANY($1) AND application_name = $2`,
				fwd.ports(), postgres.ApplicationName).Scan(&n)
			if err == nil {
				s.mu.Lock()
				s.peak = max(s.peak, n)
				s.fpeak = fwd.peakOpen()
				s.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s, nil
}

func (s *sampler) stop() {
	s.cancel()
	<-s.done
}

func (s *sampler) peaks() (int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak, s.fpeak
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }
