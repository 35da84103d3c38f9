package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/openanalyst/mcp-integration-service/messages"
	"github.com/openanalyst/mcp-integration-service/queue"
)

// The worker's pull requests ask the server for a heartbeat every second and
// expire after 5 s, so that nats.go notices a lost request after 2 s and
// asks again (its defaults, 15 s and 30 s, left a synchronous caller's jobs
// in the stream past its whole deadline). Jobs sent after the worker sat idle
// longer than a pull lives are answered at once.
func TestPullRequestsHeartbeatAndExpireSoon(t *testing.T) {
	t.Parallel()
	settings := queue.DefaultSettings()
	nc, js := startQueue(t, settings)

	type pullRequest struct {
		Expires   time.Duration `json:"expires"`
		Heartbeat time.Duration `json:"idle_heartbeat"`
	}
	pulls := make(chan pullRequest, 64)
	mon, err := nats.Connect("", nats.InProcessServer(nc.Opts.InProcessServer))
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	subject := "$JS.API.CONSUMER.MSG.NEXT." + messages.FastStream + "." + messages.KindExecute.ConsumerOf(messages.Fast)
	if _, err := mon.Subscribe(subject, func(m *nats.Msg) {
		var p pullRequest
		if json.Unmarshal(m.Data, &p) == nil {
			select {
			case pulls <- p:
			default:
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := mon.Flush(); err != nil {
		t.Fatal(err)
	}

	w := New(nc, js, nil, Options{Concurrency: 4, AckWait: settings.AckWait})
	w.Register(messages.KindExecute, HandlerFunc(func(context.Context, *messages.Job, int) Outcome {
		return Outcome{Body: []byte(`{"success":true}`)}
	}))
	runCtx, stop := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(runCtx, context.Background()) }()
	defer func() {
		stop()
		if err := <-stopped; err != nil {
			t.Error(err)
		}
	}()

	select {
	case p := <-pulls:
		if p.Expires <= 0 || p.Expires > pullExpiry || p.Heartbeat <= 0 || p.Heartbeat > pullHeartbeat {
			t.Fatalf("pull request expires %v with heartbeat %v, want at most %v and %v", p.Expires, p.Heartbeat, pullExpiry, pullHeartbeat)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the worker sent no pull request for fast jobs")
	}

	disp, err := queue.NewDispatcher(nc, js, "n1", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer disp.Close()
	time.Sleep(pullExpiry + time.Second) // the first pull request expired
	for i := range 8 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		j, _ := messages.NewJob(messages.KindExecute, fmt.Sprintf("after-idle-%d", i), "u", messages.ExecutePayload{Action: "DB_QUERY_db_x"})
		r, err := disp.Request(ctx, messages.Fast, j)
		cancel()
		if err != nil || !r.OK() {
			t.Fatalf("job %d after the worker sat idle: %+v, %v", i, r.Err, err)
		}
	}
}
