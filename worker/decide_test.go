package worker

import (
	"testing"
	"time"
)

// The worker's decision as a table: every combination that matters.
func TestDecide(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	ok := Outcome{Body: []byte(`{"success":true}`)}
	final := Fail("query_failed", "syntax error")
	retry := RetryLater("database_unavailable", "refused", time.Second)
	for _, c := range []struct {
		name     string
		out      Outcome
		attempt  int
		async    bool
		deadline time.Time
		draining bool
		want     Decision
	}{
		{"success", ok, 1, false, now.Add(time.Minute), false, Decision{Action: Ack, Answer: true}},
		{"success while draining", ok, 1, false, time.Time{}, true, Decision{Action: Ack, Answer: true}},
		{"final error", final, 1, false, now.Add(time.Minute), false, Decision{Action: Term, Answer: true}},
		{"final error, async", final, 1, true, time.Time{}, false, Decision{Action: Term, Answer: true}},
		{"retryable, caller has time", retry, 1, false, now.Add(time.Minute), false, Decision{Action: Retry, Delay: time.Second}},
		{"retryable, async", retry, 4, true, time.Time{}, false, Decision{Action: Retry, Delay: time.Second}},
		{"retryable, no deadline", retry, 1, false, time.Time{}, false, Decision{Action: Retry, Delay: time.Second}},
		{"retryable, caller about to give up", retry, 1, false, now.Add(2 * time.Second), false, Decision{Action: Term, Answer: true}},
		{"retryable, caller gone", retry, 1, false, now.Add(-time.Second), false, Decision{Action: Term, Answer: true}},
		{"retryable, last delivery", retry, 5, true, time.Time{}, false, Decision{Action: Term, Answer: true}},
		{"retryable, past the last delivery", retry, 6, true, time.Time{}, false, Decision{Action: Term, Answer: true}},
		{"any error while draining", final, 1, false, now.Add(time.Minute), true, Decision{Action: Requeue}},
		{"retryable while draining", retry, 1, true, time.Time{}, true, Decision{Action: Requeue}},
	} {
		if got := Decide(c.out, c.attempt, 5, c.async, c.deadline, now, c.draining); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

// An outcome travels as a reply with its code, never an HTTP status.
func TestOutcomeReply(t *testing.T) {
	t.Parallel()
	r := Fail("tool_not_found", "no such tool").reply("j1")
	if r.OK() || r.JobID != "j1" || r.Err.Code != "tool_not_found" || r.Err.Message != "no such tool" {
		t.Fatalf("error reply %+v", r)
	}
	r = Outcome{Body: []byte(`{"success":true,"result":1}`)}.reply("j2")
	if !r.OK() || string(r.Body) != `{"success":true,"result":1}` {
		t.Fatalf("success reply %+v", r)
	}
}
