package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
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

// JobError is a handler failure. Retry asks for redelivery after Delay (an
// infrastructure fault); otherwise the error is final and goes to the caller.
type JobError struct {
	Status int
	Code   string
	Msg    string
	Retry  bool
	Delay  time.Duration
}

func (e *JobError) Error() string { return e.Msg }

// Fail builds a final error: the caller sees it and the job is never retried.
func Fail(status int, code, msg string) Outcome {
	return Outcome{Err: &JobError{Status: status, Code: code, Msg: msg}}
}

// RetryLater builds an error that redelivers the job after delay, up to the
// consumer's MaxDeliver; after the last try the caller sees it.
func RetryLater(status int, code, msg string, delay time.Duration) Outcome {
	return Outcome{Err: &JobError{Status: status, Code: code, Msg: msg, Retry: true, Delay: delay}}
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
	// Observe records each handled job (metrics). May be nil.
	Observe func(kind messages.Kind, outcome string, d time.Duration, attempt int)
}

// Worker consumes every registered job kind.
type Worker struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	statuses *queue.Statuses
	opts     Options
	log      *slog.Logger
	handlers map[messages.Kind]Handler
	fallback Handler

	inflight sync.WaitGroup
	mu       sync.Mutex
	active   int
	stopping bool // the drain began: no new job starts
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
	return &Worker{nc: nc, js: js, statuses: statuses, opts: o, log: o.Logger, handlers: map[messages.Kind]Handler{}}
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
func (w *Worker) Run(ctx, drainCtx context.Context) error {
	var ccs []jetstream.ConsumeContext
	for kind, h := range w.handlers {
		cons, err := w.js.Consumer(ctx, messages.JobStream, kind.Durable())
		if err != nil {
			for _, cc := range ccs {
				cc.Stop()
			}
			return fmt.Errorf("worker: bind consumer %s: %w", kind.Durable(), err)
		}
		sem := make(chan struct{}, w.opts.Concurrency)
		kind, h := kind, h
		cc, err := cons.Consume(func(m jetstream.Msg) {
			select {
			case sem <- struct{}{}:
			default:
				// Every handler is busy: keep this prefetched job from
				// passing its ack wait (and going to another worker too)
				// while it waits for a slot.
				_ = m.InProgress()
				sem <- struct{}{}
			}
			w.mu.Lock()
			if w.stopping {
				w.mu.Unlock()
				<-sem
				_ = m.Nak() // fetched after the drain began: another worker takes it
				return
			}
			w.inflight.Add(1)
			w.mu.Unlock()
			go func() {
				defer func() { <-sem; w.inflight.Done() }()
				w.handle(drainCtx, kind, h, m)
			}()
		}, jetstream.PullMaxMessages(max(16, 2*w.opts.Concurrency)),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				if !errors.Is(err, jetstream.ErrNoHeartbeat) {
					w.log.Debug("consume", "kind", kind, "err", err)
				}
			}))
		if err != nil {
			for _, c := range ccs {
				c.Stop()
			}
			return fmt.Errorf("worker: consume %s: %w", kind, err)
		}
		ccs = append(ccs, cc)
	}
	<-ctx.Done()
	for _, cc := range ccs {
		cc.Stop()
	}
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

