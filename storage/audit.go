package storage

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// CollAudit is the capped collection of audit entries.
const CollAudit = "audit_log"

// AuditEntry records who did what, when, with which outcome. It never holds
// a query's result rows, a query's parameters or a secret.
type AuditEntry struct {
	At         time.Time `bson:"at" json:"at"`
	UserID     string    `bson:"user_id" json:"user_id"`
	Actor      string    `bson:"actor" json:"actor"`   // who called: "api_key" or "mcp_token:<id>"
	Action     string    `bson:"action" json:"action"` // execute, connect, disconnect, ...
	Target     string    `bson:"target" json:"target"` // tool name, db_id, provider
	Outcome    string    `bson:"outcome" json:"outcome"`
	Status     int       `bson:"status,omitempty" json:"status,omitempty"` // HTTP status, for REST-only actions
	Code       string    `bson:"code,omitempty" json:"code,omitempty"`     // error code, when it failed
	DurationMS int64     `bson:"duration_ms" json:"duration_ms"`
	RequestID  string    `bson:"request_id,omitempty" json:"request_id,omitempty"`
	JobID      string    `bson:"job_id,omitempty" json:"job_id,omitempty"`
}

// Auditor writes audit entries in the background, in batches, so the hot
// path never waits for storage. When storage is down and the buffer is full,
// entries are dropped and counted, never blocking a request.
type Auditor struct {
	coll    *mongo.Collection
	log     *slog.Logger
	ch      chan AuditEntry
	done    chan struct{} // closed by Close; ch is never closed, so Record never panics
	dropped atomic.Int64
	wg      sync.WaitGroup
	once    sync.Once
}

// NewAuditor creates the capped collection (sizeBytes) if needed and starts
// the writer.
func (m *Mongo) NewAuditor(ctx context.Context, sizeBytes int64, log *slog.Logger) (*Auditor, error) {
	cctx, cancel := m.ctx(ctx)
	defer cancel()
	err := m.db.CreateCollection(cctx, CollAudit, options.CreateCollection().SetCapped(true).SetSizeInBytes(sizeBytes))
	var ce mongo.CommandError
	if err != nil && (!errors.As(err, &ce) || ce.Code != 48) { // 48: NamespaceExists
		return nil, m.wrap("create audit collection", err)
	}
	a := &Auditor{coll: m.db.Collection(CollAudit), log: log, ch: make(chan AuditEntry, 8192), done: make(chan struct{})}
	a.wg.Add(1)
	go a.run()
	return a, nil
}

// Record queues an entry.
func (a *Auditor) Record(e AuditEntry) {
	if e.At.IsZero() {
		e.At = time.Now().UTC()
	}
	select {
	case <-a.done:
		return // closed: a request that outlived the shutdown
	default:
	}
	select {
	case a.ch <- e:
	default:
		if a.dropped.Add(1)%1000 == 1 {
			a.log.Warn("audit buffer full: dropping entries", "dropped", a.dropped.Load())
		}
	}
}

// Dropped counts entries lost to a full buffer.
func (a *Auditor) Dropped() int64 { return a.dropped.Load() }

func (a *Auditor) run() {
	defer a.wg.Done()
	batch := make([]any, 0, 256)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := a.coll.InsertMany(ctx, batch); err != nil {
			a.log.Warn("audit write failed", "entries", len(batch), "err", err)
		}
		cancel()
		batch = batch[:0]
	}
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-a.done:
			for {
				select {
				case e := <-a.ch:
					batch = append(batch, e)
					if len(batch) == cap(batch) {
						flush()
					}
				default:
					flush()
					return
				}
			}
		case e := <-a.ch:
			batch = append(batch, e)
			if len(batch) == cap(batch) {
				flush()
			}
		case <-t.C:
			flush()
		}
	}
}

// Close writes what is queued and stops.
func (a *Auditor) Close() {
	a.once.Do(func() { close(a.done) })
	a.wg.Wait()
}

// AuditLog returns a user's latest audit entries, newest first.
func (m *Mongo) AuditLog(ctx context.Context, userID string, limit int64) ([]AuditEntry, error) {
	ctx, cancel := m.ctx(ctx)
	defer cancel()
	cur, err := m.db.Collection(CollAudit).Find(ctx, bson.D{{Key: "user_id", Value: userID}},
		options.Find().SetSort(bson.D{{Key: "at", Value: -1}}).SetLimit(limit))
	if err != nil {
		return nil, m.wrap("read audit log", err)
	}
	out := []AuditEntry{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, m.wrap("read audit log", err)
	}
	return out, nil
}
