package worker

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
	"github.com/openanalyst/mcp-integration-service/queue"
	"github.com/openanalyst/mcp-integration-service/tracing"
)

// Outcome is what a handler produced: a JSON object body on success, or an
// error.
type Outcome struct {
	Body []byte    // JSON object without "success", e.g. {"result":[…]}
	Err  *JobError // set on failure
	// SideEffects marks a job that changed something outside (a write query,
	// a Composio action): its status is recorded even when its caller got
	// the reply, so that a redelivery replays it instead of doing it again.
	SideEffects bool
}

// JobError is a handler failure: a stable code and a message for the caller.
// Retry asks for redelivery after Delay (an infrastructure fault); otherwise
// the error is final and goes to the caller. No HTTP status: the API maps
// the code at the edge.
type JobError struct {
	Code  string
	Msg   string
	Retry bool
	Delay time.Duration
}

func (e *JobError) Error() string { return e.Msg }

// Fail builds a final error ("never retry"): the caller sees it at once.
func Fail(code, msg string) Outcome {
	return Outcome{Err: &JobError{Code: code, Msg: msg}}
}

// RetryLater builds an error that redelivers the job after delay, up to the
// consumer's MaxDeliver; after the last try the caller sees it.
func RetryLater(code, msg string, delay time.Duration) Outcome {
	return Outcome{Err: &JobError{Code: code, Msg: msg, Retry: true, Delay: delay}}
}

// reply is the outcome as it travels on the bus.
func (o Outcome) reply(jobID string) messages.Reply {
	if o.Err != nil {
		return messages.Reply{JobID: jobID, Err: &messages.Error{Code: o.Err.Code, Message: o.Err.Msg}}
	}
	return messages.Reply{JobID: jobID, Body: o.Body}
}

// Action is what the worker does with a delivered job once its handler ran.
type Action int

// Actions on a job message.
const (
	Ack     Action = iota // done: answered and recorded
	Term                  // failed for good: answered, never redelivered
	Retry                 // an infrastructure fault: redeliver after a delay
	Requeue               // abandoned by a shutdown: redeliver to another worker now
)

// Decision is the worker's choice for one run of a job.
type Decision struct {
	Action Action
	Delay  time.Duration // for Retry
	// Answer is whether the callers are answered (reply, status, result
	// subject) now; a Retry or Requeue answers later.
	Answer bool
}

// retryMargin is the time a waiting caller must still have, beyond the
// retry delay, for a retry to be worth it.
const retryMargin = 2 * time.Second

// Decide is the worker's decision as a pure function of the outcome, the
// attempt (1-based), the consumer's MaxDeliver, whether the job is async
// (nobody waits), the waiting caller's deadline (zero: none), the time now
// and whether the worker is draining (shutting down).
func Decide(out Outcome, attempt, maxDeliver int, async bool, deadline, now time.Time, draining bool) Decision {
	switch {
	case out.Err == nil:
		return Decision{Action: Ack, Answer: true}
	case draining:
		// The failure is ours, not the job's: another worker takes it.
		return Decision{Action: Requeue}
	case out.Err.Retry && attempt < maxDeliver &&
		(async || deadline.IsZero() || deadline.Sub(now) > out.Err.Delay+retryMargin):
		return Decision{Action: Retry, Delay: out.Err.Delay}
	default:
		return Decision{Action: Term, Answer: true}
	}
}

// Handler runs one kind of job. It must be idempotent per job id: a crash
// between reply and ack delivers the job again.
type Handler interface {
	Handle(ctx context.Context, job *messages.Job, attempt int) Outcome
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, job *messages.Job, attempt int) Outcome

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, job *messages.Job, attempt int) Outcome {
	return f(ctx, job, attempt)
}

