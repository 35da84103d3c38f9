package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// sample is one soak report line.
type sample struct {
	at             time.Duration
	reqs, errs     int64
	rps, du, rss   float64
	goroutines, fd int
}

// runSoak holds a 100-row select at -soak-c on a default `serve` for -soak
// and reports its resources at intervals, then whether they settled.
func runSoak() error {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	_, table, drop, err := benchTable(ctx)
	if err != nil {
		return err
	}
	defer drop()
	tmp, err := os.MkdirTemp("", "mcpsoak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "serve")
	sp, base, err := startServe(dir)
	if err != nil {
		return err
	}
	defer sp.stop()
	client := newClient()
	dbID, err := connect(client, base)
	if err != nil {
		return sp.failed(err)
	}
	sql := "SELECT id, name, score, at FROM " + table
	if err := expectRows(client, base, dbID, sql, 100); err != nil {
		return sp.failed(err)
	}
	// At least six reports however short the soak, so the last third holds one.
	every := min(*soakEvery, max(*soak/6, time.Second))
	fmt.Printf("soak: serve (default configuration), 100-row select at c=%d for %s, report every %s, %d CPUs\n",
		*soakC, *soak, every, numCPU())
	fmt.Printf("%8s %10s %8s %7s %9s %7s %10s %5s\n", "elapsed", "requests", "req/s", "errors", "data MB", "RSS MiB",
		"goroutines", "fds")

	var reqs, errs atomic.Int64
	var lastErr atomic.Value
	runCtx, stopLoad := context.WithTimeout(ctx, *soak)
	defer stopLoad()
	var wg sync.WaitGroup
	for i := 0; i < *soakC; i++ {
		call := serveWorker(client, base, dbID, sql)()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for runCtx.Err() == nil {
				if err := call(); err != nil {
					errs.Add(1)
					lastErr.Store(err.Error())
					time.Sleep(10 * time.Millisecond) // no hot loop on a dead server
					continue
				}
				reqs.Add(1)
			}
		}()
	}
	peakRSS := sampleRSS(sp.pid())
	start := time.Now()
	take := func(prev *sample) sample {
		s := sample{at: time.Since(start).Round(time.Second), reqs: reqs.Load(), errs: errs.Load(), du: duMB(dir),
			rss: rssMiB(sp.pid()), goroutines: goroutines(client, base), fd: openFDs(sp.pid())}
		if prev != nil {
			s.rps = float64(s.reqs-prev.reqs) / (time.Since(start) - prev.at).Seconds()
		}
		fmt.Printf("%8s %10d %8.0f %7d %9.1f %7.1f %10d %5d\n", s.at, s.reqs, s.rps, s.errs, s.du, s.rss, s.goroutines, s.fd)
		return s
	}
	samples := []sample{take(nil)}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for runCtx.Err() == nil {
		select {
		case <-tick.C:
			samples = append(samples, take(&samples[len(samples)-1]))
		case <-runCtx.Done():
		}
	}
	wg.Wait()
	if last := samples[len(samples)-1]; time.Since(start)-last.at > time.Second {
		samples = append(samples, take(&last))
	}
	soakSummary(samples, peakRSS())
	if e, _ := lastErr.Load().(string); e != "" {
		fmt.Printf("last error: %.300s\n", e)
	}
	return nil
}

func soakSummary(samples []sample, peak float64) {
	first, last := samples[0], samples[len(samples)-1]
	fmt.Printf("\n%-12s %10s %10s\n", "", "first", "last")
	fmt.Printf("%-12s %10.1f %10.1f\n", "data MB", first.du, last.du)
	fmt.Printf("%-12s %10.1f %10.1f  (peak sampled %.1f)\n", "RSS MiB", first.rss, last.rss, peak)
	fmt.Printf("%-12s %10d %10d\n", "goroutines", first.goroutines, last.goroutines)
	fmt.Printf("%-12s %10d %10d\n", "fds", first.fd, last.fd)
	fmt.Printf("%-12s %10d %10d  (%.0f req/s overall, %d errors)\n", "requests", first.reqs, last.reqs,
		float64(last.reqs)/last.at.Seconds(), last.errs)
	// The data dir plateaued if it grew by less than 5% of its final size
	// over the last third of the run.
	third := samples[len(samples)-1]
	for _, s := range samples {
		if s.at >= last.at*2/3 {
			third = s
			break
		}
	}
	growth := last.du - third.du
	verdict := map[bool]string{true: "yes", false: "NO"}
	fmt.Printf("data dir plateaued: %s (grew %.1f MB over the last third, from %s; %.1f%% of %.1f MB)\n",
		verdict[growth < 0.05*last.du], growth, third.at, 100*growth/max(last.du, 1e-9), last.du)
	fmt.Printf("RSS stayed <= 150 MiB: %s (peak sampled %.1f MiB)\n", verdict[peak <= 150], peak)
}

// goroutines reads go_goroutines from the service's /metrics (-1 if absent).
func goroutines(c *http.Client, base string) int {
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, base+"/metrics", nil)
	resp, err := c.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return int(n)
		}
	}
	return -1
}
