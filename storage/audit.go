package storage

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// CollAudit is the audit log: one document per batch of entries.
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

// auditBatch is one document of the audit log: the entries one API node
// wrote in one batch, oldest first, as gzip-compressed JSON lines.
//
// Why batches, compressed: FerretDB's SQLite backend pushes no filter but
// an _id equality and no sort down to SQLite, so every other query reads
// and decodes every document of the collection, at about 80 µs per
// stored entry field by field. One compressed value per batch makes a
// retention pass over 100,000 entries read ~400 small documents (tens of
// milliseconds) instead of 100,000 (seconds, and hundreds of MB of
// memory), and a batch one insert. `mcp-service audit` prints the log.
// Documents of the older layout, one entry each, are read and pruned alike.
type auditBatch struct {
	ID    bson.ObjectID `bson:"_id"`
	At    time.Time     `bson:"at"`    // the newest entry's time: what reading and pruning order by
	First time.Time     `bson:"first"` // the oldest entry's time
	N     int64         `bson:"n"`     // how many entries
	// UserID holds the batch's distinct users, so that the filter
	// {user_id: u} finds a user's batches (and entries of the older layout).
	UserID  []string `bson:"user_id"`
	Entries []byte   `bson:"entries"` // gzip of one JSON AuditEntry per line
}

// newAuditBatch orders entries oldest first and makes their document.
func newAuditBatch(entries []AuditEntry) (*auditBatch, error) {
	slices.SortStableFunc(entries, func(a, b AuditEntry) int { return a.At.Compare(b.At) })
	b := &auditBatch{ID: bson.NewObjectID(), First: entries[0].At, At: entries[len(entries)-1].At,
		N: int64(len(entries))}
	var buf bytes.Buffer
	zw := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(zw)
	zw.Reset(&buf)
	enc := json.NewEncoder(zw)
	for _, e := range entries {
		if !slices.Contains(b.UserID, e.UserID) {
			b.UserID = append(b.UserID, e.UserID)
		}
		if err := enc.Encode(e); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	b.Entries = buf.Bytes()
	return b, nil
}

// gzipWriters are reused from batch to batch: a new writer allocates and
// clears about a megabyte of compressor state, which at a few batches a
// second was the largest allocation of the whole service under load.
var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed) // a valid level: no error
	return zw
}}

// entries decodes a batch's entries, oldest first.
func (b *auditBatch) entries() ([]AuditEntry, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b.Entries))
	if err != nil {
		return nil, err
	}
	out := make([]AuditEntry, 0, b.N)
	dec := json.NewDecoder(zr)
	for {
		var e AuditEntry
		if err := dec.Decode(&e); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
}

// Auditor writes audit entries in the background, in batches (one insert per
// batch, never one per call), so the hot path never waits for storage, and
// prunes the log to its Retention. When storage is down and the buffer is
// full, entries are dropped and counted, never blocking a request. Close
// writes everything queued.
type Auditor struct {
	coll *mongo.Collection
	log  *slog.Logger
	keep Retention

	mu      sync.Mutex
	pending []AuditEntry // recorded, not yet taken by the writer
	closed  bool

	// kick wakes the writer when a batch begins or fills: twice per batch
	// at most, never once per entry (a wake-up per call cost every request
	// a goroutine hand-off).
	kick    chan struct{}
	done    chan struct{} // closed by Close
	dropped atomic.Int64
	wg      sync.WaitGroup
	once    sync.Once
}

// auditFlush is how long an entry may wait for its batch to fill,
// auditBatchSize how many entries a batch (one document) holds at most, and
// auditBuffer how many entries may wait for the writer.
const (
	auditFlush     = 200 * time.Millisecond
	auditBatchSize = 256
	auditBuffer    = 8192
)

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
	a := &Auditor{coll: coll, log: log, keep: keep, kick: make(chan struct{}, 1), done: make(chan struct{})}
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
	a.mu.Lock()
	if a.closed { // a request that outlived the shutdown
		a.mu.Unlock()
		return
	}
	if len(a.pending) >= auditBuffer {
		a.mu.Unlock()
		if n := a.dropped.Add(1); n%1000 == 1 {
			a.log.Warn("audit buffer full: dropping entries", "dropped", n)
		}
		return
	}
	a.pending = append(a.pending, e)
	n := len(a.pending)
	a.mu.Unlock()
	if n == 1 || n == auditBatchSize {
		select {
		case a.kick <- struct{}{}:
		default: // the writer is already told
		}
	}
}

