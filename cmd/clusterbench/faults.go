package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"
)

// bed runs scripts/cluster/bed.sh, which owns the hosts and their processes.
type bed struct {
	script string
	net    string // "10.77.0"
}

func (b bed) run(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, b.script, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("bed.sh %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// addr is the address of host h: the octets match bed.sh.
func (b bed) addr(h string) string {
	octet := map[string]string{"nats1": "11", "nats2": "12", "nats3": "13", "lb": "30", "api1": "31", "api2": "32"}
	if o, ok := octet[h]; ok {
		return b.net + "." + o
	}
	if len(h) == 2 && h[0] == 'w' { // w1..w6 -> .41...46
		return b.net + ".4" + h[1:]
	}
	return ""
}

// startWorker starts worker host h and waits for its /healthz.
func (b bed) startWorker(ctx context.Context, h string) error {
	if err := b.run(ctx, "start", h); err != nil {
		return err
	}
	return waitOK(ctx, "http://"+b.addr(h)+":9090/healthz", 30*time.Second)
}

// settled waits until every worker w1..wn counts n live workers in the
// connection budget (gauge mcp_budget_workers), so that each knows its share,
// and returns how long that took.
func (b bed) settled(ctx context.Context, n int, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	hc := &http.Client{Timeout: time.Second}
	want := fmt.Sprintf("mcp_budget_workers %d\n", n)
	for {
		ok := 0
		for i := 1; i <= n; i++ {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.addr(fmt.Sprintf("w%d", i))+":9090/metrics", nil)
			if err != nil {
				return 0, err
			}
			if resp, err := hc.Do(req); err == nil {
				body, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if strings.Contains(string(body), want) {
					ok++
				}
			}
		}
		if ok == n {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout {
			return 0, fmt.Errorf("%d of %d workers count %d live workers after %s", ok, n, n, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// jsz is the part of NATS's /jsz monitoring answer the driver reads.
type jsz struct {
	Meta struct {
		Leader string `json:"leader"`
	} `json:"meta_cluster"`
	Accounts []struct {
		Name    string `json:"name"`
		Streams []struct {
			Name    string `json:"name"`
			Cluster struct {
				Leader string `json:"leader"`
			} `json:"cluster"`
		} `json:"stream_detail"`
	} `json:"account_details"`
}

// leaders asks each NATS node in turn (skipping dead ones) for the meta
// leader and the leader of stream; it returns bed host names (nats-2 -> nats2).
func (b bed) leaders(ctx context.Context, stream string) (meta, streamLeader string, err error) {
	hc := &http.Client{Timeout: time.Second}
	for _, h := range []string{"nats1", "nats2", "nats3"} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet,
			"http://"+b.addr(h)+":8222/jsz?accounts=true&streams=true", nil)
		if err != nil {
			return "", "", err
		}
		resp, err := hc.Do(req)
		if err != nil {
			continue
		}
		var j jsz
		err = json.NewDecoder(resp.Body).Decode(&j)
		_ = resp.Body.Close()
		if err != nil || j.Meta.Leader == "" {
			continue
		}
		meta = strings.ReplaceAll(j.Meta.Leader, "-", "")
		for _, a := range j.Accounts {
			for _, s := range a.Streams {
				if s.Name == stream && s.Cluster.Leader != "" {
					streamLeader = strings.ReplaceAll(s.Cluster.Leader, "-", "")
				}
			}
		}
		if streamLeader != "" {
			return meta, streamLeader, nil
		}
	}
	return meta, "", fmt.Errorf("no NATS node reports a leader for %s (meta leader %q)", stream, meta)
}

// leadersWithin retries leaders for up to d (after a restart the cluster
// may still be electing).
func (b bed) leadersWithin(ctx context.Context, stream string, d time.Duration) (meta, streamLeader string, err error) {
	end := time.Now().Add(d)
	for {
		meta, streamLeader, err = b.leaders(ctx, stream)
		if err == nil || time.Now().After(end) {
			return meta, streamLeader, err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// fault is one injected failure and what followed.
type fault struct {
	name string
	at   time.Time
}

// schedule is the fault script: it runs steps at offsets from the start of
// the load and records each fault.
type schedule struct {
	ctx    context.Context
	b      bed
	start  time.Time
	faults []*fault
	errs   []string
}

func (s *schedule) until(off time.Duration) {
	time.Sleep(time.Until(s.start.Add(off)))
}

// mark records a fault; detail goes to the timeline only.
func (s *schedule) mark(name, detail string) {
	s.faults = append(s.faults, &fault{name: name, at: time.Now()})
	fmt.Printf("  +%5.1fs  %s%s\n", time.Since(s.start).Seconds(), name, detail)
}

func (s *schedule) step(what string, err error) {
	if err != nil {
		s.errs = append(s.errs, what+": "+err.Error())
		fmt.Printf("  +%5.1fs  %s FAILED: %v\n", time.Since(s.start).Seconds(), what, err)
		return
	}
	if what != "" {
		fmt.Printf("  +%5.1fs  %s\n", time.Since(s.start).Seconds(), what)
	}
}

// killNATS kills -9 the meta leader (meta=true) or the job stream's leader
// at off, and restarts it at off+down.
func (s *schedule) killNATS(off, down time.Duration, meta bool) {
	s.until(off)
	m, sl, err := s.b.leadersWithin(s.ctx, "MCP_JOBS", 10*time.Second)
	h, what := sl, "MCP_JOBS stream leader"
	if meta {
		h, what = m, "meta leader"
	}
	if err != nil || h == "" {
		s.step("find the NATS "+what, fmt.Errorf("%w (meta %q, stream %q)", err, m, sl))
		return
	}
	s.mark(fmt.Sprintf("kill -9 NATS %s %s", what, h), fmt.Sprintf(" (meta leader %s, MCP_JOBS leader %s)", m, sl))
	s.step("", s.b.run(s.ctx, "kill", h))
	s.until(off + down)
	s.step("restart "+h, s.b.run(s.ctx, "start", h))
	if nm, ns, err := s.b.leadersWithin(s.ctx, "MCP_JOBS", 10*time.Second); err == nil {
		fmt.Printf("           now meta leader %s, MCP_JOBS leader %s\n", nm, ns)
	}
}

func (s *schedule) killWorker(off, down time.Duration, h string) {
	s.until(off)
	s.mark("kill -9 worker "+h, "")
	s.step("", s.b.run(s.ctx, "kill", h))
	s.until(off + down)
	s.step("restart "+h, s.b.startWorker(s.ctx, h))
}

func (s *schedule) cutAPI(off, down time.Duration, h string) {
	s.until(off)
	s.mark(fmt.Sprintf("cut %s off the bridge for %s", h, down), "")
	s.step("", s.b.run(s.ctx, "link", h, "down"))
	s.until(off + down)
	s.step("restore "+h+"'s link", s.b.run(s.ctx, "link", h, "up"))
}

func (s *schedule) scale(off, stay time.Duration, hosts ...string) {
	s.until(off)
	s.mark("add workers "+strings.Join(hosts, ", "), "")
	for _, h := range hosts {
		s.step("  started "+h, s.b.startWorker(s.ctx, h))
	}
	s.until(off + stay)
	s.mark("remove workers "+strings.Join(hosts, ", "), " (SIGTERM)")
	for _, h := range hosts {
		s.step("", s.b.run(s.ctx, "kill", h, "TERM"))
	}
}
