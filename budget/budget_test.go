package budget

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/openanalyst/mcp-integration-service/connectors"
	"github.com/openanalyst/mcp-integration-service/embedded"
	"github.com/openanalyst/mcp-integration-service/internal/testservices"
)

// server counts the connections open to it now, and the peak.
type server struct {
	addr       string
	open, peak atomic.Int64
}

func listen(t *testing.T) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	s := &server{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := s.open.Add(1)
			for p := s.peak.Load(); n > p && !s.peak.CompareAndSwap(p, n); p = s.peak.Load() {
			}
			go func() {
				_, _ = c.Read(make([]byte, 1)) // until the client closes
				s.open.Add(-1)
				_ = c.Close()
			}()
		}
	}()
	return s
}

func jetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	js, _ := jetStreamOn(t)
	return js
}

// jetStreamOn is jetStream with its server, for a test that stops it.
func jetStreamOn(t *testing.T) (jetstream.JetStream, *embedded.NATS) {
	t.Helper()
	_, js, ns := testservices.InProcessNATS(t)
	return js, ns
}

func open(t *testing.T, js jetstream.JetStream, perDB int, owner string) *Budget {
	t.Helper()
	b, err := Open(context.Background(), js, perDB, 1, owner, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

var plain connectors.DialContextFunc = (&net.Dialer{}).DialContext

// driven opens a budget whose renewals the test drives (no background
// loop), a server, and one leased connection to it for database db.
func driven(t *testing.T, js jetstream.JetStream, perDB int, db string) (*Budget, *server, net.Conn) {
	t.Helper()
	b := open(t, js, perDB, "w")
	b.Close()
	srv := listen(t)
	c, err := b.Dialer(db, plain)(context.Background(), "tcp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return b, srv, c
}

// Four "workers" sharing one budget of 3 never hold more than 3 connections
// to one database at once, however many dials race; a closed connection's
// lease goes to the next dial; another database has a budget of its own.
func TestBudgetAcrossWorkers(t *testing.T) {
	t.Parallel()
	js := jetStream(t)
	srv := listen(t)
	var workers []*Budget
	for i := range 4 {
		workers = append(workers, open(t, js, 3, "w"+string(rune('0'+i))))
	}
	var wg sync.WaitGroup
	var done atomic.Int64
	for i := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := workers[i%4].Dialer("db_a", plain)(ctx, "tcp", srv.addr)
			if err != nil {
				t.Errorf("dial %d: %v", i, err)
				return
			}
			time.Sleep(30 * time.Millisecond)
			_ = c.Close()
			done.Add(1)
		}()
	}
	wg.Wait()
	if done.Load() != 24 {
		t.Fatalf("%d of 24 dials got a connection", done.Load())
	}
	if p := srv.peak.Load(); p > 3 || p < 1 {
		t.Fatalf("peak %d connections, budget 3", p)
	}
	// Another database is not held back by db_a's leases.
	var held []net.Conn
	for range 3 {
		c, err := workers[0].Dialer("db_a", plain)(context.Background(), "tcp", srv.addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := workers[1].Dialer("db_a", plain)(ctx, "tcp", srv.addr)
	var ce *connectors.Error
	if !errors.As(err, &ce) || ce.Kind != connectors.KindBusy || ce.Code() != "database_busy" || !errors.Is(err, ErrBusy) {
		t.Fatalf("a fourth connection to db_a: %v, want the budget's database_busy error", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the dial waited for a lease until its deadline: its caller sees a bare timeout")
	}
	c, err := workers[1].Dialer("db_b", plain)(context.Background(), "tcp", srv.addr)
	if err != nil {
		t.Fatalf("db_b was held back by db_a: %v", err)
	}
	_ = c.Close()
	for _, c := range held {
		_ = c.Close()
	}
}

// A failed dial gives its lease back at once.
func TestBudgetFailedDial(t *testing.T) {
	t.Parallel()
	b := open(t, jetStream(t), 1, "w")
	refuse := func(context.Context, string, string) (net.Conn, error) { return nil, errors.New("refused") }
	for range 3 {
		if _, err := b.Dialer("db_x", refuse)(context.Background(), "tcp", "x"); err == nil || err.Error() != "refused" {
			t.Fatalf("dial: %v", err)
		}
	}
	srv := listen(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := b.Dialer("db_x", plain)(ctx, "tcp", srv.addr)
	if err != nil {
		t.Fatalf("the lease of a failed dial was kept: %v", err)
	}
	_ = c.Close()
}

// A lease that cannot be renewed (another holder took its key, as after an
// expiry) closes its connection: the budget holds even then.
func TestBudgetLostLeaseClosesConnection(t *testing.T) {
	t.Parallel()
	js := jetStream(t)
	b, srv, _ := driven(t, js, 1, "db_l")
	kv, _ := js.KeyValue(context.Background(), Bucket)
	if _, err := kv.Put(context.Background(), "db_l.0", []byte("someone else")); err != nil {
		t.Fatal(err)
	}
	b.refresh()
	deadline := time.Now().Add(3 * time.Second)
	for srv.open.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the connection of a lost lease stayed open")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A worker takes at most its fair part of a database's budget, so that one
// keeping its connections busy cannot starve the other workers of any.
func TestBudgetFairShare(t *testing.T) {
	t.Parallel()
	js := jetStream(t)
	srv := listen(t)
	var ws []*Budget
	for i := range 4 {
		ws = append(ws, open(t, js, 4, "share"+string(rune('0'+i))))
	}
	for _, w := range ws {
		w.announce() // every worker now counts all four
	}
	if got := ws[0].Share(); got != 1 {
		t.Fatalf("share with 4 workers and a budget of 4: %d, want 1", got)
	}
	first, err := ws[0].Dialer("db_s", plain)(context.Background(), "tcp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := ws[0].Dialer("db_s", plain)(ctx, "tcp", srv.addr); connectors.KindOf(err) != connectors.KindBusy {
		t.Fatalf("a second connection beyond the worker's share: %v", err)
	}
	for _, w := range ws[1:] {
		c, err := w.Dialer("db_s", plain)(context.Background(), "tcp", srv.addr)
		if err != nil {
			t.Fatalf("another worker's share was taken: %v", err)
		}
		defer c.Close()
	}
}

// NATS away for less than two thirds of a lease's TTL closes nothing; away
// longer, the connection goes, since its lease may have expired.
func TestBudgetOutlivesShortOutage(t *testing.T) {
	t.Parallel()
	js, ns := jetStreamOn(t)
	b, srv, _ := driven(t, js, 1, "db_o")
	ns.Close()
	b.refresh()
	time.Sleep(100 * time.Millisecond)
	if srv.open.Load() != 1 {
		t.Fatal("a renewal that failed once closed the connection")
	}
	b.mu.Lock()
	for _, l := range b.held {
		l.renewed = time.Now().Add(-b.ttl * 2 / 3)
	}
	b.mu.Unlock()
	b.refresh()
	deadline := time.Now().Add(3 * time.Second)
	for srv.open.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("a lease unrenewed for 2/3 of its TTL kept its connection")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// NATS restarted and lost the bucket (memory storage): the next renewal
// makes it again and takes the same lease back, the connection stays, and
// new dials work.
func TestBudgetBucketMadeAgain(t *testing.T) {
	t.Parallel()
	js := jetStream(t)
	b, srv, _ := driven(t, js, 2, "db_m")
	if err := js.DeleteKeyValue(context.Background(), Bucket); err != nil {
		t.Fatal(err)
	}
	b.refresh()
	kv, err := js.KeyValue(context.Background(), Bucket)
	if err != nil {
		t.Fatalf("bucket not made again: %v", err)
	}
	e, err := kv.Get(context.Background(), "db_m.0")
	if err != nil || string(e.Value()) != "w" {
		t.Fatalf("lease not taken back: %v", err)
	}
	if srv.open.Load() != 1 {
		t.Fatal("the connection was closed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c2, err := b.Dialer("db_m", plain)(ctx, "tcp", srv.addr)
	if err != nil {
		t.Fatalf("a new dial after the bucket came back: %v", err)
	}
	_ = c2.Close()
}

// A broker that cannot be asked is the service's fault (503), not the
// database's.
func TestBudgetBrokerDownIsBrokerUnavailable(t *testing.T) {
	t.Parallel()
	js, ns := jetStreamOn(t)
	b := open(t, js, 1, "w")
	ns.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := b.Dialer("db_d", plain)(ctx, "tcp", "127.0.0.1:1")
	var ce *connectors.Error
	if !errors.As(err, &ce) || ce.Code() != "broker_unavailable" {
		t.Fatalf("dial with NATS down: %v", err)
	}
}

// A renewal racing a release never leaves the slot taken by nobody: after
// every lease is given back, none is left in the bucket.
func TestBudgetRenewRacingReleaseLeaksNoSlot(t *testing.T) {
	t.Parallel()
	js := jetStream(t)
	b := open(t, js, 2, "w")
	b.Close()
	ctx := context.Background()
	for range 100 {
		l, err := b.acquire(ctx, "db_r")
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); b.renew(l) }()
		go func() { defer wg.Done(); b.release(l) }()
		wg.Wait()
	}
	kv, _ := js.KeyValue(ctx, Bucket)
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k := range keys.Keys() {
		if strings.HasPrefix(k, "db_r.") {
			t.Fatalf("lease %s left behind", k)
		}
	}
}

// Workers are counted from the bucket (no consumer needed), and a worker
// whose share shrank as others joined reports its surplus connections one
// at a time, so that its pool closes exactly those as they are released.
func TestBudgetSurplusAfterWorkersJoin(t *testing.T) {
	t.Parallel()
	js := jetStream(t)
	srv := listen(t)
	first := open(t, js, 4, "first")
	if n := first.Workers(); n != 1 {
		t.Fatalf("one worker counted %d", n)
	}
	var conns []net.Conn
	for range 3 {
		c, err := first.Dialer("db_j", plain)(context.Background(), "tcp", srv.addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	if first.Surplus("db_j") {
		t.Fatal("surplus with 3 of a share of 4")
	}
	second := open(t, js, 4, "second")
	first.announce()
	if a, b := first.Workers(), second.Workers(); a != 2 || b != 2 {
		t.Fatalf("workers counted %d and %d, want 2", a, b)
	}
	if s := first.Share(); s != 2 {
		t.Fatalf("share %d with 2 workers and a budget of 4, want 2", s)
	}
	if !first.Surplus("db_j") {
		t.Fatal("no surplus with 3 connections and a share of 2")
	}
	if first.Surplus("db_j") {
		t.Fatal("a second surplus while the first is still leaving")
	}
	_ = conns[0].Close()
	if first.Surplus("db_j") {
		t.Fatal("surplus with 2 connections and a share of 2")
	}
	// The closed connection's slot is free again shortly after the close,
	// and within its share the second worker gets two.
	for range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := second.Dialer("db_j", plain)(ctx, "tcp", srv.addr)
		cancel()
		if err != nil {
			t.Fatalf("second worker: %v", err)
		}
		defer c.Close()
	}
	for _, c := range conns[1:] {
		_ = c.Close()
	}
}

// A renewal stored by NATS whose acknowledgement was lost leaves a stale
// revision here: the next renewal finds the lease still this worker's and
// keeps it (and its connection) instead of closing it as lost.
func TestBudgetStaleRevisionOfOwnLeaseIsKept(t *testing.T) {
	t.Parallel()
	js := jetStream(t)
	b, srv, _ := driven(t, js, 1, "db_v")
	kv, _ := js.KeyValue(context.Background(), Bucket)
	if _, err := kv.Put(context.Background(), "db_v.0", []byte("w")); err != nil { // the lost renewal
		t.Fatal(err)
	}
	b.refresh()
	time.Sleep(100 * time.Millisecond)
	if srv.open.Load() != 1 {
		t.Fatal("the worker closed its own lease's connection")
	}
	e, err := kv.Get(context.Background(), "db_v.0")
	b.mu.Lock()
	held := len(b.held)
	var rev uint64
	for _, l := range b.held {
		rev = l.rev
	}
	b.mu.Unlock()
	if err != nil || held != 1 || rev != e.Revision() {
		t.Fatalf("lease not renewed from the stored revision: held %d, rev %d, stored %v %v", held, rev, e, err)
	}
}