func (w *Worker) handle(ctx context.Context, kind messages.Kind, h Handler, m jetstream.Msg) {
	w.mu.Lock()
	w.active++
	w.mu.Unlock()
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
	ctx = tracing.Extract(ctx, hdr)
	ctx, span := tracing.StartJobSpan(ctx, kind, hdr.Get(messages.HeaderMsgID))
	defer span.End()
	log := w.log.With("kind", kind, "job_id", hdr.Get(messages.HeaderMsgID), "request_id", hdr.Get(messages.HeaderRequestID))

	job, err := messages.DecodeJob(m.Data())
	if err != nil {
		log.Warn("dropping malformed job", "err", err)
		_ = m.TermWithReason("malformed job: " + err.Error())
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
			log.Info("redelivered job already finished; replaying its result", "attempt", attempt)
			r := replyOf(st)
			w.reply(replyTo, deadline, job, r)
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
		log.Warn("dropping expired job", "age", time.Since(job.CreatedAt))
		w.finish(job, queue.Reply{Outcome: messages.OutcomeError, Status: http.StatusGatewayTimeout,
			Body: errorBody("job expired before a worker could run it", "job_expired")}, replyTo, deadline, async, true)
		_ = m.TermWithReason("expired")
		return
	}
	// Async jobs, and sync ones whose caller already gave up (a 504 told it
	// to poll GET /api/jobs/{id}), show that they run.
	late := !deadline.IsZero() && time.Now().After(deadline)
	if w.statuses != nil && kind != messages.KindTest && (async || late) {
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

	if w.opts.Observe != nil {
		outcome := messages.OutcomeOK
		switch {
		case out.Err != nil && out.Err.Retry && attempt < w.opts.MaxDeliver &&
			(async || deadline.IsZero() || time.Until(deadline) > out.Err.Delay+2*time.Second):
			outcome = "retry"
		case out.Err != nil:
			outcome = out.Err.Code
		}
		w.opts.Observe(kind, outcome, time.Since(start), attempt)
	}
	if out.Err != nil && ctx.Err() != nil {
		// Abandoned by a drain (shutdown): the failure is ours, not the
		// job's. Leave it to another worker instead of reporting it.
		log.Info("job abandoned by shutdown; it will be redelivered", "attempt", attempt)
		_ = m.Nak()
		return
	}
	if out.Err != nil && out.Err.Retry && attempt < w.opts.MaxDeliver &&
		(async || deadline.IsZero() || time.Until(deadline) > out.Err.Delay+2*time.Second) {
		log.Info("retrying job later", "attempt", attempt, "err", out.Err.Msg, "delay", out.Err.Delay)
		_ = m.NakWithDelay(out.Err.Delay)
		return
	}
	var r queue.Reply
	if out.Err != nil {
		r = queue.Reply{Outcome: messages.OutcomeError, Status: out.Err.Status, Body: errorBody(out.Err.Msg, out.Err.Code)}
	} else {
		r = queue.Reply{Outcome: messages.OutcomeOK, Body: out.Body}
	}
	log.Debug("job done", "outcome", r.Outcome, "ms", time.Since(start).Milliseconds())
	w.finish(job, r, replyTo, deadline, async, out.SideEffects)
	if out.Err != nil {
		_ = m.TermWithReason(out.Err.Code)
		return
	}
	_ = m.Ack()
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
// A synchronous read whose caller got its answer in time records nothing:
// running it again on a redelivery is harmless, and the status write (an
// fsynced JetStream write) is the largest cost of the hot path. Async jobs,
// jobs whose caller already gave up (it polls GET /api/jobs/{id}), and jobs
// with side effects are recorded.
func (w *Worker) finish(job *messages.Job, r queue.Reply, replyTo string, deadline time.Time, async, record bool) {
	w.reply(replyTo, deadline, job, r)
	late := !deadline.IsZero() && time.Now().After(deadline)
	if w.statuses != nil && job.Kind != messages.KindTest && (async || late || record) {
		w.putTerminal(queue.FromReply(job.JobID, job.UserID, job.Kind, job.CreatedAt, r))
	}
	w.publishResult(job, r, async)
}

// putTerminal stores a terminal status, retrying briefly: the status is what
// GET /api/jobs/{id} and a redelivery rely on.
func (w *Worker) putTerminal(st *queue.Status) {
	var err error
	for i := range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = w.statuses.Put(ctx, st)
		cancel()
		if err == nil {
			return
		}
		time.Sleep(time.Duration(i+1) * 200 * time.Millisecond)
	}
	w.log.Error("job status not stored", "job_id", st.JobID, "status", st.Status, "err", err)
}

// publishResult publishes an execute job's result on its user's result subject.
func (w *Worker) publishResult(job *messages.Job, r queue.Reply, async bool) {
	if job.Kind != messages.KindExecute || job.UserID == "" {
		return
	}
	m := nats.NewMsg(messages.ResultSubject(job.UserID, job.JobID))
	m.Header.Set(messages.HeaderJobID, job.JobID)
	m.Header.Set(messages.HeaderOutcome, r.Outcome)
	if r.Status != 0 {
		m.Header.Set(messages.HeaderStatus, fmt.Sprint(r.Status))
	}
	m.Data = r.Body
	if err := w.nc.PublishMsg(m); err != nil {
		w.log.Warn("result not published", "job_id", job.JobID, "err", err)
		return
	}
	if async && w.statuses != nil {
		_ = w.statuses.MarkPublished(job.JobID)
	}
}

func (w *Worker) reply(replyTo string, deadline time.Time, job *messages.Job, r queue.Reply) {
	if replyTo == "" {
		return
	}
	if !deadline.IsZero() && time.Now().After(deadline.Add(time.Second)) {
		return // the caller is gone; the status record keeps the result
	}
	m := nats.NewMsg(replyTo)
	m.Header.Set(messages.HeaderJobID, job.JobID)
	m.Header.Set(messages.HeaderOutcome, r.Outcome)
	if r.Status != 0 {
		m.Header.Set(messages.HeaderStatus, fmt.Sprint(r.Status))
	}
	m.Data = r.Body
	_ = w.nc.PublishMsg(m)
}

// progress tells JetStream the job is still being worked on, so a long job is
// not redelivered to another worker while it runs.
func (w *Worker) progress(ctx context.Context, m jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	go func() {
		every := w.opts.AckWait / 3
		if every <= 0 {
			every = 10 * time.Second
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				_ = m.InProgress()
			}
		}
	}()
	return func() { close(done) }
}

func (w *Worker) safeHandle(ctx context.Context, h Handler, job *messages.Job, attempt int) (out Outcome) {
	defer func() {
		if p := recover(); p != nil {
			w.log.Error("handler panicked", "kind", job.Kind, "job_id", job.JobID, "panic", fmt.Sprint(p))
			out = Fail(http.StatusInternalServerError, "internal_error", "the worker failed while running this job")
		}
	}()
	return h.Handle(ctx, job, attempt)
}

func replyOf(st *queue.Status) queue.Reply {
	if st.Status == queue.StatusSucceeded {
		return queue.Reply{Outcome: messages.OutcomeOK, Body: st.Result}
	}
	return queue.Reply{Outcome: messages.OutcomeError, Status: st.HTTPStatus, Body: errorBody(st.Error, st.Code)}
}

func errorBody(msg, code string) []byte {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}{msg, code})
	return b
}

// Fallback returns the handler registered for non-database execute jobs.
func (w *Worker) Fallback() (Handler, bool) {
	h, ok := w.fallback, w.fallback != nil
	return h, ok
}

// SetFallback sets the handler of execute jobs whose action is not a
// database tool (the Composio tools).
func (w *Worker) SetFallback(h Handler) { w.fallback = h }
