package queue_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/openanalyst/mcp-integration-service/embedded"
	"github.com/openanalyst/mcp-integration-service/messages"
	"github.com/openanalyst/mcp-integration-service/queue"
)

type bundle struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	disp *queue.Dispatcher
}

func setup(t *testing.T) bundle {
	t.Helper()
	ns, err := embedded.StartNATS(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := queue.Setup(ctx, js, queue.DefaultSettings()); err != nil {
		t.Fatal(err)
	}
	d, err := queue.NewDispatcher(nc, js, "node1", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return bundle{nc, js, d}
}

// fakeWorker answers every execute job on its reply inbox.
func fakeWorker(t *testing.T, nc *nats.Conn) {
	t.Helper()
	sub, err := nc.Subscribe(messages.KindExecute.Subject(), func(m *nats.Msg) {
		r := nats.NewMsg(m.Header.Get(messages.HeaderReplyTo))
		r.Header.Set(messages.HeaderJobID, m.Header.Get(messages.HeaderMsgID))
		r.Header.Set(messages.HeaderOutcome, messages.OutcomeOK)
		r.Data = []byte(`{"result":1}`)
		_ = nc.PublishMsg(r)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
}

func TestRequestGetsItsReply(t *testing.T) {
	t.Parallel()
	b := setup(t)
	fakeWorker(t, b.nc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := b.disp.Request(ctx, queue.Job{Kind: messages.KindExecute, JobID: "job-1", UserID: "u",
		Payload: messages.ExecutePayload{Action: "DB_QUERY_db_x"}})
	if err != nil || r.Outcome != messages.OutcomeOK || string(r.Body) != `{"result":1}` {
		t.Fatalf("reply %+v, %v", r, err)
	}
}

// A slow handler of late replies must not hold up the replies that
// requests are waiting for: they share one subscription.
func TestLateReplyDoesNotBlockOthers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	lateSeen := make(chan string, 1)
	b.disp.Late = func(jobID string, _ queue.Reply) {
		lateSeen <- jobID
		time.Sleep(3 * time.Second)
	}
	fakeWorker(t, b.nc)
	stray := nats.NewMsg("_INBOX.mcp.node1.stray")
	stray.Header.Set(messages.HeaderJobID, "stray")
	stray.Header.Set(messages.HeaderOutcome, messages.OutcomeOK)
	if err := b.nc.PublishMsg(stray); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-lateSeen:
		if id != "stray" {
			t.Fatalf("late handler got %q", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the late reply never reached the Late handler")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := b.disp.Request(ctx, queue.Job{Kind: messages.KindExecute, JobID: "job-2", UserID: "u",
		Payload: messages.ExecutePayload{Action: "DB_QUERY_db_x"}}); err != nil {
		t.Fatalf("a reply waited behind the late handler: %v", err)
	}
}

// With the broker gone, a request fails at once as unavailable.
func TestRequestFailsFastWhenDisconnected(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.nc.Close()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := b.disp.Request(ctx, queue.Job{Kind: messages.KindExecute, JobID: "job-3", Payload: messages.ExecutePayload{}})
	if !queue.IsUnavailable(err) || time.Since(start) > time.Second {
		t.Fatalf("want a fast ErrUnavailable, got %v after %s", err, time.Since(start))
	}
}
