package budget

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

// Bucket is the KV bucket of connection leases: key <db_id>.<slot>, and the
// live workers: key worker.<owner>.
const Bucket = "MCP_DB_LEASES"

// DefaultTTL is how long a lease lives without a refresh. A worker refreshes
// its leases every TTL/3; one that cannot (it lost NATS) closes the
// connections whose leases it may have lost.
const DefaultTTL = 15 * time.Second

// Budget hands out connection leases for every database, for one worker.
type Budget struct {
	js     jetstream.JetStream
	cfg    jetstream.KeyValueConfig
	kv     jetstream.KeyValue
	stream jetstream.Stream // the bucket's stream, to count the live workers
	max    int
	owner  string
	ttl    time.Duration
	log    *slog.Logger

	mu      sync.Mutex
	held    map[string]*lease // key → lease
	perDB   map[string]int    // open connections per database (held leases not yet closing)
	leaving map[string]int    // connections Surplus told their pool to close, not closed yet
	workers int               // live workers of the fleet, this one included
	countOK bool              // the last count of live workers succeeded
	// recreated is when recreate last ran.
	recreated time.Time
	stop      chan struct{}
	once      sync.Once
}

type lease struct {
	key     string
	db      string
	rev     uint64
	renewed time.Time  // when NATS last stored it: it expires TTL after that, at the latest
	conn    net.Conn   // closed when the lease is lost
	counted bool       // counts in perDB: open, not closing
	op      sync.Mutex // one KV operation on the lease at a time: renew or release
}

// uncount stops counting a lease's connection against its database's share.
// Call with mu held.
func (b *Budget) uncount(l *lease) {
	if !l.counted {
		return
	}
	l.counted = false
	if b.perDB[l.db]--; b.perDB[l.db] <= 0 {
		delete(b.perDB, l.db)
	}
	if b.leaving[l.db] > 0 {
		if b.leaving[l.db]--; b.leaving[l.db] == 0 {
			delete(b.leaving, l.db)
		}
	}
}

// forget drops a lease from the held set. Call with mu held.
func (b *Budget) forget(l *lease) bool {
	if _, mine := b.held[l.key]; !mine {
		return false
	}
	delete(b.held, l.key)
	b.uncount(l)
	return true
}

// Open binds (creating it if needed) the lease bucket. perDB is the most
// connections the fleet opens to one database; owner names this process in
// the leases.
func Open(ctx context.Context, js jetstream.JetStream, perDB, replicas int, owner string, log *slog.Logger) (*Budget, error) {
	if perDB < 1 {
		return nil, errors.New("budget: the connection budget must be at least 1")
	}
	cfg := jetstream.KeyValueConfig{Bucket: Bucket,
		Description: "connection leases: at most MCP_DB_MAX_CONNECTIONS per user database across the fleet",
		TTL:         DefaultTTL, History: 1, Replicas: max(replicas, 1), Storage: jetstream.MemoryStorage}
	kv, err := js.CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("budget: bucket %s: %w", Bucket, err)
	}
	stream, err := js.Stream(ctx, "KV_"+Bucket)
	if err != nil {
		return nil, fmt.Errorf("budget: bucket %s: %w", Bucket, err)
	}
	if log == nil {
		log = slog.Default()
	}
	b := &Budget{js: js, cfg: cfg, kv: kv, stream: stream, max: perDB, owner: owner, ttl: DefaultTTL, log: log, held: map[string]*lease{},
		perDB: map[string]int{}, leaving: map[string]int{}, workers: 1, countOK: true, stop: make(chan struct{})}
	b.announce()
	go b.refreshLoop()
	return b, nil
}

// Max is the budget per database.
func (b *Budget) Max() int { return b.max }

// Close stops refreshing. Leases of connections still open expire.
func (b *Budget) Close() { b.once.Do(func() { close(b.stop) }) }

// retryEvery is how often a dial waiting for a free lease tries again.
const retryEvery = 25 * time.Millisecond

// Share is the most connections to one database this worker opens: its fair
// part of the budget, so that a worker keeping its connections busy does not
// starve the others of any. It changes as workers join and leave.
func (b *Budget) Share() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.shareLocked()
}

