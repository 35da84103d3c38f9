package worker

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/messages"
	"github.com/openanalyst/mcp-integration-service/queue"
)

// One slow database does not starve the others: its jobs hold at most
// PerDatabase handlers, up to Concurrency more wait at its gate without a
// handler slot, and another database's job runs at once although more slow
// jobs are queued than the worker has handlers.
func TestSlowDatabaseDoesNotStarveOthers(t *testing.T) {
	t.Parallel()
	nc, js := startQueue(t, queue.DefaultSettings())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	release := make(chan struct{})
	var mu sync.Mutex
	slowRunning, slowPeak := 0, 0
	fastDone := make(chan struct{}, 1)
	load := &jobLoad{}
	w := New(nc, js, nil, Options{Concurrency: 8, PerDatabase: 2, AckWait: 30 * time.Second, Load: load})
	var handled atomic.Int64
	w.Register(messages.KindExecute, HandlerFunc(func(_ context.Context, job *messages.Job, _ int) Outcome {
		handled.Add(1)
		pl, _ := job.Execute()
		if pl.Action == "DB_QUERY_db_fast" {
			fastDone <- struct{}{}
			return Outcome{Body: []byte(`{"success":true}`)}
		}
		mu.Lock()
		slowRunning++
		slowPeak = max(slowPeak, slowRunning)
		mu.Unlock()
		<-release
		mu.Lock()
		slowRunning--
		mu.Unlock()
		return Outcome{Body: []byte(`{"success":true}`)}
	}))
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx, context.Background()) }()
	disp, err := queue.NewDispatcher(nc, js, "n1", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer disp.Close()
	enqueue := func(id, action string) {
		j, _ := messages.NewJob(messages.KindExecute, id, "u", messages.ExecutePayload{Action: action, Async: true})
		if err := disp.Enqueue(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		enqueue("slow-"+string(rune('a'+i)), "DB_QUERY_db_slow")
	}
	time.Sleep(300 * time.Millisecond)
	enqueue("fast-1", "DB_QUERY_db_fast")
	select {
	case <-fastDone:
	case <-time.After(5 * time.Second):
		t.Fatal("another database's job waited behind the slow one")
	}
	mu.Lock()
	peak := slowPeak
	mu.Unlock()
	if peak != 2 {
		t.Fatalf("the slow database held %d handlers at once, want its bound of 2", peak)
	}
	// The fast job may still be ending; then only the 2 running count.
	for deadline := time.Now().Add(5 * time.Second); load.in.Load() != 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs counted in flight with 2 running and 8 waiting at the gate, want 2", load.in.Load())
		}
	}
	close(release)
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if b, h, in := load.begun.Load(), handled.Load(), load.in.Load(); b != h || b < 3 || in != 0 {
		t.Fatalf("%d jobs handled, %d counted, %d still counted in flight; want every handled job counted, then none", h, b, in)
	}
}

// jobLoad records what Options.Load is told.
type jobLoad struct{ in, begun atomic.Int64 }

func (l *jobLoad) Begin() { l.begun.Add(1); l.in.Add(1) }
func (l *jobLoad) End()   { l.in.Add(-1) }

// The gate follows the worker's share of the connection budget: no more
// handlers than the share, waiting jobs admitted in arrival order as places
// free or the share grows, and a job that gives up leaves the queue.
func TestGateFollowsShare(t *testing.T) {
	t.Parallel()
	var share atomic.Int64
	share.Store(1)
	gs := &gates{perDB: 4, share: func() int { return int(share.Load()) }}
	g := &gate{limit: gs.limit}
	if !g.tryEnter() {
		t.Fatal("an empty gate refused a job")
	}
	if g.tryEnter() {
		t.Fatal("entered beyond a share of 1")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admitted := make(chan int, 4)
	gaveUp := make(chan bool, 1)
	quitter, quit := context.WithCancel(ctx)
	for i := range 4 {
		if i == 1 { // the second in line gives up before its turn
			go func() { gaveUp <- g.wait(quitter, nil, time.Hour) }()
		} else {
			go func() {
				if g.wait(ctx, nil, time.Hour) {
					admitted <- i
				}
			}()
		}
		for g.queued() != i+1 {
			time.Sleep(time.Millisecond)
		}
	}
	quit()
	if <-gaveUp {
		t.Fatal("a job whose ctx ended was admitted")
	}
	select {
	case i := <-admitted:
		t.Fatalf("job %d admitted beyond the share", i)
	case <-time.After(100 * time.Millisecond):
	}
	g.leave()
	if i := <-admitted; i != 0 {
		t.Fatalf("job %d admitted first, want 0", i)
	}
	share.Store(3) // workers left: the waiting jobs get in without a leave
	got := []int{<-admitted, <-admitted}
	if min(got[0], got[1]) != 2 || max(got[0], got[1]) != 3 {
		t.Fatalf("admitted %v after the share grew, want [2 3]", got)
	}
	if g.tryEnter() {
		t.Fatal("entered beyond a share of 3")
	}
	share.Store(100) // the pool size bounds it then
	if !g.tryEnter() || g.tryEnter() {
		t.Fatal("the gate does not hold its pool size of 4")
	}
}
