package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/openanalyst/mcp-integration-service/messages"
)

// Job statuses, as GET /api/jobs/{id} reports them.
const (
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
)

// ErrNoStatus: no status is recorded for the job (unknown, expired, or
// another user's).
var ErrNoStatus = errors.New("queue: no such job")

// Status is a job's record in the job-status bucket.
type Status struct {
	JobID      string          `json:"job_id"`
	UserID     string          `json:"user_id"`
	Kind       messages.Kind   `json:"kind"`
	Status     string          `json:"status"`
	Result     json.RawMessage `json:"result,omitempty"` // the reply body: {"result":…,"row_count":…}
	Error      string          `json:"error,omitempty"`
	Code       string          `json:"code,omitempty"`
	HTTPStatus int             `json:"http_status,omitempty"`
	CreatedAt  time.Time       `json:"created_at"`
	FinishedAt *time.Time      `json:"finished_at,omitempty"`
}

// Terminal reports whether the job has finished.
func (s *Status) Terminal() bool { return s.Status == StatusSucceeded || s.Status == StatusFailed }

// Statuses reads and writes job statuses.
type Statuses struct {
	js jetstream.JetStream
	kv jetstream.KeyValue
}

// OpenStatuses binds the job-status bucket, which Setup created.
func OpenStatuses(ctx context.Context, js jetstream.JetStream) (*Statuses, error) {
	kv, err := js.KeyValue(ctx, messages.JobStatusBucket)
	if err != nil {
		return nil, fmt.Errorf("queue: bind %s: %w", messages.JobStatusBucket, err)
	}
	return &Statuses{js: js, kv: kv}, nil
}

// Get returns the status of a job of a user. Another user's job is
// ErrNoStatus, exactly like a missing one.
func (s *Statuses) Get(ctx context.Context, userID, jobID string) (*Status, error) {
	e, err := s.kv.Get(ctx, jobID)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
		return nil, ErrNoStatus
	}
	if err != nil {
		return nil, fmt.Errorf("%w: job status: %w", ErrUnavailable, err)
	}
	var st Status
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return nil, fmt.Errorf("queue: job status of %s is corrupt: %w", jobID, err)
	}
	if st.UserID != userID {
		return nil, ErrNoStatus
	}
	return &st, nil
}

// Lookup returns a job's status whoever owns it (for workers).
func (s *Statuses) Lookup(ctx context.Context, jobID string) (*Status, error) {
	e, err := s.kv.Get(ctx, jobID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ErrNoStatus
	}
	if err != nil {
		return nil, err
	}
	var st Status
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Put stores a status and waits for JetStream to acknowledge it. A terminal
// status is never overwritten by a non-terminal one.
func (s *Statuses) Put(ctx context.Context, st *Status) error {
	if !st.Terminal() {
		if old, err := s.Lookup(ctx, st.JobID); err == nil && old.Terminal() {
			return nil
		}
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	_, err = s.kv.Put(ctx, st.JobID, b)
	return err
}

// PutAsync stores a status without waiting for the acknowledgement.
func (s *Statuses) PutAsync(st *Status) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	_, err = s.js.PublishAsync("$KV."+messages.JobStatusBucket+"."+st.JobID, b)
	return err
}

// FromReply builds a terminal status from a reply.
func FromReply(jobID, userID string, kind messages.Kind, created time.Time, r Reply) *Status {
	now := time.Now().UTC()
	st := &Status{JobID: jobID, UserID: userID, Kind: kind, CreatedAt: created, FinishedAt: &now}
	if r.Outcome == messages.OutcomeOK {
		st.Status = StatusSucceeded
		st.Result = append(json.RawMessage(nil), r.Body...)
		return st
	}
	st.Status = StatusFailed
	st.HTTPStatus = r.Status
	var eb messages.ErrorBody
	if json.Unmarshal(r.Body, &eb) == nil {
		st.Error, st.Code = eb.Error, eb.Code
	}
	return st
}