// shareLocked rounds down, so that the shares never add up to more than the
// budget (while there are no more workers than connections): a worker whose
// handlers could not all get a connection would hold their jobs waiting.
func (b *Budget) shareLocked() int { return max(1, b.max/b.workers) }

// Workers is the number of live workers this worker counted last.
func (b *Budget) Workers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.workers
}

// Surplus reports whether this worker has more connections open to dbID than
// its share, as after workers joined: a pool asks it when a connection is
// released, and closes the connection instead of keeping it idle when it
// reports true. A true answer counts that connection as leaving, so that
// concurrent releases close only the surplus.
func (b *Budget) Surplus(dbID string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.perDB[dbID]-b.leaving[dbID] > b.shareLocked() {
		b.leaving[dbID]++
		return true
	}
	return false
}

// workerPrefix is the key prefix of the live workers in the bucket.
const workerPrefix = "worker."

// announce records this worker as live (key worker.<owner>, expiring with
// the bucket's TTL unless renewed) and counts the live workers: the subjects
// of worker keys in the bucket's stream (one STREAM.INFO request; listing
// keys would need a consumer, which the service's NATS users may not create).
func (b *Budget) announce() {
	n, err := b.countWorkers()
	b.mu.Lock()
	wasOK := b.countOK
	b.countOK = err == nil
	if err == nil {
		b.workers = max(n, 1)
	}
	workers := b.workers
	b.mu.Unlock()
	switch {
	case err != nil && wasOK:
		b.log.Warn("live workers not counted; the shares of the connection budget stay as they were", "workers", workers, "err", err)
	case err == nil && !wasOK:
		b.log.Info("live workers counted again", "workers", workers)
	}
}

func (b *Budget) countWorkers() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	kv, stream := b.handles()
	if _, err := kv.Put(ctx, workerPrefix+b.owner, []byte("1")); err != nil {
		if bucketMissing(err) {
			b.recreate()
		}
		return 0, err
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter("$KV."+Bucket+"."+workerPrefix+">"))
	if err != nil {
		return 0, err
	}
	// Worker keys are never deleted (they expire), so every subject left is
	// a worker that announced itself within the TTL.
	return len(info.State.Subjects), nil
}

// acquire takes a free lease of dbID, waiting until ctx ends. While the
// bucket cannot be reached (a NATS leader election) it keeps trying too.
func (b *Budget) acquire(ctx context.Context, dbID string) (*lease, error) {
	var brokerErr error // the last failure to reach the bucket, nil once it answered
	for {
		b.mu.Lock()
		mine, share := b.perDB[dbID], b.shareLocked()
		b.mu.Unlock()
		for slot := 0; slot < b.max && mine < share; slot++ { // mine ≥ share: wait for one of its own
			key := dbID + "." + strconv.Itoa(slot)
			// Not the caller's ctx: a create that succeeds as it ends must
			// still be recorded, or its slot would leak until it expires.
			// But no longer than the caller waits, so that it sees this
			// error and not a bare timeout of its own.
			limit := 2 * time.Second
			if dl, ok := ctx.Deadline(); ok {
				limit = max(min(limit, time.Until(dl)), 50*time.Millisecond)
			}
			cctx, cancel := context.WithTimeout(context.Background(), limit)
			sent := time.Now()
			rev, err := b.bucket().Create(cctx, key, []byte(b.owner))
			cancel()
			if err == nil {
				l := &lease{key: key, rev: rev, db: dbID, counted: true, renewed: sent}
				b.mu.Lock()
				b.held[key] = l
				b.perDB[dbID]++
				b.mu.Unlock()
				return l, nil
			}
			if bucketMissing(err) && b.recreate() {
				continue // the next slot, in the bucket made again
			}
			if !errors.Is(err, jetstream.ErrKeyExists) {
				brokerErr = err
				break
			}
			brokerErr = nil
		}
		select {
		case <-ctx.Done():
			if brokerErr != nil {
				return nil, &connectors.Error{Kind: connectors.KindBroker, Err: brokerErr,
					Msg: "the connection budget cannot be checked: the message broker is unavailable"}
			}
			b.logHolders(dbID, mine, share)
			return nil, &connectors.Error{Kind: connectors.KindBusy, Err: ErrBusy,
				Msg: fmt.Sprintf("all %d connections this service may open to the database are in use (MCP_DB_MAX_CONNECTIONS); try again shortly", b.max)}
		case <-time.After(retryEvery):
		}
	}
}