// Options configure a Worker.
type Options struct {
	Concurrency int           // handlers running at once, per kind
	JobTimeout  time.Duration // upper bound of one handler run
	MaxDeliver  int           // the consumers' MaxDeliver, to know the last try
	MaxAge      time.Duration // a job older than this is dropped and recorded as expired
	Logger      *slog.Logger
	// AckWait is the consumers' AckWait: running jobs report progress at a
	// third of it, so only a silent worker's jobs are redelivered.
	AckWait time.Duration
	// PerDatabase bounds the handlers one database may hold at once (its
	// pool size); jobs beyond wait without a handler slot. 0: no bound.
	PerDatabase int
	// Share, when set, bounds them further to the worker's share of the
	// fleet-wide connection budget (budget.Budget.Share): a handler beyond
	// it would wait for a connection its pool may not open.
	Share func() int
	// Observe records each handled job (metrics). May be nil.
	Observe func(kind messages.Kind, outcome string, d time.Duration, attempt int)
	// Load counts the jobs running (procs.Load). May be nil.
	Load Load
}

// Load counts what runs now.
type Load interface {
	Begin()
	End()
}

// Worker consumes every registered job kind.
type Worker struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	statuses *queue.Statuses
	opts     Options
	log      *slog.Logger
	handlers map[messages.Kind]Handler

	inflight sync.WaitGroup
	mu       sync.Mutex
	active   int
	stopping bool            // the drain began: no new job starts
	lost     []chan struct{} // one per consumption: signal to bind again
	gates    gates
	parked   chan struct{} // jobs waiting at a gate without a handler
	spawn    *spawner
}

// New returns a worker with no handlers.
func New(nc *nats.Conn, js jetstream.JetStream, statuses *queue.Statuses, o Options) *Worker {
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.JobTimeout <= 0 {
		o.JobTimeout = 60 * time.Second
	}
	if o.MaxDeliver <= 0 {
		o.MaxDeliver = queue.DefaultSettings().MaxDeliver
	}
	if o.MaxAge <= 0 {
		o.MaxAge = time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	w := &Worker{nc: nc, js: js, statuses: statuses, opts: o, log: o.Logger, handlers: map[messages.Kind]Handler{}}
	w.gates.perDB, w.gates.share = o.PerDatabase, o.Share
	w.parked = make(chan struct{}, o.Concurrency)
	w.spawn = newSpawner()
	return w
}

// Register sets the handler of a job kind.
func (w *Worker) Register(kind messages.Kind, h Handler) { w.handlers[kind] = h }

// InFlight reports the jobs being handled now.
func (w *Worker) InFlight() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.active
}

// Run consumes until ctx is cancelled, then stops fetching and waits for the
// jobs in flight to finish (drain). Cancel drainCtx to abandon them at once:
// they are redelivered to another worker.
//
// Each registered kind is consumed from the durable stream and, for the kinds
// that can be fast (messages.FastKinds), from the fast stream too, with one
// handler semaphore per kind shared by both: as many concurrent handlers as
// the pool has connections.
func (w *Worker) Run(ctx, drainCtx context.Context) error {
	defer w.spawn.stop()
	var loops sync.WaitGroup
	for kind, h := range w.handlers {
		sem := make(chan struct{}, w.opts.Concurrency)
		for _, c := range classesOf(kind) {
			lost := make(chan struct{}, 1)
			w.mu.Lock()
			w.lost = append(w.lost, lost)
			w.mu.Unlock()
			cc, err := w.consume(ctx, drainCtx, kind, c, h, sem, lost)
			if err != nil {
				return err
			}
			loops.Add(1)
			go func() {
				defer loops.Done()
				w.keepConsuming(ctx, drainCtx, cc, kind, c, h, sem, lost)
			}()
		}
	}
	<-ctx.Done()
	loops.Wait() // every consumer stopped fetching
	w.mu.Lock()
	w.stopping = true
	w.mu.Unlock()
	done := make(chan struct{})
	go func() { w.inflight.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-drainCtx.Done():
		return errors.New("worker: drain abandoned; unfinished jobs will be redelivered")
	}
}

// Rebind makes every consumption bind its consumer again, e.g. after a
// reconnect to a NATS server that had to create the streams anew: a pull
// subscription to a consumer that was recreated under it may stay silent.
func (w *Worker) Rebind() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range w.lost {
		select {
		case l <- struct{}{}:
		default:
		}
	}
}

