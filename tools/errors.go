package tools

import (
	"errors"
	"fmt"

	"github.com/openanalyst/mcp-integration-service/messages"
)

// Codes of the errors this package returns itself. Workers add theirs
// (messages.Error codes); the API maps every code to an HTTP status.
const (
	CodeTimeout            = "worker_timeout"
	CodeBrokerUnavailable  = "broker_unavailable"
	CodeStorageUnavailable = "storage_unavailable"
)

// Error is a failure of a tool call: a stable code, a message safe to show,
// and the job id when the job exists (a timeout: its result will be kept for
// GET /api/jobs/{id}).
type Error struct {
	Code    string
	Message string
	JobID   string
}

func (e *Error) Error() string { return e.Message }

// fromReply is the error of a failed reply.
func fromReply(r messages.Reply) *Error {
	return &Error{Code: r.Err.Code, Message: r.Err.Message, JobID: r.JobID}
}

func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of err, "internal_error" for an unclassified one.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return "internal_error"
}
