package queue_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/openanalyst/mcp-integration-service/embedded"
	"github.com/openanalyst/mcp-integration-service/messages"
	"github.com/openanalyst/mcp-integration-service/queue"
)

type bundle struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	disp     *queue.Dispatcher
	late     chan messages.Reply
	slowLate bool
}

func setup(t *testing.T) *bundle {
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
	b := bundle{nc: nc, js: js, late: make(chan messages.Reply, 16)}
	d, err := queue.NewDispatcher(nc, js, "node1", slog.New(slog.NewTextHandler(io.Discard, nil)), func(r messages.Reply) {
		if b.slowLate {
			time.Sleep(3 * time.Second)
		}
		b.late <- r
	})
	if err != nil {
		t.Fatal(err)
	}
	b.disp = d
	return &b
}

func job(t *testing.T, id string) *messages.Job {
	t.Helper()
	j, err := messages.NewJob(messages.KindExecute, id, "u", messages.ExecutePayload{Action: "DB_QUERY_db_x"})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// fakeWorker answers every execute job of either class on its reply inbox,
// with the reply codec: a success, or an error for job ids ending in "-bad".
func fakeWorker(t *testing.T, nc *nats.Conn) {
	t.Helper()
	sub, err := nc.Subscribe("mcp.*.execute", func(m *nats.Msg) {
		id := m.Header.Get(messages.HeaderJobID)
		r := messages.Reply{JobID: id, Body: []byte(`{"success":true,"result":1}`)}
		if strings.HasSuffix(id, "-bad") {
			r = messages.Reply{JobID: id, Err: &messages.Error{Code: "query_failed", Message: "boom"}}
		}
		_ = nc.PublishMsg(r.Encode(m.Header.Get(messages.HeaderReplyTo)))
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
	for _, c := range []messages.Class{messages.Fast, messages.Durable} {
		r, err := b.disp.Request(ctx, c, job(t, "job-1-"+c.String()))
		if err != nil || !r.OK() || string(r.Body) != `{"success":true,"result":1}` || r.JobID != "job-1-"+c.String() {
			t.Fatalf("%s reply %+v, %v", c, r, err)
		}
	}
	r, err := b.disp.Request(ctx, messages.Fast, job(t, "job-1-bad"))
	if err != nil || r.OK() || r.Err.Code != "query_failed" || r.Err.Message != "boom" {
		t.Fatalf("error reply %+v, %v", r, err)
	}
}

// Durable jobs carry their id for JetStream's dedupe; fast ones do not, so
// the fast stream keeps no id per read for the dedupe window.
func TestOnlyDurableJobsCarryDedupeIDs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	seen := make(chan nats.Header, 2)
	sub, err := b.nc.Subscribe("mcp.*.execute", func(m *nats.Msg) {
		seen <- m.Header
		_ = b.nc.PublishMsg(messages.Reply{JobID: m.Header.Get(messages.HeaderJobID), Body: []byte(`{}`)}.
			Encode(m.Header.Get(messages.HeaderReplyTo)))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, c := range []messages.Class{messages.Fast, messages.Durable} {
		id := "dedupe-" + c.String()
		if _, err := b.disp.Request(ctx, c, job(t, id)); err != nil {
			t.Fatal(err)
		}
		h := <-seen
		if h.Get(messages.HeaderJobID) != id {
			t.Fatalf("%s job without its id header: %v", c, h)
		}
		if got, want := h.Get(messages.HeaderMsgID), map[bool]string{true: id}[c == messages.Durable]; got != want {
			t.Fatalf("%s job: Nats-Msg-Id %q, want %q", c, got, want)
		}
	}
}

// A slow handler of late replies must not hold up the replies that
// requests are waiting for: they share one subscription.
func TestLateReplyDoesNotBlockOthers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.slowLate = true
	fakeWorker(t, b.nc)
	stray := messages.Reply{JobID: "stray", Body: []byte(`{}`)}.Encode("_INBOX.mcp.node1.stray")
	if err := b.nc.PublishMsg(stray); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-b.late:
		if r.JobID != "stray" {
			t.Fatalf("late handler got %q", r.JobID)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the late reply never reached the Late handler")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := b.disp.Request(ctx, messages.Fast, job(t, "job-2")); err != nil {
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
	_, err := b.disp.Request(ctx, messages.Fast, job(t, "job-3"))
	if !queue.IsUnavailable(err) || time.Since(start) > time.Second {
		t.Fatalf("want a fast ErrUnavailable, got %v after %s", err, time.Since(start))
	}
}

// A job whose storing JetStream never confirms: a durable one is a 504
// with its id (it may still run: a retry must not run it twice), a fast
// read a 503 to retry (it most likely never reached the stream).
func TestUnconfirmedPublish(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for _, s := range []string{messages.JobStream, messages.FastStream} {
		if err := b.js.DeleteStream(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	// No stream stores the job and this subscriber never acknowledges it.
	sub, err := b.nc.Subscribe("mcp.>", func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	for c, want := range map[messages.Class]error{messages.Fast: queue.ErrUnavailable, messages.Durable: queue.ErrTimeout} {
		rctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		start := time.Now()
		_, err := b.disp.Request(rctx, c, job(t, "unconfirmed-"+c.String()))
		cancel()
		if !errors.Is(err, want) || c == messages.Fast && errors.Is(err, queue.ErrTimeout) {
			t.Errorf("%s: %v, want %v", c, err, want)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("%s: answered after %s", c, took)
		}
	}
}