// consumerCheck is how often a worker checks that its consumers still exist.
const consumerCheck = 5 * time.Second

// keepConsuming holds one consumption until ctx ends. When its consumer is
// lost (deleted, or a restarted NATS lost the memory stream of fast jobs) it
// binds it again, once a second, until the consumer is back.
func (w *Worker) keepConsuming(ctx, drainCtx context.Context, cc jetstream.ConsumeContext, kind messages.Kind, c messages.Class,
	h Handler, sem chan struct{}, lost chan struct{}) {
	check := time.NewTicker(consumerCheck)
	defer check.Stop()
	for {
		select {
		case <-ctx.Done():
			cc.Stop()
			return
		case <-lost:
		case <-cc.Closed(): // ended on its own (e.g. the server shut down)
		case <-check.C:
			// A consumer lost with its stream may report nothing: ask.
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := w.js.Consumer(cctx, c.Stream(), kind.ConsumerOf(c))
			cancel()
			if !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
				continue
			}
		}
		cc.Stop()
		w.log.Info("consumer lost; binding it again", "kind", kind, "class", c.String())
		for {
			var err error
			if cc, err = w.consume(ctx, drainCtx, kind, c, h, sem, lost); err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}

// classesOf lists the classes a kind is consumed in.
func classesOf(kind messages.Kind) []messages.Class {
	for _, k := range messages.FastKinds {
		if k == kind {
			return []messages.Class{messages.Durable, messages.Fast}
		}
	}
	return []messages.Class{messages.Durable}
}

func (w *Worker) consume(ctx, drainCtx context.Context, kind messages.Kind, c messages.Class, h Handler,
	sem chan struct{}, lost chan<- struct{}) (jetstream.ConsumeContext, error) {
	parked := w.parked
	cons, err := w.js.Consumer(ctx, c.Stream(), kind.ConsumerOf(c))
	if err != nil {
		return nil, fmt.Errorf("worker: bind consumer %s: %w", kind.ConsumerOf(c), err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		job, derr := messages.DecodeJob(m.Data())
		g := w.gateOf(job)
		if g != nil && !g.tryEnter() {
			// This database already has all the handlers it can use here:
			// its job waits without a handler slot, so that it never holds
			// up the jobs of other databases. At most as many jobs wait so
			// as there are handlers; beyond that the consumer itself waits.
			select {
			case parked <- struct{}{}:
			default:
				_ = m.InProgress()
				parked <- struct{}{}
			}
			if !w.begin() {
				<-parked
				_ = m.Nak() // fetched after the drain began: another worker takes it
				return
			}
			g.park()
			w.spawn.run(func() {
				defer w.inflight.Done()
				entered := g.wait(ctx, m, w.opts.AckWait/3)
				g.unpark()
				<-parked
				if !entered {
					_ = m.Nak()
					return
				}
				defer g.leave()
				sem <- struct{}{}
				defer func() { <-sem }()
				w.handle(drainCtx, kind, h, m, job, derr)
			})
			return
		}
		select {
		case sem <- struct{}{}:
		default:
			// Every handler is busy: keep this prefetched job from passing
			// its ack wait (and going to another worker too) while it waits.
			_ = m.InProgress()
			sem <- struct{}{}
		}
		if !w.begin() {
			<-sem
			if g != nil {
				g.leave()
			}
			_ = m.Nak() // fetched after the drain began: another worker takes it
			return
		}
		w.spawn.run(func() {
			defer func() { <-sem; w.inflight.Done() }()
			if g != nil {
				defer g.leave()
			}
			w.handle(drainCtx, kind, h, m, job, derr)
		})
	}, jetstream.PullMaxMessages(max(16, 2*w.opts.Concurrency)),
		jetstream.PullExpiry(pullExpiry), jetstream.PullHeartbeat(pullHeartbeat),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			// A missed heartbeat is handled by the pull consumer itself (it
			// asks again); only a consumer that is gone needs binding again.
			if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
				select {
				case lost <- struct{}{}:
				default:
				}
				return
			}
			if errors.Is(err, jetstream.ErrNoHeartbeat) {
				// The pull request was lost (the consumer had jobs and no
				// request to give them to): nats.go has asked again.
				w.log.Info("consumer missed its heartbeats; pulling again", "kind", kind, "class", c.String())
				return
			}
			w.log.Debug("consume", "kind", kind, "class", c.String(), "err", err)
		}))
	if err != nil {
		return nil, fmt.Errorf("worker: consume %s: %w", kind.ConsumerOf(c), err)
	}
	return cc, nil
}

