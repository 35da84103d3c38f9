package worker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openanalyst/mcp-integration-service/connectors"
	"github.com/openanalyst/mcp-integration-service/storage"
)

// Pools keeps one live Source per saved database, opened on first use and
// reused by every later job. A Source is closed when its database is edited
// or removed, or after it sat idle.
type Pools struct {
	opts       connectors.Options
	revalidate time.Duration
	idle       time.Duration
	log        *slog.Logger

	mu    sync.RWMutex // read-held by every job's lookup
	byID  map[string]*poolEntry
	opens sync.Map // db_id → *sync.Mutex, so one database is opened once at a time
	// changes counts the databases dropped for an edit or a removal
	// (Close). A record read before a change may be out of date: get caches
	// nothing from it (errStale), and the job reads the record again.
	changes atomic.Uint64
}

// errStale: the record was read before a database was edited or removed.
var errStale = errors.New("worker: the database record was read before a change")

// generation is the count of changes, read before a record is.
// A nil Pools (a worker without database tools) has no changes.
func (p *Pools) generation() uint64 {
	if p == nil {
		return 0
	}
	return p.changes.Load()
}

type poolEntry struct {
	src      connectors.Source
	userID   string
	dbType   string
	writes   bool         // the connection allows writes
	version  time.Time    // the record's updated_at
	checked  time.Time    // when ownership was last confirmed in storage
	lastUsed atomic.Int64 // unix nanoseconds; set under the read lock
}

// NewPools returns an empty pool set. revalidate bounds how long a cached
// ownership check is trusted before storage is asked again; idle closes
// Sources that have not been used for that long.
func NewPools(o connectors.Options, revalidate, idle time.Duration, log *slog.Logger) *Pools {
	return &Pools{opts: o, revalidate: revalidate, idle: idle, log: log, byID: map[string]*poolEntry{}}
}

// cached returns a Source that may be used for (userID, dbID) without asking
// storage, or nil.
func (p *Pools) cached(userID, dbID string) (connectors.Source, *poolEntry) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	e, ok := p.byID[dbID]
	if !ok || e.userID != userID || time.Since(e.checked) > p.revalidate {
		return nil, nil
	}
	e.lastUsed.Store(time.Now().UnixNano())
	return e.src, e
}

// get returns the Source of a database record, opening it when needed. The
// record has already been loaded for userID, so ownership is confirmed. gen
// is the generation read before the record: after a change since, get
// answers errStale instead of caching a pool of a record that may be gone
// or edited.
func (p *Pools) get(ctx context.Context, rec *storage.Database, gen uint64, open func(context.Context) (connectors.Source, error)) (connectors.Source, error) {
	lockAny, _ := p.opens.LoadOrStore(rec.ID, &sync.Mutex{})
	lock := lockAny.(*sync.Mutex)
	lock.Lock()
	defer lock.Unlock()

	p.mu.Lock()
	e, ok := p.byID[rec.ID]
	if ok && e.version.Equal(rec.UpdatedAt) && e.userID == rec.UserID {
		e.checked = time.Now()
		e.lastUsed.Store(time.Now().UnixNano())
		p.mu.Unlock()
		return e.src, nil
	}
	if p.changes.Load() != gen {
		p.mu.Unlock()
		return nil, errStale
	}
	if ok { // edited since opened: the old pool must go
		delete(p.byID, rec.ID)
		go e.src.Close()
	}
	p.mu.Unlock()

	src, err := open(ctx)
	if err != nil {
		return nil, err
	}
	ne := &poolEntry{src: src, userID: rec.UserID, dbType: rec.DBType, writes: rec.AllowWrites, version: rec.UpdatedAt,
		checked: time.Now()}
	ne.lastUsed.Store(time.Now().UnixNano())
	p.mu.Lock()
	if p.changes.Load() != gen { // changed while it was opened
		p.mu.Unlock()
		go src.Close()
		return nil, errStale
	}
	p.byID[rec.ID] = ne
	p.mu.Unlock()
	return src, nil
}

// Close drops the Source of one database (edited or removed) at once, so
// that no later job uses it, and closes it in the background: a job running
// on it finishes first, and neither the caller (an API handler about to
// answer, or the change-event subscription) waits for it. It counts a
// change even when nothing was cached: a job may be reading the record.
func (p *Pools) Close(dbID string) {
	p.opens.Delete(dbID)
	p.mu.Lock()
	p.changes.Add(1)
	e := p.byID[dbID]
	delete(p.byID, dbID)
	p.mu.Unlock()
	if e != nil {
		go e.src.Close()
		p.log.Info("closed pool", "db_id", dbID)
	}
}

// CloseAll closes every Source.
func (p *Pools) CloseAll() {
	p.mu.Lock()
	all := p.byID
	p.byID = map[string]*poolEntry{}
	p.mu.Unlock()
	for _, e := range all {
		e.src.Close()
	}
}

// Sweep closes Sources idle for longer than the idle limit.
func (p *Pools) Sweep() {
	var stale []connectors.Source
	p.mu.Lock()
	for id, e := range p.byID {
		if time.Since(time.Unix(0, e.lastUsed.Load())) > p.idle {
			stale = append(stale, e.src)
			delete(p.byID, id)
			p.opens.Delete(id)
		}
	}
	p.mu.Unlock()
	for _, s := range stale {
		s.Close()
	}
}

// Stats reports open Sources and their open connections, per database type.
func (p *Pools) Stats() map[string][2]int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := map[string][2]int{}
	for _, e := range p.byID {
		s := out[e.dbType]
		s[0]++
		s[1] += e.src.OpenConns()
		out[e.dbType] = s
	}
	return out
}

// RunSweeper sweeps idle Sources until ctx ends.
func (p *Pools) RunSweeper(ctx context.Context) {
	t := time.NewTicker(p.idle / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.Sweep()
		}
	}
}
