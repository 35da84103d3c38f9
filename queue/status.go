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
	Class      string          `json:"class,omitempty"` // "fast" for a synchronous read
	CreatedAt  time.Time       `json:"created_at"`
	FinishedAt *time.Time      `json:"finished_at,omitempty"`
}

// Lost reports whether a job recorded as queued can no longer finish: a fast
// job older than the fast stream's MaxAge is neither in the stream nor
// running (a late run records its end), so its answer was lost, e.g. a reply
// to an API node cut off from NATS. Replaying a read is harmless: retry it.
func (s *Status) Lost(now time.Time) bool {
	return s.Status == StatusQueued && s.Class == messages.Fast.String() &&
		now.Sub(s.CreatedAt) > DefaultSettings().FastMaxAge+time.Minute
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

// Put stores a status and waits for JetStream to acknowledge it. It never
// replaces a terminal status: the first end of a job wins, so a late or
// repeated writer (an API node recording "queued" after a 504, a late reply,
// a redelivered job) cannot undo or repeat it. Check and write are one
// compare-and-set on the key's revision.
func (s *Statuses) Put(ctx context.Context, st *Status) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	for range 10 {
		e, err := s.kv.Get(ctx, st.JobID)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			_, err = s.kv.Create(ctx, st.JobID, b)
		case err != nil:
			return err
		default:
			var old Status
			if json.Unmarshal(e.Value(), &old) == nil && old.Terminal() {
				return nil
			}
			_, err = s.kv.Update(ctx, st.JobID, b, e.Revision())
		}
		if err == nil || !isConflict(err) {
			return err
		}
		// Another writer got in between: read again.
	}
	return fmt.Errorf("queue: job status of %s keeps changing", st.JobID)
}

// Create stores a status only if the job has none yet (one round trip). Use
// it for a first "queued": it never moves a job's status backwards.
func (s *Statuses) Create(ctx context.Context, st *Status) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if _, err := s.kv.Create(ctx, st.JobID, b); err != nil && !isConflict(err) {
		return err
	}
	return nil
}

func isConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

// publishedKey marks that a job's result went out on its result subject.
func publishedKey(jobID string) string { return jobID + ".published" }

// MarkPublished records, without waiting, that a job's result was published
// on its result subject, so a redelivery of the job does not publish it again.
func (s *Statuses) MarkPublished(jobID string) error {
	_, err := s.js.PublishAsync("$KV."+messages.JobStatusBucket+"."+publishedKey(jobID), []byte("1"))
	return err
}

// Published reports whether MarkPublished was recorded for a job.
func (s *Statuses) Published(ctx context.Context, jobID string) (bool, error) {
	_, err := s.kv.Get(ctx, publishedKey(jobID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// PutAsync stores a status without waiting for the acknowledgement. Unlike
// Put it does not check what is stored: use it only for a job's own progress
// ("running") from the worker that holds it.
func (s *Statuses) PutAsync(st *Status) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	_, err = s.js.PublishAsync("$KV."+messages.JobStatusBucket+"."+st.JobID, b)
	return err
}

// FromReply builds a terminal status from a job and its reply.
func FromReply(job *messages.Job, r messages.Reply) *Status {
	now := time.Now().UTC()
	st := &Status{JobID: job.JobID, UserID: job.UserID, Kind: job.Kind, CreatedAt: job.CreatedAt, FinishedAt: &now}
	if r.OK() {
		st.Status = StatusSucceeded
		st.Result = append(json.RawMessage(nil), r.Body...)
		return st
	}
	st.Status = StatusFailed
	st.Error, st.Code = r.Err.Message, r.Err.Code
	return st
}

// Reply is the reply a terminal status stands for, to answer a redelivered
// job from its record.
func (s *Status) Reply() messages.Reply {
	if s.Status == StatusSucceeded {
		return messages.Reply{JobID: s.JobID, Body: s.Result}
	}
	return messages.Reply{JobID: s.JobID, Err: &messages.Error{Code: s.Code, Message: s.Error}}
}
