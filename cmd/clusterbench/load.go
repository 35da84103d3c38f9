package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"
)

// class is what a request got.
type class int

const (
	gotResult    class = iota // sync: 200 with a result; async submit: 202 with a job id
	gotToolError              // another 4xx: the tool ran and failed, or a refusal
	gotSvc503                 // 503 from the service (JSON error body)
	gotSvc504                 // 504 from the service, with a job id
	gotLB5xx                  // 502/503/504 from the load balancer (no service body)
	gotOther                  // any other status
	gotNoAnswer               // no HTTP answer within the client timeout
	numClasses
)

var classNames = [numClasses]string{"results", "4xx", "503 (service)", "504 (service)", "5xx (haproxy)", "other status", "UNANSWERED"}

// call is one POST /api/tools/execute.
type call struct {
	async      bool
	sent, done time.Time
	status     int
	class      class
	jobID      string
	final      string // async and 504 jobs: the last status GET /api/jobs saw
}

func (c *call) latency() time.Duration { return c.done.Sub(c.sent) }

// client talks to the service through the load balancer.
type client struct {
	base, key, user, dbID string
	http                  *http.Client
}

func newClient(base, key, user string, timeout time.Duration) *client {
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second}
	return &client{base: base, key: key, user: user, http: &http.Client{Timeout: timeout, Transport: tr}}
}

// do sends one request and returns the status and body; status 0 is no answer.
func (c *client) do(ctx context.Context, method, path string, body any) (int, []byte) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, nil
	}
	req.Header.Set("X-API-Key", c.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, []byte(err.Error())
	}
	return resp.StatusCode, b
}

// reply is the part of the service's answers the driver reads.
type reply struct {
	Success *bool  `json:"success"`
	Code    string `json:"code"`
	Error   string `json:"error"`
	JobID   string `json:"job_id"`
	Status  string `json:"status"`
}

// execute sends one DB_QUERY and classifies the answer.
func (c *client) execute(ctx context.Context, query string, async bool) *call {
	body := map[string]any{"user_id": c.user, "action": "DB_QUERY_" + c.dbID,
		"params": map[string]string{"query": query}, "async": async}
	k := &call{async: async, sent: time.Now()}
	st, b := c.do(ctx, http.MethodPost, "/api/tools/execute", body)
	k.done, k.status = time.Now(), st
	var r reply
	isJSON := json.Unmarshal(b, &r) == nil
	k.jobID = r.JobID
	switch {
	case st == 0:
		k.class = gotNoAnswer
	case !async && st == http.StatusOK && r.Success != nil && *r.Success,
		async && st == http.StatusAccepted && r.JobID != "":
		k.class = gotResult
	case (st == 503 || st == 504) && isJSON && r.Code != "":
		k.class = gotSvc503
		if st == 504 {
			k.class = gotSvc504
		}
	case st == 502 || st == 503 || st == 504:
		k.class = gotLB5xx
	case st >= 400 && st < 500:
		k.class = gotToolError
	default:
		k.class = gotOther
	}
	return k
}

// terminal reports whether a job status is final.
func terminal(s string) bool { return s == "succeeded" || s == "failed" }

// follow polls GET /api/jobs/{id} until the job is terminal or the deadline
// passes, backing off from 200 ms to 2 s. It returns the last status seen
// ("" when none was ever read). deadline is read again at each poll.
func (c *client) follow(ctx context.Context, jobID string, deadline func() time.Time) string {
	last, wait := "", 200*time.Millisecond
	for {
		st, b := c.do(ctx, http.MethodGet, "/api/jobs/"+jobID+"?user_id="+c.user, nil)
		var r reply
		if st == http.StatusOK && json.Unmarshal(b, &r) == nil {
			last = r.Status
			if terminal(last) {
				return last
			}
		} else if st == http.StatusNotFound {
			last = "not found"
		}
		if time.Now().Add(wait).After(deadline()) {
			return last
		}
		select {
		case <-ctx.Done():
			return last
		case <-time.After(wait):
		}
		wait = min(wait*3/2, 2*time.Second)
	}
}