// A pull request lives pullExpiry and, while it waits, the server sends a
// heartbeat every pullHeartbeat. nats.go asks again when two heartbeats in
// a row are missed: a pull request lost on its way leaves jobs waiting for
// 2 s, not for nats.go's default 30 s (the whole deadline of a synchronous
// caller, who got a 504 while its job sat in the stream). Idle, this costs
// a pull every 5 s and a heartbeat a second per consumer.
const (
	pullExpiry    = 5 * time.Second
	pullHeartbeat = time.Second
)

// begin counts a job in flight, unless the drain began.
func (w *Worker) begin() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopping {
		return false
	}
	w.inflight.Add(1)
	return true
}

func (w *Worker) handle(ctx context.Context, kind messages.Kind, h Handler, m jetstream.Msg, job *messages.Job, derr error) {
	w.mu.Lock()
	w.active++
	w.mu.Unlock()
	if w.opts.Load != nil {
		w.opts.Load.Begin()
		defer w.opts.Load.End()
	}
	defer func() {
		w.mu.Lock()
		w.active--
		w.mu.Unlock()
	}()
	attempt := 1
	if md, err := m.Metadata(); err == nil {
		attempt = int(md.NumDelivered)
	}
	hdr := m.Headers()
	jobID := hdr.Get(messages.HeaderJobID)
	if jobID == "" {
		jobID = hdr.Get(messages.HeaderMsgID) // an API node of the previous version
	}
	ctx = tracing.Extract(ctx, hdr)
	ctx, span := tracing.StartJobSpan(ctx, kind, jobID)
	defer span.End()
	log := &jobLog{base: w.log, args: []any{"kind", kind, "job_id", jobID, "request_id", hdr.Get(messages.HeaderRequestID)}}

	if derr != nil {
		log.get().Warn("dropping malformed job", "err", derr)
		_ = m.TermWithReason("malformed job: " + derr.Error())
		return
	}
	replyTo := hdr.Get(messages.HeaderReplyTo)
	deadline, _ := time.Parse(time.RFC3339Nano, hdr.Get(messages.HeaderDeadline))
	async := replyTo == ""

	// A redelivered job that already finished is answered from its record,
	// not run again. Its result subject gets the result only if the worker
	// that finished it died before publishing it.
	if attempt > 1 && w.statuses != nil {
		if st, err := w.statuses.Lookup(ctx, job.JobID); err == nil && st.Terminal() {
			log.get().Info("redelivered job already finished; replaying its result", "attempt", attempt)
			r := st.Reply()
			w.reply(replyTo, deadline, r)
			if async {
				if done, err := w.statuses.Published(ctx, job.JobID); err != nil || !done {
					w.publishResult(job, r, async)
				}
			}
			_ = m.Ack()
			return
		}
	}
	if time.Since(job.CreatedAt) > w.opts.MaxAge {
		log.get().Warn("dropping expired job", "age", time.Since(job.CreatedAt))
		w.finish(job, Fail("job_expired", "job expired before a worker could run it"), replyTo, deadline, async, true)
		_ = m.TermWithReason("expired")
		return
	}
	// Async jobs, and sync ones whose caller already gave up (a 504 told it
	// to poll GET /api/jobs/{id}), show that they run.
	late := !deadline.IsZero() && time.Now().After(deadline)
	if w.statuses != nil && (async || late) {
		_ = w.statuses.PutAsync(&queue.Status{JobID: job.JobID, UserID: job.UserID, Kind: kind,
			Status: queue.StatusRunning, CreatedAt: job.CreatedAt})
	}

	hctx, cancel := context.WithTimeout(ctx, w.opts.JobTimeout)
	// Progress reports go on until the job is acked, termed or naked:
	// finishing (the status write) can take a while too.
	stopProgress := w.progress(ctx, m)
	defer stopProgress()
	start := time.Now()
	out := w.safeHandle(hctx, h, job, attempt)
	cancel()

	d := Decide(out, attempt, w.opts.MaxDeliver, async, deadline, time.Now(), ctx.Err() != nil)
	if w.opts.Observe != nil {
		outcome := messages.OutcomeOK
		switch {
		case d.Action == Retry:
			outcome = "retry"
		case out.Err != nil:
			outcome = out.Err.Code
		}
		w.opts.Observe(kind, outcome, time.Since(start), attempt)
	}
	switch d.Action {
	case Requeue:
		log.get().Info("job abandoned by shutdown; it will be redelivered", "attempt", attempt)
		_ = m.Nak()
		return
	case Retry:
		log.get().Info("retrying job later", "attempt", attempt, "err", out.Err.Msg, "delay", d.Delay)
		_ = m.NakWithDelay(d.Delay)
		return
	}
	if w.log.Enabled(ctx, slog.LevelDebug) {
		log.get().Debug("job done", "ok", out.Err == nil, "ms", time.Since(start).Milliseconds())
	}
	if !w.finish(job, out, replyTo, deadline, async, out.SideEffects) && attempt < w.opts.MaxDeliver {
		// Its end is not recorded: acking would leave the job "queued" or
		// "running" for good. Another delivery records it (running the job
		// again: handlers are idempotent per job id). The last delivery
		// allowed is acked all the same: a Nak would not bring it back.
		log.get().Warn("job status not stored; the job will be delivered again", "attempt", attempt)
		_ = m.NakWithDelay(statusRetryDelay)
		return
	}
	if d.Action == Term {
		_ = m.TermWithReason(out.Err.Code)
		return
	}
	_ = m.Ack()
}