// logHolders logs who holds dbID's leases, when a dial gave up waiting.
func (b *Budget) logHolders(dbID string, mine, share int) {
	if !b.log.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	holders := map[string]int{}
	for slot := range b.max {
		e, err := b.bucket().Get(ctx, dbID+"."+strconv.Itoa(slot))
		switch {
		case err == nil:
			holders[string(e.Value())]++
		case errors.Is(err, jetstream.ErrKeyNotFound):
			holders["(free)"]++
		default:
			holders["(unknown: "+err.Error()+")"]++
		}
	}
	b.mu.Lock()
	held := 0
	for _, l := range b.held {
		if l.db == dbID {
			held++
		}
	}
	b.mu.Unlock()
	b.log.Info("no connection lease for a dial until its deadline", "db_id", dbID, "open", mine, "held", held,
		"share", share, "workers", b.Workers(), "holders", fmt.Sprint(holders))
}

// release gives a lease back.
func (b *Budget) release(l *lease) {
	b.mu.Lock()
	mine := b.forget(l)
	b.mu.Unlock()
	if !mine {
		return // lost already
	}
	l.op.Lock() // after a renewal in flight: delete the revision it wrote
	defer l.op.Unlock()
	b.mu.Lock()
	rev := l.rev
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := b.bucket().Delete(ctx, l.key, jetstream.LastRevision(rev)); err != nil {
		b.log.Debug("connection lease not released; it expires", "key", l.key, "err", err)
	}
}

// ErrBusy: every connection the budget allows is open.
var ErrBusy = errors.New("budget: every connection of the database's budget is in use")

// waitMargin is the part of a dial's time left when it stops waiting for a
// lease, at most 250 ms: the caller then gets the budget's own error (an
// infrastructure fault, retried), not a bare timeout of its connect (final).
func waitMargin(left time.Duration) time.Duration { return min(left/10, 250*time.Millisecond) }

// Dialer wraps dial so that every connection to dbID holds a lease from
// before it is dialled until it is closed.
func (b *Budget) Dialer(dbID string, dial connectors.DialContextFunc) connectors.DialContextFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		wctx := ctx
		if dl, ok := ctx.Deadline(); ok {
			var cancel context.CancelFunc
			wctx, cancel = context.WithDeadline(ctx, dl.Add(-waitMargin(time.Until(dl))))
			defer cancel()
		}
		l, err := b.acquire(wctx, dbID)
		if err != nil {
			return nil, err
		}
		c, err := dial(ctx, network, addr)
		if err != nil {
			b.release(l)
			return nil, err
		}
		lc := &leasedConn{Conn: c, closed: func() { b.closing(l) }, release: func() { b.release(l) }}
		b.mu.Lock()
		l.conn = lc
		_, held := b.held[l.key]
		b.mu.Unlock()
		if !held { // lost while dialling
			_ = lc.Close()
			return nil, &connectors.Error{Kind: connectors.KindUnavailable, Msg: "the connection's lease was lost; try again"}
		}
		return lc, nil
	}
}

// announceEvery is how often a worker counts the live workers.
const announceEvery = 3 * time.Second

// refreshLoop renews every held lease at a third of its TTL. A lease that
// another worker took, or that could not be renewed for two thirds of its
// TTL, may be lost: its connection is closed, so the budget holds even for
// a worker cut off from NATS. A shorter outage of NATS closes nothing.
func (b *Budget) refreshLoop() {
	t := time.NewTicker(b.ttl / 3)
	defer t.Stop()
	a := time.NewTicker(announceEvery)
	defer a.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-a.C:
			b.announce()
		case <-t.C:
			b.refresh()
		}
	}
}

// refresh renews every held lease once.
func (b *Budget) refresh() {
	b.mu.Lock()
	all := make([]*lease, 0, len(b.held))
	for _, l := range b.held {
		all = append(all, l)
	}
	b.mu.Unlock()
	for _, l := range all {
		b.renew(l)
	}
}

