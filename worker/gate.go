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
// than its pool has connections. Jobs beyond that wait at the gate without a
// handler slot, so one slow database never starves the others.
type gate struct {
	slots   chan struct{}
	waiting atomic.Int32
}

// gates are the worker's gates, one per database it has seen.
type gates struct {
	mu    sync.Mutex
	byDB  map[string]*gate
	perDB int
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
		g = &gate{slots: make(chan struct{}, gs.perDB)}
		gs.byDB[dbID] = g
	}
	return g
}

// maxGates bounds the gates kept: idle ones are dropped beyond it.
const maxGates = 10_000

// sweep drops idle gates. Call with mu held.
func (gs *gates) sweep() {
	for id, g := range gs.byDB {
		if len(g.slots) == 0 && g.waiting.Load() == 0 {
			delete(gs.byDB, id)
		}
	}
}

func (g *gate) tryEnter() bool {
	select {
	case g.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (g *gate) leave() { <-g.slots }

// park counts a job waiting at the gate. Jobs waiting are bounded by the
// consumer's MaxAckPending; none is refused here (a refusal would count
// against the job's MaxDeliver).
func (g *gate) park() { g.waiting.Add(1) }

func (g *gate) unpark() { g.waiting.Add(-1) }

// wait enters the gate, telling JetStream the job is in progress every
// `every` meanwhile, until ctx ends (false).
func (g *gate) wait(ctx context.Context, m jetstream.Msg, every time.Duration) bool {
	if every <= 0 {
		every = 10 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case g.slots <- struct{}{}:
			return true
		case <-ctx.Done():
			return false
		case <-t.C:
			_ = m.InProgress()
		}
	}
}
