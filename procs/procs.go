package procs

import (
	"context"
	"log/slog"
	"runtime"
	"sync/atomic"
	"time"
)

// Why: at low concurrency a synchronous call crosses a dozen goroutines (the
// HTTP handler, the NATS client and server, the stream, the consumer, the
// job, pgx, the reply). With two Ps every hand-off may wake another OS
// thread, which spins looking for work and sleeps again: measured here at
// c=1, 437–523 µs of CPU per call and a p50 of 0.49–0.58 ms, against 325 µs
// and 0.42 ms on one P. Under load one P halves the throughput (c=64: 5078
// against 7641 calls/s). So the process uses one P while at most a few
// calls or jobs are in flight and every CPU as soon as more come.

// Load counts what is in flight (HTTP requests, jobs) and keeps the highest
// count since the controller last looked. Begin and End are safe for
// concurrent use and cost two atomic operations.
type Load struct {
	n    atomic.Int64
	high atomic.Int64
}

// Begin counts one more in flight.
func (l *Load) Begin() {
	v := l.n.Add(1)
	for {
		h := l.high.Load()
		if v <= h || l.high.CompareAndSwap(h, v) {
			return
		}
	}
}

// End counts one fewer.
func (l *Load) End() { l.n.Add(-1) }

// window returns the highest count since the last call and starts a new
// window at the current count.
func (l *Load) window() int64 { return l.high.Swap(l.n.Load()) }

// Thresholds, in things in flight: in `serve` a synchronous call counts
// twice while its job runs (the request and the job). Up at 8 is about four
// concurrent calls, which one P still serves as fast as two (measured: c=4,
// 5664 calls/s on one P against 5020 on two); down after half a second at
// 4 or fewer.
const (
	tick      = 100 * time.Millisecond
	upAt      = 8
	downAt    = 4
	downAfter = 5 // quiet ticks
)

// controller decides; set applies a GOMAXPROCS (0: the runtime's default).
type controller struct {
	load  *Load
	set   func(n int)
	one   bool // running on one P
	quiet int
}

// step looks at one window and switches when the rule says so; it reports
// the change, for logging.
func (c *controller) step() (changed bool) {
	high := c.load.window()
	switch {
	case c.one && high >= upAt:
		c.set(0)
		c.one, c.quiet = false, 0
		return true
	case c.one:
		return false
	case high <= downAt:
		c.quiet++
		if c.quiet >= downAfter {
			c.set(1)
			c.one, c.quiet = true, 0
			return true
		}
	default:
		c.quiet = 0
	}
	return false
}

// Enabled reports whether the process may adapt GOMAXPROCS: not when the
// operator set GOMAXPROCS, and not on a single CPU.
func Enabled(getenv func(string) string) bool {
	return getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) > 1
}

// Run adapts GOMAXPROCS to load until ctx ends, then gives the process back
// every CPU (the runtime's default, which follows the CPU limit again).
func Run(ctx context.Context, load *Load, log *slog.Logger) {
	set := func(n int) {
		if n == 0 {
			runtime.SetDefaultGOMAXPROCS()
			return
		}
		runtime.GOMAXPROCS(n)
	}
	c := &controller{load: load, set: set}
	t := time.NewTicker(tick)
	defer t.Stop()
	defer func() {
		if c.one {
			set(0)
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if c.step() {
				log.Debug("GOMAXPROCS adapted to load", "gomaxprocs", runtime.GOMAXPROCS(0))
			}
		}
	}
}
