package worker

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/internal/testservices"
	"github.com/openanalyst/mcp-integration-service/storage"
)

// Jobs in flight that need the same record at once (the pool cache's
// ownership check expired under load) share one storage read, each getting
// its own copy; another user's jobs do not share it.
func TestConcurrentJobsShareOneRecordRead(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m := testservices.Store(t, "worker_record")
	if err := m.InsertDatabase(ctx, &storage.Database{ID: "db_shared", UserID: "alice", DBType: "postgres", Name: "a"}); err != nil {
		t.Fatal(err)
	}
	store := testservices.Hold(m)
	d := &Databases{Store: store}

	const jobs = 32
	recs := make([]*storage.Database, jobs)
	outs := make([]Outcome, jobs)
	var wg sync.WaitGroup
	for i := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			recs[i], outs[i] = d.record(ctx, "alice", "db_shared", 0)
		}()
	}
	var bobRec *storage.Database
	var bobOut Outcome
	wg.Add(1)
	go func() {
		defer wg.Done()
		bobRec, bobOut = d.record(ctx, "bob", "db_shared", 0)
	}()
	time.Sleep(200 * time.Millisecond) // every job is waiting on a read by now
	if n := store.Reads.Load(); n != 2 {
		t.Errorf("%d storage reads in flight for %d jobs of one user and one of another, want 2", n, jobs)
	}
	// A job that joins a held read stops waiting at its own deadline.
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	start := time.Now()
	if rec, out := d.record(short, "alice", "db_shared", 0); rec != nil || out.Err == nil ||
		out.Err.Code != "storage_unavailable" || time.Since(start) > 2*time.Second {
		t.Errorf("a job whose deadline passed during a shared read: record %+v, outcome %+v after %s", rec, out, time.Since(start))
	}
	cancelShort()
	// A job that comes after a database changed (a later generation) does
	// not join a read from before the change.
	wg.Add(1)
	go func() {
		defer wg.Done()
		if rec, out := d.record(ctx, "alice", "db_shared", 1); rec == nil {
			t.Errorf("the read after a change: %+v", out)
		}
	}()
	time.Sleep(200 * time.Millisecond)
	if n := store.Reads.Load(); n != 3 {
		t.Errorf("%d storage reads in flight after a job of a later generation came, want 3", n)
	}
	close(store.Release)
	wg.Wait()
	for i := range jobs {
		if recs[i] == nil || recs[i].ID != "db_shared" || recs[i].UserID != "alice" {
			t.Fatalf("job %d: record %+v, outcome %+v", i, recs[i], outs[i])
		}
		if i > 0 && recs[i] == recs[0] {
			t.Fatalf("jobs 0 and %d got the same record value, want a copy each", i)
		}
	}
	if bobRec != nil || bobOut.Err == nil || bobOut.Err.Code != "database_not_found" {
		t.Fatalf("another user's read: record %+v, outcome %+v; want database_not_found", bobRec, bobOut)
	}
}
