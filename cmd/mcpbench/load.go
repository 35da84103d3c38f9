package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// newWorker gives each load goroutine its own call function, so that
// request state (headers, body reader, response buffer) is built once per
// goroutine and reused.
type newWorker func() func() error

type result struct {
	n           int
	rps         float64
	p50, p99    time.Duration
	cpuPerReqUS float64 // server CPU µs per request; 0 without a server pid
	// machinePerReqUS is the CPU µs per request of the whole machine: the
	// server, the load generator, PostgreSQL and the kernel together.
	machinePerReqUS float64
	rssPeak         float64 // MiB, peak sampled; 0 without a server pid
}

// load runs c goroutines for warm then for d; only the second phase is
// measured. pid, when not 0, is the server whose CPU and RSS are read.
func load(c int, warm, d time.Duration, pid int, nw newWorker) (result, error) {
	const (
		warming = iota
		measuring
		stopped
	)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		lat      []time.Duration
		errOnce  sync.Once
		firstErr error
		phase    atomic.Int32
	)
	for i := 0; i < c; i++ {
		wg.Add(1)
		call := nw()
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 8192)
			for {
				p := phase.Load()
				if p == stopped {
					break
				}
				t0 := time.Now()
				if err := call(); err != nil {
					// sync.Once, not atomic.Value: errors of different
					// concrete types would make it panic.
					errOnce.Do(func() { firstErr = err })
					phase.Store(stopped)
					break
				}
				if p == measuring && phase.Load() == measuring {
					local = append(local, time.Since(t0))
				}
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	time.Sleep(warm)
	var cpu0 float64
	stopRSS := func() float64 { return 0 }
	if pid != 0 {
		stopRSS = sampleRSS(pid)
		cpu0 = cpuSeconds(pid)
	}
	busy0 := machineBusySeconds()
	start := time.Now()
	phase.CompareAndSwap(warming, measuring)
	time.Sleep(d)
	phase.Store(stopped)
	elapsed := time.Since(start)
	busy := machineBusySeconds() - busy0
	var cpu float64
	if pid != 0 {
		cpu = cpuSeconds(pid) - cpu0
	}
	rss := stopRSS()
	wg.Wait()
	if firstErr != nil {
		return result{}, firstErr
	}
	if len(lat) == 0 {
		return result{}, fmt.Errorf("no request completed")
	}
	slices.Sort(lat)
	r := result{n: len(lat), rps: float64(len(lat)) / elapsed.Seconds(),
		p50: lat[len(lat)/2], p99: lat[len(lat)*99/100], rssPeak: rss, machinePerReqUS: busy * 1e6 / float64(len(lat))}
	if pid != 0 {
		r.cpuPerReqUS = cpu * 1e6 / float64(r.n)
	}
	return r, nil
}

// newClient keeps enough idle connections that no load goroutine redials.
func newClient() *http.Client {
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConns: 512,
		MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute}}
}

// httpWorker POSTs the pre-built body to url with the given headers; check
// judges the status and the body.
func httpWorker(c *http.Client, url string, headers map[string]string, body []byte,
	check func(status int, body []byte) error) newWorker {
	return func() func() error {
		hdr := http.Header{}
		for k, v := range headers {
			hdr.Set(k, v)
		}
		rd := bytes.NewReader(body)
		var buf bytes.Buffer
		return func() error {
			rd.Reset(body)
			req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, rd)
			if err != nil {
				return err
			}
			req.Header = hdr
			resp, err := c.Do(req)
			if err != nil {
				return err
			}
			buf.Reset()
			_, err = buf.ReadFrom(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			return check(resp.StatusCode, buf.Bytes())
		}
	}
}

// floorWorker is the floor: the same query through pgx, rows decoded to
// values as a server must, nothing else.
func floorWorker(p *pgxpool.Pool, sql string) newWorker {
	return func() func() error {
		return func() error {
			rows, err := p.Query(context.Background(), sql)
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
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d.Microseconds())/1000) }