// Dropped counts entries lost to a full buffer.
func (a *Auditor) Dropped() int64 { return a.dropped.Load() }

// queued is how many entries wait for the writer.
func (a *Auditor) queued() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.pending)
}

// take hands the writer every waiting entry, oldest first; close stops
// Record from queueing more.
func (a *Auditor) take(close bool) []AuditEntry {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = a.closed || close
	out := a.pending
	a.pending = nil
	return out
}

// run writes batches: one goes out as a document when it is full or
// auditFlush after its first entry. An idle auditor has no timer running.
func (a *Auditor) run() {
	defer a.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-a.done:
			a.write(a.take(true))
			return
		case <-a.kick:
		}
		if a.queued() < auditBatchSize {
			timer.Reset(auditFlush)
			select {
			case <-timer.C:
			case <-a.kick: // it filled
				timer.Stop()
			case <-a.done:
				timer.Stop()
				a.write(a.take(true))
				return
			}
		}
		a.write(a.take(false))
	}
}

// write stores entries as documents of at most auditBatchSize.
func (a *Auditor) write(entries []AuditEntry) {
	for chunk := range slices.Chunk(entries, auditBatchSize) {
		doc, err := newAuditBatch(chunk)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err = a.coll.InsertOne(ctx, doc)
			cancel()
		}
		if err != nil {
			a.log.Warn("audit write failed", "entries", len(chunk), "err", err)
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
// many it deleted. It reads the documents' sizes once, newest first: whole
// batches go with one delete, and a batch that straddles a limit (older
// entries than MaxAge, or entries beyond the newest MaxEntries) is
// rewritten without them.
func (a *Auditor) Prune(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if a.keep.MaxAge <= 0 && a.keep.MaxEntries <= 0 {
		return 0, nil
	}
	all, err := a.sizes(ctx)
	if err != nil {
		return 0, err
	}
	var cutoff time.Time // zero: no age limit, nothing is before it
	if a.keep.MaxAge > 0 {
		cutoff = time.Now().Add(-a.keep.MaxAge)
	}
	room := int64(math.MaxInt64)
	if a.keep.MaxEntries > 0 {
		room = a.keep.MaxEntries
	}
	var deleted, goneEntries int64
	var gone []any
	for i := range all {
		b := &all[i]
		switch {
		case b.At.Before(cutoff) || room <= 0:
			gone = append(gone, b.ID)
			goneEntries += b.n()
		case b.First.Before(cutoff) || b.n() > room:
			n, left, err := a.trim(ctx, b.ID, cutoff, room)
			deleted += n
			room -= left
			if err != nil {
				return deleted, err
			}
		default:
			room -= b.n()
		}
	}
	if len(gone) > 0 {
		r, err := a.coll.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: gone}}}})
		if err != nil {
			return deleted, err
		}
		if r.DeletedCount != int64(len(gone)) {
			goneEntries = r.DeletedCount // another node pruned some of them: count documents, not entries
		}
	}
	return deleted + goneEntries, nil
}

// batchSize is what pruning reads of a document: its id, time span and size.
type batchSize struct {
	ID    any       `bson:"_id"`
	At    time.Time `bson:"at"`
	First time.Time `bson:"first"`
	N     int64     `bson:"n"`
}

// n is how many entries the document holds: an entry of the older layout
// has no "n" and is one.
func (b *batchSize) n() int64 { return max(b.N, 1) }

// sizes lists every document newest first, without its entries.
func (a *Auditor) sizes(ctx context.Context) ([]batchSize, error) {
	cur, err := a.coll.Find(ctx, bson.D{}, options.Find().
		SetSort(bson.D{{Key: "at", Value: -1}, {Key: "_id", Value: -1}}).
		SetProjection(bson.D{{Key: "at", Value: 1}, {Key: "first", Value: 1}, {Key: "n", Value: 1}}))
	if err != nil {
		return nil, err
	}
	var out []batchSize
	if err := cur.All(ctx, &out); err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].First.IsZero() {
			out[i].First = out[i].At // an entry of the older layout spans one instant
		}
	}
	return out, nil
}

