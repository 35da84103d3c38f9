package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/openanalyst/mcp-integration-service/connectors"
	"github.com/openanalyst/mcp-integration-service/messages"
	"github.com/openanalyst/mcp-integration-service/queue"
	"github.com/openanalyst/mcp-integration-service/storage"
)

// Request is one tool call.
type Request struct {
	UserID  string
	Action  string
	Params  json.RawMessage // a JSON object, passed to the worker undecoded
	MaxRows int
	Async   bool
	// Actor names who calls, for the audit log: "api_key" or "mcp_token:<id>".
	Actor     string
	RequestID string
	Trace     string
}

// Result is a tool call's answer.
type Result struct {
	JobID string
	// Body is the REST success body, {"success":true,"result":…}, encoded
	// once by the worker. Empty for an async call.
	Body []byte
	// Queued is set for an async call: the job is stored, its result goes
	// to ResultSubject and GET /api/jobs/{id}.
	Queued        bool
	ResultSubject string
}

// Execute runs one tool. A synchronous read of a database that does not
// allow writes goes to the fast class; writes, app actions and async calls
// go to the durable class. Errors are *Error.
func (s *Service) Execute(ctx context.Context, req Request) (*Result, error) {
	start := time.Now()
	job, err := messages.NewJob(messages.KindExecute, uuid.NewString(), req.UserID,
		messages.ExecutePayload{Action: req.Action, Params: req.Params, MaxRows: req.MaxRows, Async: req.Async})
	if err != nil {
		return nil, errorf("invalid_request", "the call cannot be encoded")
	}
	job.RequestID, job.Trace = req.RequestID, req.Trace
	res, err := s.execute(ctx, req, job)
	s.audit(req, job.JobID, start, err)
	return res, err
}

func (s *Service) execute(ctx context.Context, req Request, job *messages.Job) (*Result, error) {
	if req.Async {
		if err := s.c.Statuses.Create(ctx, &queue.Status{JobID: job.JobID, UserID: req.UserID, Kind: job.Kind,
			Status: queue.StatusQueued, CreatedAt: job.CreatedAt}); err != nil {
			return nil, errorf(CodeBrokerUnavailable, "the job status store is unavailable")
		}
		ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := s.c.Dispatcher.Enqueue(ectx, job); err != nil {
			return nil, unavailable(err)
		}
		return &Result{JobID: job.JobID, Queued: true, ResultSubject: messages.ResultSubject(req.UserID, job.JobID)}, nil
	}
	rep, err := s.Submit(ctx, s.classOf(ctx, req), job)
	if err != nil {
		return nil, err
	}
	if !rep.OK() {
		return nil, fromReply(rep)
	}
	return &Result{JobID: job.JobID, Body: rep.Body}, nil
}

// classOf picks a synchronous call's class: fast for a database that does
// not allow writes, durable for everything with side effects (writes, app
// actions). An unknown database is fast: the worker answers it is not found.
func (s *Service) classOf(ctx context.Context, req Request) messages.Class {
	_, dbID, ok := connectors.ParseToolName(req.Action)
	if !ok {
		return messages.Durable
	}
	writes, known := s.routes.get(dbID, req.UserID)
	if !known {
		var err error
		writes, err = s.routes.lookup(ctx, s.c.Store, dbID, req.UserID)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			return messages.Fast
		case err != nil:
			return messages.Durable // when in doubt, the safe class
		}
	}
	if writes {
		return messages.Durable
	}
	return messages.Fast
}

// Submit runs a job in class c and waits for its reply, up to the job
// timeout. A timeout is an *Error with the job id, and the job's result is
// kept for GET /api/jobs/{id}.
func (s *Service) Submit(ctx context.Context, c messages.Class, job *messages.Job) (messages.Reply, error) {
	wctx, cancel := context.WithTimeout(ctx, s.c.JobTimeout)
	defer cancel()
	rep, err := s.c.Dispatcher.Request(wctx, c, job)
	switch {
	case errors.Is(err, queue.ErrTimeout):
		if s.c.Statuses != nil {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			_ = s.c.Statuses.Create(sctx, &queue.Status{JobID: job.JobID, UserID: job.UserID,
				Kind: job.Kind, Status: queue.StatusQueued, CreatedAt: job.CreatedAt, Class: c.String()})
			cancel()
		}
		msg := fmt.Sprintf("no worker answered within %s; the job is still queued, fetch its result with GET /api/jobs/%s", s.c.JobTimeout, job.JobID)
		if c == messages.Fast {
			// A read lives in the memory stream: a NATS failure can lose it,
			// and GET /api/jobs/{id} then reports it lost.
			msg = fmt.Sprintf("no worker answered within %s; the read is queued or running, fetch its result with GET /api/jobs/%s (a read lost with a NATS failure is reported lost there; it is safe to run again)", s.c.JobTimeout, job.JobID)
		}
		return rep, &Error{Code: CodeTimeout, JobID: job.JobID, Message: msg}
	case err != nil:
		return rep, unavailable(err)
	}
	return rep, nil
}

func unavailable(err error) *Error {
	return errorf(CodeBrokerUnavailable, "the job queue is unavailable: %s", strings.TrimPrefix(err.Error(), "queue: "))
}

// KeepLate records a reply whose caller already gave up (a 504), so that
// GET /api/jobs/{id} can return it. The dispatcher calls it.
func (s *Service) KeepLate(r messages.Reply) {
	if s.c.Statuses == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The request that gave up writes a "queued" status as it leaves; the
	// late reply may overtake that write, so wait for it briefly.
	for range 10 {
		st, err := s.c.Statuses.Lookup(ctx, r.JobID)
		if err == nil {
			if !st.Terminal() {
				job := &messages.Job{JobID: r.JobID, UserID: st.UserID, Kind: st.Kind, CreatedAt: st.CreatedAt}
				_ = s.c.Statuses.Put(ctx, queue.FromReply(job, r))
			}
			return
		}
		if !errors.Is(err, queue.ErrNoStatus) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// maxTarget bounds an audit entry's target.
const maxTarget = 128

// audit records one execute; never its parameters or results.
func (s *Service) audit(req Request, jobID string, start time.Time, err error) {
	if s.c.Audit == nil || req.UserID == "" {
		return
	}
	target := req.Action
	if len(target) > maxTarget {
		target = target[:maxTarget]
	}
	action, outcome, code := "tool.execute", "ok", ""
	if req.Async {
		action = "tool.execute_async"
	}
	if err != nil {
		outcome, code = "error", CodeOf(err)
	}
	actor := req.Actor
	if actor == "" {
		actor = "api_key"
	}
	s.c.Audit(storage.AuditEntry{UserID: req.UserID, Actor: actor, Action: action, Target: target, Outcome: outcome,
		Code: code, DurationMS: time.Since(start).Milliseconds(), RequestID: req.RequestID, JobID: jobID})
}