// queries alternate between an instant one and one that holds its
// connection for 20 ms, so that the pools fill.
var queries = []string{"SELECT 1 AS one", "SELECT now() AS at, pg_sleep(0.02) IS NULL AS slept"}

// backoff is a caller's pause after an answer without a result.
const backoff = 100 * time.Millisecond

// recorder collects every call of the mixed load.
type recorder struct {
	mu    sync.Mutex
	calls []*call
	polls sync.WaitGroup
}

func (r *recorder) add(k *call) {
	r.mu.Lock()
	r.calls = append(r.calls, k)
	r.mu.Unlock()
}

func (r *recorder) snapshot() []*call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*call(nil), r.calls...)
}

// mixedLoad runs syncN closed-loop sync callers and asyncN async submitters
// (each submitting one job every asyncEvery) until stop is closed. Every
// accepted async job is followed until it is terminal or drainBy passes.
func mixedLoad(ctx context.Context, c *client, syncN, asyncN int, asyncEvery time.Duration, stop <-chan struct{}, drainBy func() time.Time) (*recorder, *sync.WaitGroup) {
	rec := &recorder{}
	var wg sync.WaitGroup
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	for i := range syncN {
		wg.Go(func() {
			for n := i; !stopped(); n++ {
				k := c.execute(ctx, queries[n%len(queries)], false)
				rec.add(k)
				if k.class != gotResult {
					time.Sleep(backoff) // like a real client; no busy loop on instant 503s
				}
			}
		})
	}
	for i := range asyncN {
		wg.Go(func() {
			for n := i; !stopped(); n++ {
				k := c.execute(ctx, queries[n%len(queries)], true)
				rec.add(k)
				if k.class == gotResult {
					rec.polls.Go(func() {
						final := c.follow(ctx, k.jobID, drainBy)
						rec.mu.Lock()
						k.final = final
						rec.mu.Unlock()
					})
				}
				pause := asyncEvery
				if k.class != gotResult {
					pause += backoff
				}
				select {
				case <-stop:
				case <-time.After(pause):
				}
			}
		})
	}
	return rec, &wg
}

type tput struct {
	ok, failed int
	rps        float64
	p50, p99   time.Duration
}

// throughput runs conc closed-loop sync callers for d and reports the rate of
// successful answers.
func throughput(ctx context.Context, c *client, conc int, d time.Duration) tput {
	var (
		mu  sync.Mutex
		lat []time.Duration
		bad int
		wg  sync.WaitGroup
	)
	end := time.Now().Add(d)
	start := time.Now()
	for i := range conc {
		wg.Go(func() {
			for n := i; time.Now().Before(end); n++ {
				k := c.execute(ctx, queries[0], false)
				mu.Lock()
				if k.class == gotResult {
					lat = append(lat, k.latency())
				} else {
					bad++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return tput{ok: len(lat), failed: bad, rps: float64(len(lat)) / el.Seconds(), p50: pct(lat, 50), p99: pct(lat, 99)}
}

func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, len(sorted)*p/100)]
}

// connectDB saves the user database through the API and returns its db_id.
// PostgreSQL trusts loopback, so the password is a placeholder.
func (c *client) connectDB(ctx context.Context, host string, port int) (string, error) {
	st, b := c.do(ctx, http.MethodPost, "/api/databases/connect", map[string]any{ //nolint:gosec // G101: not a credential
		"user_id": c.user, "db_type": "postgres", "name": "cluster user db", "host": host, "port": port,
		"database": "test", "username": "postgres", "password": "unused-trust-auth", "ssl": false})
	var r struct {
		DBID string `json:"db_id"`
	}
	if st != http.StatusOK || json.Unmarshal(b, &r) != nil || r.DBID == "" {
		return "", fmt.Errorf("connect %s:%d: HTTP %d %.200s", host, port, st, b)
	}
	return r.DBID, nil
}

var errNotUp = errors.New("not up")

// waitOK polls url until it answers 200 or timeout passes.
func waitOK(ctx context.Context, url string, timeout time.Duration) error {
	hc := &http.Client{Timeout: time.Second}
	end := time.Now().Add(timeout)
	for time.Now().Before(end) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := hc.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s: %w after %s", url, errNotUp, timeout)
}
