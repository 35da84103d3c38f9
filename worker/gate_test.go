package worker

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/openanalyst/mcp-integration-service/embedded"
	"github.com/openanalyst/mcp-integration-service/messages"
	"github.com/openanalyst/mcp-integration-service/queue"
)

// One slow database does not starve the others: its jobs hold at most
// PerDatabase handlers, up to Concurrency more wait at its gate without a
// handler slot, and another database's job runs at once although more slow
// jobs are queued than the worker has handlers.
func TestSlowDatabaseDoesNotStarveOthers(t *testing.T) {
	t.Parallel()
	ns, err := embedded.StartNATS(t.TempDir(), -1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	nc, err := nats.Connect("", nats.InProcessServer(ns.Server()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := queue.Setup(ctx, js, queue.DefaultSettings()); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var mu sync.Mutex
	slowRunning, slowPeak := 0, 0
	fastDone := make(chan struct{}, 1)
	w := New(nc, js, nil, Options{Concurrency: 8, PerDatabase: 2, AckWait: 30 * time.Second})
	w.Register(messages.KindExecute, HandlerFunc(func(_ context.Context, job *messages.Job, _ int) Outcome {
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
	close(release)
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
