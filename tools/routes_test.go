package tools

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/internal/testservices"
	"github.com/openanalyst/mcp-integration-service/messages"
)

// Requests that miss the route cache together (its entry expired under
// load) share one storage read; a route read before a change is not kept,
// and a request after the change does not join a read from before it.
func TestRouteMissesShareOneRead(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.put(t, "db_w", "alice", true)
	held := testservices.Hold(b.store)
	svc, err := New(Config{Store: held})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := Request{UserID: "alice", Action: "DB_QUERY_db_w"}

	const calls = 32
	got := make([]messages.Class, calls)
	var early sync.WaitGroup
	for i := range calls {
		early.Add(1)
		go func() {
			defer early.Done()
			got[i] = svc.classOf(ctx, req)
		}()
	}
	waitReads(t, held, 1)
	// An edit while the read's answer is out: it must not be cached, and a
	// request from now on reads again.
	b.put(t, "db_w", "alice", false)
	svc.ForgetDatabase("db_w")
	var late messages.Class
	lateDone := make(chan struct{})
	go func() {
		defer close(lateDone)
		late = svc.classOf(ctx, req)
	}()
	waitReads(t, held, 2)
	time.Sleep(100 * time.Millisecond) // nobody else joins
	if n := held.Reads.Load(); n != 2 {
		t.Fatalf("%d storage reads for %d requests before and 1 after a change, want 2", n, calls)
	}
	// A request that joins a held read gives up with its own deadline, on
	// the safe class, and leaves the read to the others.
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	start := time.Now()
	if c := svc.classOf(short, req); c != messages.Durable || time.Since(start) > 2*time.Second {
		t.Fatalf("a request whose deadline passed during a shared read: class %s after %s, want durable at once", c, time.Since(start))
	}
	cancelShort()
	held.Release <- struct{}{} // the first read waits first: it goes first
	early.Wait()
	for i, c := range got {
		if c != messages.Durable {
			t.Fatalf("request %d: class %s, want durable (the database allowed writes)", i, c)
		}
	}
	if writes, ok := svc.routes.get("db_w", "alice"); ok {
		t.Fatalf("a route read before the edit was cached (writes=%v)", writes)
	}
	held.Release <- struct{}{}
	<-lateDone
	if late != messages.Fast {
		t.Fatalf("request after the edit: class %s, want fast", late)
	}
	if writes, ok := svc.routes.get("db_w", "alice"); !ok || writes {
		t.Fatalf("cached route: writes=%v ok=%v, want the edited read-only route", writes, ok)
	}
	if c := svc.classOf(ctx, req); c != messages.Fast || held.Reads.Load() != 2 {
		t.Fatalf("class %s after %d reads, want fast from the cache", c, held.Reads.Load())
	}
}

func waitReads(t *testing.T, h *testservices.HeldStore, n int32) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for h.Reads.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d storage reads, want %d", h.Reads.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