// renew renews one lease, unless it was released meanwhile. A release
// waits for it (l.op), so that it deletes the revision renew wrote and no
// renewal re-creates a released lease: either would leave the slot taken
// by nobody until it expired.
func (b *Budget) renew(l *lease) {
	l.op.Lock()
	defer l.op.Unlock()
	b.mu.Lock()
	held := b.held[l.key] == l
	b.mu.Unlock()
	if !held {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.ttl/6)
	sent := time.Now()
	rev, err := b.bucket().Update(ctx, l.key, []byte(b.owner), l.rev)
	cancel()
	if bucketMissing(err) {
		b.recreate() // NATS lost its memory: take the lease again below
	}
	if leaseGone(err) || bucketMissing(err) {
		// Expired, or the bucket is new: a free slot is taken again; one
		// that another worker holds now is lost.
		cctx, cancel := context.WithTimeout(context.Background(), b.ttl/6)
		rev, err = b.bucket().Create(cctx, l.key, []byte(b.owner))
		if errors.Is(err, jetstream.ErrKeyExists) {
			// Still this worker's: an earlier renewal was stored but its
			// acknowledgement lost (a NATS leader change), so the revision
			// held here is stale. Renew from the stored one.
			if e, gerr := b.bucket().Get(cctx, l.key); gerr == nil && string(e.Value()) == b.owner {
				rev, err = b.bucket().Update(cctx, l.key, []byte(b.owner), e.Revision())
			}
		}
		cancel()
	}
	b.mu.Lock()
	if err == nil {
		l.rev, l.renewed = rev, sent
		b.mu.Unlock()
		return
	}
	if !errors.Is(err, jetstream.ErrKeyExists) && time.Since(l.renewed) < b.ttl*2/3 {
		b.mu.Unlock() // NATS is away for now: the lease outlives the next try
		b.log.Debug("connection lease not renewed; trying again", "key", l.key, "err", err)
		return
	}
	b.forget(l)
	c := l.conn
	b.mu.Unlock()
	b.log.Warn("connection lease lost; closing its connection", "key", l.key, "err", err)
	if c != nil {
		_ = c.Close()
	}
}

// leaseGone tells an update refused because the lease is not at the
// revision this worker holds (it expired, or another worker holds the
// slot) from a broker that could not be asked.
func leaseGone(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) ||
		errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// bucketMissing tells that the lease bucket is gone: NATS restarted and lost
// its memory storage.
func bucketMissing(err error) bool {
	return errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, jetstream.ErrStreamNotFound) ||
		errors.Is(err, jetstream.ErrBucketNotFound)
}

// recreate makes the lease bucket again, at most once a second, and tells
// whether it exists now.
func (b *Budget) recreate() bool {
	b.mu.Lock()
	if time.Since(b.recreated) < time.Second {
		b.mu.Unlock()
		return false
	}
	b.recreated = time.Now()
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	kv, err := b.js.CreateOrUpdateKeyValue(ctx, b.cfg)
	if err != nil {
		return false
	}
	stream, err := b.js.Stream(ctx, "KV_"+Bucket)
	if err != nil {
		return false
	}
	b.mu.Lock()
	b.kv, b.stream = kv, stream
	b.mu.Unlock()
	b.log.Info("connection lease bucket made again (NATS lost it)", "bucket", Bucket)
	return true
}

// releaseLag is how long a closed connection keeps its lease: the server
// sees the close a moment after the client, and until it has, the old
// connection still counts on its side (pg_stat_activity).
const releaseLag = 250 * time.Millisecond

// closing stops counting a closed connection in its database's share at
// once; its lease stays held (and renewed) until release.
func (b *Budget) closing(l *lease) {
	b.mu.Lock()
	b.uncount(l)
	b.mu.Unlock()
}

// leasedConn gives its lease back a moment after it is closed.
type leasedConn struct {
	net.Conn
	once    sync.Once
	closed  func()
	release func()
}

func (c *leasedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.closed()
		time.AfterFunc(releaseLag, c.release)
	})
	return err
}

// bucket is the lease bucket's current handle.
func (b *Budget) bucket() jetstream.KeyValue {
	kv, _ := b.handles()
	return kv
}

// handles are the lease bucket's current handles: the bucket and its stream.
func (b *Budget) handles() (jetstream.KeyValue, jetstream.Stream) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.kv, b.stream
}
