package worker

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/messages"
	"github.com/openanalyst/mcp-integration-service/queue"
)

// A job that runs three times its consumer's AckWait is not redelivered to
// another handler meanwhile: the worker reports progress while it runs, and
// stops reporting once it is acked.
func TestLongJobReportsProgress(t *testing.T) {
	t.Parallel()
	settings := queue.DefaultSettings()
	settings.AckWait = time.Second
	nc, js := startQueue(t, settings)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var runs atomic.Int32
	done := make(chan struct{}, 4)
	w := New(nc, js, nil, Options{Concurrency: 4, AckWait: settings.AckWait})
	w.Register(messages.KindExecute, HandlerFunc(func(context.Context, *messages.Job, int) Outcome {
		runs.Add(1)
		time.Sleep(3 * settings.AckWait)
		done <- struct{}{}
		return Outcome{Body: []byte(`{"success":true}`)}
	}))
	runCtx, stop := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(runCtx, context.Background()) }()
	disp, err := queue.NewDispatcher(nc, js, "n1", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer disp.Close()
	j, _ := messages.NewJob(messages.KindExecute, "long-1", "u", messages.ExecutePayload{Action: "DB_QUERY_db_x", Async: true})
	if err := disp.Enqueue(ctx, j); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("the job never finished")
	}
	time.Sleep(2 * settings.AckWait) // a redelivery would start by now
	if n := runs.Load(); n != 1 {
		t.Fatalf("the job ran %d times, want 1", n)
	}
	cons, err := js.Consumer(ctx, messages.JobStream, messages.KindExecute.ConsumerOf(messages.Durable))
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil || info.NumAckPending != 0 || info.NumRedelivered != 0 {
		t.Fatalf("consumer after the job: %+v, %v", info, err)
	}
	stop()
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}
