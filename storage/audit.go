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

// Retention bounds the audit log. The service enforces it itself, whatever
// the backend (FerretDB does not enforce capped collections): entries older
// than MaxAge, and the oldest beyond MaxEntries, are deleted.
type Retention struct {
	MaxAge     time.Duration // 0: no age limit
	MaxEntries int64         // 0: no count limit
	Every      time.Duration // how often to prune; default one minute
}

// Auditor writes audit entries in the background, in batches (one insert per
// batch, never one per call), so the hot path never waits for storage, and
// prunes the log to its Retention. When storage is down and the buffer is
// full, entries are dropped and counted, never blocking a request. Close
// writes everything queued.
type Auditor struct {
	coll    *mongo.Collection
	log     *slog.Logger
	keep    Retention
	ch      chan AuditEntry
	done    chan struct{} // closed by Close; ch is never closed, so Record never panics
	dropped atomic.Int64
	wg      sync.WaitGroup
	once    sync.Once
}

// auditFlush is how long an entry may wait for its batch to fill.
const auditFlush = 200 * time.Millisecond

// NewAuditor makes sure the audit collection has its index on "at" (for
// pruning and reading newest first) and starts the writer and the pruner.
func (m *Mongo) NewAuditor(ctx context.Context, keep Retention, log *slog.Logger) (*Auditor, error) {
	if keep.Every <= 0 {
		keep.Every = time.Minute
	}
	coll := m.db.Collection(CollAudit)
	cctx, cancel := m.ctx(ctx)
	defer cancel()
	if err := ensureIndex(cctx, coll, "at_1", bson.D{{Key: "at", Value: 1}}); err != nil {
		return nil, m.wrap("create audit index", err)
	}
	a := &Auditor{coll: coll, log: log, keep: keep, ch: make(chan AuditEntry, 8192), done: make(chan struct{})}
	a.wg.Add(2)
	go a.run()
	go a.pruneLoop() //nolint:gosec // G118: runs until Close, not for a request
	return a, nil
}

// ensureIndex creates an index unless one of that name exists, so that a
// restart on existing data creates nothing and logs nothing.
func ensureIndex(ctx context.Context, coll *mongo.Collection, name string, keys bson.D) error {
	specs, err := coll.Indexes().ListSpecifications(ctx)
	if err != nil {
		return err
	}
	for _, s := range specs {
		if s.Name == name {
			return nil
		}
	}
	_, err = coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: keys, Options: options.Index().SetName(name)})
	return err
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

// run batches entries: a batch goes out when it is full or auditFlush after
// its first entry. An idle auditor has no timer running.
func (a *Auditor) run() {
	defer a.wg.Done()
	batch := make([]any, 0, 256)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	flush := func() {
		timer.Stop()
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := a.coll.InsertMany(ctx, batch); err != nil {
			a.log.Warn("audit write failed", "entries", len(batch), "err", err)
		}
		cancel()
		clear(batch)
		batch = batch[:0]
	}
	add := func(e AuditEntry) {
		if len(batch) == 0 {
			timer.Reset(auditFlush)
		}
		batch = append(batch, e)
		if len(batch) == cap(batch) {
			flush()
		}
	}
	for {
		select {
		case <-a.done:
			for {
				select {
				case e := <-a.ch:
					add(e)
				default:
					flush()
					return
				}
			}
		case e := <-a.ch:
			add(e)
		case <-timer.C:
			flush()
		}
	}
}

func (a *Auditor) pruneLoop() {
	defer a.wg.Done()
	if a.keep.MaxAge <= 0 && a.keep.MaxEntries <= 0 {
		return
	}
	t := time.NewTicker(a.keep.Every)
	defer t.Stop()
	for {
		select {
		case <-a.done:
			return
		case <-t.C:
			if n, err := a.Prune(context.Background()); err != nil {
				a.log.Warn("audit retention not applied", "err", err)
			} else if n > 0 {
				a.log.Debug("audit entries pruned", "deleted", n)
			}
		}
	}
}

// Prune deletes the entries the retention no longer keeps and returns how
// many it deleted.
func (a *Auditor) Prune(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var deleted int64
	if a.keep.MaxAge > 0 {
		r, err := a.coll.DeleteMany(ctx, bson.D{{Key: "at", Value: bson.D{{Key: "$lt", Value: time.Now().Add(-a.keep.MaxAge)}}}})
		if err != nil {
			return deleted, err
		}
		deleted += r.DeletedCount
	}
	if a.keep.MaxEntries > 0 {
		// The newest entry beyond the limit: it and everything older go.
		var cut struct {
			At time.Time `bson:"at"`
		}
		err := a.coll.FindOne(ctx, bson.D{}, options.FindOne().SetSort(bson.D{{Key: "at", Value: -1}}).
			SetSkip(a.keep.MaxEntries).SetProjection(bson.D{{Key: "at", Value: 1}})).Decode(&cut)
		if errors.Is(err, mongo.ErrNoDocuments) {
			return deleted, nil
		}
		if err != nil {
			return deleted, err
		}
		r, err := a.coll.DeleteMany(ctx, bson.D{{Key: "at", Value: bson.D{{Key: "$lte", Value: cut.At}}}})
		if err != nil {
			return deleted, err
		}
		deleted += r.DeletedCount
	}
	return deleted, nil
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
		// _id breaks ties: entries of one millisecond keep their order.
		options.Find().SetSort(bson.D{{Key: "at", Value: -1}, {Key: "_id", Value: -1}}).SetLimit(limit))
	if err != nil {
		return nil, m.wrap("read audit log", err)
	}
	out := []AuditEntry{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, m.wrap("read audit log", err)
	}
	return out, nil
}