// jobLog is a job's logger, built on its first line: most jobs log none,
// and slog's With formats its attributes at once.
type jobLog struct {
	base *slog.Logger
	args []any
	l    *slog.Logger
}

func (j *jobLog) get() *slog.Logger {
	if j.l == nil {
		j.l = j.base.With(j.args...)
	}
	return j.l
}

// finish ends a job as its callers see it, in an order that makes the end
// happen once even if this worker dies half-way (the job is acked only
// afterwards, so a redelivery picks up where it stopped):
//  1. the waiting caller's reply (a repeat is harmless: the dispatcher keeps
//     the first and only records later ones);
//  2. the terminal status, durably, never over an earlier one (Put is a
//     compare-and-set), so a redelivery replays it instead of running again;
//  3. the result on the result subject, then, for async jobs, a marker that
//     it went out, so a redelivery publishes it only if it did not.
//
// A synchronous job whose caller got its answer in time records nothing:
// running a read again on a redelivery is harmless, and the status write is
// the largest cost of the hot path. Async jobs, jobs whose caller already
// gave up (it polls GET /api/jobs/{id}), and jobs with side effects are
// recorded.
//
// It reports false when the status had to be recorded and could not be.
func (w *Worker) finish(job *messages.Job, out Outcome, replyTo string, deadline time.Time, async, record bool) bool {
	r := w.fit(out.reply(job.JobID))
	w.reply(replyTo, deadline, r)
	// A reply that leaves within replyGrace of the deadline may reach the
	// API node after its request gave up: record those too.
	late := !deadline.IsZero() && time.Now().After(deadline.Add(-replyGrace))
	if w.statuses != nil && (async || late || record) {
		if err := w.putTerminal(queue.FromReply(job, r)); err != nil {
			return false
		}
	}
	w.publishResult(job, r, async)
	return true
}

