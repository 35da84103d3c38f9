package worker

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/openanalyst/mcp-integration-service/connectors"
	"github.com/openanalyst/mcp-integration-service/messages"
)

// gate bounds the handlers one database may hold in this worker: no more
// than its pool has connections, nor than the worker's share of the
// database's connection budget (which changes as workers join and leave).
// Jobs beyond that wait at the gate without a handler slot, in arrival
// order, so one slow database never starves the others, and no handler
// waits for a connection its pool may not open.
type gate struct {
	limit   func() int // handlers allowed now
	waiting atomic.Int32

	mu    sync.Mutex
	in    int             // handlers inside
	queue []chan struct{} // jobs waiting, first come first in; closed when admitted
}

// gates are the worker's gates, one per database it has seen.
type gates struct {
	mu    sync.Mutex
	byDB  map[string]*gate
	perDB int
	share func() int // the worker's share of each database's budget; nil: none
}

// limit is the handlers one database may hold now.
func (gs *gates) limit() int {
	n := gs.perDB
	if gs.share != nil {
		n = min(n, gs.share())
	}
	return max(n, 1)
}

// gateOf returns the gate of a job's database, or nil for a job that is not
// a database tool call (or when gating is off).
func (w *Worker) gateOf(job *messages.Job) *gate {
	if job == nil || job.Kind != messages.KindExecute || w.gates.perDB <= 0 {
		return nil
	}
	pl, err := job.Execute()
	if err != nil {
		return nil
	}
	_, dbID, ok := connectors.ParseToolName(pl.Action)
	if !ok {
		return nil
	}
	gs := &w.gates
	gs.mu.Lock()
	defer gs.mu.Unlock()
	if gs.byDB == nil {
		gs.byDB = map[string]*gate{}
	}
	g := gs.byDB[dbID]
	if g == nil {
		if len(gs.byDB) >= maxGates {
			gs.sweep()
		}
		g = &gate{limit: gs.limit}
		gs.byDB[dbID] = g
	}
	return g
}

// maxGates bounds the gates kept: idle ones are dropped beyond it.
const maxGates = 10_000

// sweep drops idle gates. Call with mu held.
func (gs *gates) sweep() {
	for id, g := range gs.byDB {
		if g.idle() {
			delete(gs.byDB, id)
		}
	}
}

// idle reports whether no job is inside or waiting.
func (g *gate) idle() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.in == 0 && len(g.queue) == 0 && g.waiting.Load() == 0
}

// queued is the number of jobs waiting in line.
func (g *gate) queued() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queue)
}

// tryEnter enters the gate if there is room and nobody waits before.
func (g *gate) tryEnter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.queue) == 0 && g.in < g.limit() {
		g.in++
		return true
	}
	return false
}

// admit lets waiting jobs in while there is room. Call with mu held.
func (g *gate) admit() {
	for len(g.queue) > 0 && g.in < g.limit() {
		close(g.queue[0])
		g.queue = g.queue[1:]
		g.in++
	}
}

func (g *gate) leave() {
	g.mu.Lock()
	g.in--
	g.admit()
	g.mu.Unlock()
}

// park counts a job waiting at the gate. Jobs waiting are bounded by the
// consumer's MaxAckPending; none is refused here (a refusal would count
// against the job's MaxDeliver).
func (g *gate) park() { g.waiting.Add(1) }

func (g *gate) unpark() { g.waiting.Add(-1) }

// limitCheck is how often a waiting job looks whether the gate grew (the
// worker's share rises when workers leave).
const limitCheck = 500 * time.Millisecond

// wait enters the gate, telling JetStream the job is in progress every
// `every` meanwhile, until ctx ends (false).
func (g *gate) wait(ctx context.Context, m jetstream.Msg, every time.Duration) bool {
	if every <= 0 {
		every = 10 * time.Second
	}
	g.mu.Lock()
	if len(g.queue) == 0 && g.in < g.limit() {
		g.in++
		g.mu.Unlock()
		return true
	}
	in := make(chan struct{})
	g.queue = append(g.queue, in)
	g.mu.Unlock()
	t := time.NewTicker(every)
	defer t.Stop()
	check := time.NewTicker(limitCheck)
	defer check.Stop()
	for {
		select {
		case <-in:
			return true
		case <-ctx.Done():
			g.mu.Lock()
			defer g.mu.Unlock()
			for i, c := range g.queue {
				if c == in {
					g.queue = append(g.queue[:i], g.queue[i+1:]...)
					return false
				}
			}
			// Admitted as ctx ended: give the place back.
			g.in--
			g.admit()
			return false
		case <-t.C:
			_ = m.InProgress()
		case <-check.C:
			g.mu.Lock()
			g.admit()
			g.mu.Unlock()
		}
	}
}