// trim rewrites one batch without its entries older than cutoff and keeps at
// most room of the rest, the newest; a batch left empty is deleted. It
// returns how many entries went and how many are left.
func (a *Auditor) trim(ctx context.Context, id any, cutoff time.Time, room int64) (gone, left int64, err error) {
	var b auditBatch
	if err := a.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&b); err != nil {
		if errors.Is(err, mongo.ErrNoDocuments) {
			return 0, 0, nil // another node pruned it
		}
		return 0, 0, err
	}
	if b.Entries == nil {
		return 0, 1, nil // an entry of the older layout: all or nothing, decided by Prune
	}
	entries, err := b.entries()
	if err != nil {
		return 0, 0, err
	}
	first := slices.IndexFunc(entries, func(e AuditEntry) bool { return !e.At.Before(cutoff) }) // entries are oldest first
	if first < 0 {
		first = len(entries)
	}
	kept := entries[first:]
	if int64(len(kept)) > room {
		kept = kept[int64(len(kept))-room:]
	}
	gone, left = int64(len(entries)-len(kept)), int64(len(kept))
	switch {
	case gone == 0:
		return 0, left, nil
	case left == 0:
		_, err = a.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
		return gone, 0, err
	}
	nb, err := newAuditBatch(kept)
	if err != nil {
		return 0, left, err
	}
	nb.ID = b.ID
	_, err = a.coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, nb)
	return gone, left, err
}

// Close writes what is queued and stops.
func (a *Auditor) Close() {
	a.once.Do(func() { close(a.done) })
	a.wg.Wait()
}

// AuditLog returns a user's latest audit entries, newest first; with
// userID "", every user's.
func (m *Mongo) AuditLog(ctx context.Context, userID string, limit int64) ([]AuditEntry, error) {
	if limit <= 0 {
		return []AuditEntry{}, nil
	}
	ctx, cancel := m.ctx(ctx)
	defer cancel()
	// {user_id: u} matches a batch listing u and an entry of the older layout.
	filter := bson.D{{Key: "user_id", Value: userID}}
	if userID == "" {
		filter = bson.D{}
	}
	cur, err := m.db.Collection(CollAudit).Find(ctx, filter,
		options.Find().SetSort(bson.D{{Key: "at", Value: -1}, {Key: "_id", Value: -1}}))
	if err != nil {
		return nil, m.wrap("read audit log", err)
	}
	defer cur.Close(ctx)
	out := []AuditEntry{}
	for cur.Next(ctx) {
		var b struct { // both layouts: user_id is a list in a batch, a string in an entry
			At      time.Time `bson:"at"`
			N       int64     `bson:"n"`
			Entries []byte    `bson:"entries"`
		}
		if err := cur.Decode(&b); err != nil {
			return nil, m.wrap("read audit log", err)
		}
		// Batches overlap in time (API nodes write their own): once a batch
		// ends before the limit-th newest entry found, no later one counts.
		if int64(len(out)) >= limit {
			slices.SortStableFunc(out, newestFirst)
			out = out[:limit]
			if b.At.Before(out[limit-1].At) {
				break
			}
		}
		if b.Entries == nil {
			var e AuditEntry
			if err := cur.Decode(&e); err != nil {
				return nil, m.wrap("read audit log", err)
			}
			out = append(out, e)
			continue
		}
		entries, err := (&auditBatch{N: b.N, Entries: b.Entries}).entries()
		if err != nil {
			return nil, m.wrap("read audit log", err)
		}
		for i := len(entries) - 1; i >= 0; i-- {
			if userID == "" || entries[i].UserID == userID {
				out = append(out, entries[i])
			}
		}
	}
	if err := cur.Err(); err != nil {
		return nil, m.wrap("read audit log", err)
	}
	slices.SortStableFunc(out, newestFirst)
	if int64(len(out)) > limit {
		out = out[:limit]
	}
	return out, nil
}

func newestFirst(x, y AuditEntry) int { return y.At.Compare(x.At) }
