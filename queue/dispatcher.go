package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/openanalyst/mcp-integration-service/messages"
	"github.com/openanalyst/mcp-integration-service/tracing"
)

var (
	// ErrUnavailable: NATS or the job stream cannot take the job now.
	ErrUnavailable = errors.New("queue: message broker unavailable")
	// ErrTimeout: no worker answered before the caller's deadline. The job
	// stays queued and its result lands in the job-status bucket.
	ErrTimeout = errors.New("queue: no worker answered in time")
)

// Dispatcher publishes jobs and hands each reply to the request that waits
// for it. One subscription serves the whole API node: replies are
// demultiplexed by job id, so no request creates a subscription.
type Dispatcher struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	prefix string
	sub    *nats.Subscription
	log    *slog.Logger
	late   func(r messages.Reply)

	mu      sync.Mutex
	waiters map[string]chan messages.Reply
}

// NewDispatcher subscribes once to this node's reply inbox. late receives
// replies that arrive after their caller gave up (or duplicates), so they can
// be kept for GET /api/jobs/{id}; it may be nil.
func NewDispatcher(nc *nats.Conn, js jetstream.JetStream, nodeID string, log *slog.Logger, late func(messages.Reply)) (*Dispatcher, error) {
	d := &Dispatcher{nc: nc, js: js, prefix: "_INBOX.mcp." + nodeID + ".", log: log, late: late,
		waiters: map[string]chan messages.Reply{}}
	sub, err := nc.Subscribe(d.prefix+"*", d.onReply)
	if err != nil {
		return nil, fmt.Errorf("queue: subscribe to replies: %w", err)
	}
	// Replies must never be dropped as a slow consumer under load.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return nil, fmt.Errorf("queue: reply limits: %w", err)
	}
	d.sub = sub
	return d, nil
}

// Close unsubscribes.
func (d *Dispatcher) Close() error { return d.sub.Unsubscribe() }

func (d *Dispatcher) onReply(m *nats.Msg) {
	r := messages.DecodeReply(m)
	d.mu.Lock()
	ch, ok := d.waiters[r.JobID]
	if ok {
		delete(d.waiters, r.JobID)
	}
	d.mu.Unlock()
	if ok {
		ch <- r // buffered: never blocks
		return
	}
	// A duplicate reply (a redelivered job) or one after the caller gave up.
	if d.late != nil {
		// Never on this goroutine: it delivers every reply of the node.
		go d.late(r)
	}
}

func (d *Dispatcher) message(ctx context.Context, c messages.Class, j *messages.Job, deadline time.Time, wait bool) (*nats.Msg, error) {
	body, err := j.Encode()
	if err != nil {
		return nil, err
	}
	m := nats.NewMsg(j.Kind.SubjectOf(c))
	m.Data = body
	m.Header.Set(messages.HeaderJobID, j.JobID)
	if c == messages.Durable {
		// Deduplicated by JetStream: a publish retried after a lost
		// acknowledgement stores the job once. A fast job is published once
		// and never retried, so it carries no id for JetStream to keep for
		// the dedupe window (at 5,000 reads a second, 600,000 ids).
		m.Header.Set(messages.HeaderMsgID, j.JobID)
	}
	m.Header.Set(messages.HeaderVersion, "1")
	if wait {
		m.Header.Set(messages.HeaderReplyTo, d.prefix+j.JobID)
	}
	if !deadline.IsZero() {
		m.Header.Set(messages.HeaderDeadline, deadline.UTC().Format(time.RFC3339Nano))
	}
	if j.RequestID != "" {
		m.Header.Set(messages.HeaderRequestID, j.RequestID)
	}
	tracing.Inject(ctx, m.Header)
	if m.Header.Get(messages.HeaderTrace) == "" && j.Trace != "" {
		m.Header.Set(messages.HeaderTrace, j.Trace) // e.g. the OAuth callback, outside the traced group
	}
	return m, nil
}

func (d *Dispatcher) connected() error {
	if s := d.nc.Status(); s != nats.CONNECTED {
		return fmt.Errorf("%w: connection is %s", ErrUnavailable, s)
	}
	return nil
}

// Request publishes a job in class c and waits for its reply until ctx
// ends. It does not wait for the publish acknowledgement before waiting for
// the reply; a failed publish still ends the wait at once.
func (d *Dispatcher) Request(ctx context.Context, c messages.Class, j *messages.Job) (messages.Reply, error) {
	if err := d.connected(); err != nil {
		return messages.Reply{}, err
	}
	deadline, _ := ctx.Deadline()
	m, err := d.message(ctx, c, j, deadline, true)
	if err != nil {
		return messages.Reply{}, err
	}
	ch := make(chan messages.Reply, 1)
	d.mu.Lock()
	d.waiters[j.JobID] = ch
	d.mu.Unlock()
	forget := func() {
		d.mu.Lock()
		delete(d.waiters, j.JobID)
		d.mu.Unlock()
	}
	var opts []jetstream.PublishOpt
	if c == messages.Durable {
		opts = append(opts, jetstream.WithMsgID(j.JobID))
	}
	fut, err := d.js.PublishMsgAsync(m, opts...)
	if err != nil {
		forget()
		return messages.Reply{}, fmt.Errorf("%w: publish: %w", ErrUnavailable, err)
	}
	select {
	case r := <-ch:
		return r, nil
	case err := <-fut.Err():
		// Only an error arrives here; a successful ack keeps us waiting.
		forget()
		return messages.Reply{}, fmt.Errorf("%w: publish: %w", ErrUnavailable, err)
	case <-ctx.Done():
	}
	select {
	case r := <-ch: // the reply raced the deadline
		return r, nil
	default:
	}
	forget()
	// Was the job stored? A late acknowledgement is the usual case when
	// JetStream is slow. A durable job in doubt is answered with its id
	// (504), never "nothing was queued", so a retry does not run it twice.
	// A fast job is a read, harmless to run twice: one whose storing was
	// never confirmed is a 503 to retry, not a 504 promising a result that
	// may never come (the job was most likely lost with a stream leader).
	select {
	case <-fut.Ok():
		return messages.Reply{}, ErrTimeout
	case err := <-fut.Err():
		return messages.Reply{}, fmt.Errorf("%w: publish: %w", ErrUnavailable, err)
	case <-time.After(time.Second):
		if c == messages.Fast {
			return messages.Reply{}, fmt.Errorf("%w: it did not confirm the read before the deadline; retry it", ErrUnavailable)
		}
		return messages.Reply{}, ErrTimeout
	}
}

// Enqueue publishes a durable job without waiting for a reply, returning
// once JetStream has stored it.
func (d *Dispatcher) Enqueue(ctx context.Context, j *messages.Job) error {
	if err := d.connected(); err != nil {
		return err
	}
	m, err := d.message(ctx, messages.Durable, j, time.Time{}, false)
	if err != nil {
		return err
	}
	if _, err := d.js.PublishMsg(ctx, m, jetstream.WithMsgID(j.JobID)); err != nil {
		return fmt.Errorf("%w: publish: %w", ErrUnavailable, err)
	}
	return nil
}