// replyGrace is how close to its caller's deadline a synchronous job's
// reply is still sent, and from how close its status is recorded.
const replyGrace = time.Second

// statusRetryDelay is the redelivery delay of a job whose status could not
// be written (a NATS leader election): the job is not acked, and the next
// delivery records it. The write is retried only briefly before that, as
// the job holds its handler and its database's gate meanwhile.
const statusRetryDelay = 5 * time.Second

// replyOverhead is room for the headers of a reply on the bus.
const replyOverhead = 4 << 10

// fit replaces a reply too large for the bus with a clear error, so that the
// caller gets an answer at once instead of waiting for its deadline.
// Connectors cap their results well below the limit; this is the last guard.
func (w *Worker) fit(r messages.Reply) messages.Reply {
	if r.Err == nil && int64(len(r.Body)+replyOverhead) > w.nc.MaxPayload() {
		return messages.Reply{JobID: r.JobID, Err: &messages.Error{Code: "result_too_large",
			Message: fmt.Sprintf("the result (%d bytes) is larger than the message bus allows (%d bytes); ask for fewer rows", len(r.Body), w.nc.MaxPayload())}}
	}
	return r
}

// putTerminal stores a terminal status, retrying briefly: the status is what
// GET /api/jobs/{id} and a redelivery rely on.
func (w *Worker) putTerminal(st *queue.Status) error {
	var err error
	for i := range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = w.statuses.Put(ctx, st)
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(time.Duration(i+1) * 200 * time.Millisecond)
	}
	w.log.Error("job status not stored", "job_id", st.JobID, "status", st.Status, "err", err)
	return err
}

// publishResult publishes an execute job's result on its user's result subject.
func (w *Worker) publishResult(job *messages.Job, r messages.Reply, async bool) {
	if job.Kind != messages.KindExecute || job.UserID == "" {
		return
	}
	if err := w.nc.PublishMsg(r.Encode(messages.ResultSubject(job.UserID, job.JobID))); err != nil {
		w.log.Warn("result not published", "job_id", job.JobID, "err", err)
		return
	}
	if async && w.statuses != nil {
		_ = w.statuses.MarkPublished(job.JobID)
	}
}

func (w *Worker) reply(replyTo string, deadline time.Time, r messages.Reply) {
	if replyTo == "" {
		return
	}
	if !deadline.IsZero() && time.Now().After(deadline.Add(replyGrace)) {
		return // the caller is gone; the status record keeps the result
	}
	if err := w.nc.PublishMsg(r.Encode(replyTo)); err != nil {
		w.log.Warn("reply not sent", "job_id", r.JobID, "err", err)
	}
}

// progress tells JetStream the job is still being worked on, so a long job is
// not redelivered to another worker while it runs. A timer, not a goroutine:
// the usual job ends long before the first report, and stopping a timer
// wakes nobody.
func (w *Worker) progress(ctx context.Context, m jetstream.Msg) (stop func()) {
	every := w.opts.AckWait / 3
	if every <= 0 {
		every = 10 * time.Second
	}
	var mu sync.Mutex // guards t and stopped, for the timer's own goroutine too
	stopped := false
	var t *time.Timer
	mu.Lock()
	t = time.AfterFunc(every, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped || ctx.Err() != nil {
			return
		}
		_ = m.InProgress()
		t.Reset(every)
	})
	mu.Unlock()
	return func() {
		mu.Lock()
		stopped = true
		mu.Unlock()
		t.Stop()
	}
}

func (w *Worker) safeHandle(ctx context.Context, h Handler, job *messages.Job, attempt int) (out Outcome) {
	defer func() {
		if p := recover(); p != nil {
			w.log.Error("handler panicked", "kind", job.Kind, "job_id", job.JobID, "panic", fmt.Sprint(p))
			out = Fail("internal_error", "the worker failed while running this job")
		}
	}()
	return h.Handle(ctx, job, attempt)
}
