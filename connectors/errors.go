package connectors

import (
	"errors"
	"fmt"
)

// Kind classifies a connector error, which decides the HTTP status the caller
// sees and whether the job is retried.
type Kind int

const (
	// KindInput: the tool's params are malformed (400). Never retried.
	KindInput Kind = iota + 1
	// KindQuery: the database ran the request and refused it, e.g. an SQL
	// syntax error or a write on a read-only connection (422). Never retried.
	KindQuery
	// KindAuth: the database refused the credentials (422). Never retried.
	KindAuth
	// KindPolicy: the host policy refused the address (422). Never retried.
	KindPolicy
	// KindTimeout: the statement or client deadline passed (422). Never retried:
	// running a slow query again would only repeat the load.
	KindTimeout
	// KindUnavailable: the database could not be reached. Retried with backoff.
	KindUnavailable
	// KindBroker: the service's own message broker, which holds the fleet's
	// connection budget, could not be reached (503). Retried with backoff.
	KindBroker
	// KindBusy: every connection the fleet may open to the database
	// (MCP_DB_MAX_CONNECTIONS) stayed in use while the call waited (503).
	// Retried with backoff.
	KindBusy
)

// Error is a classified connector error. Msg is safe to show to the caller: it
// never carries a password.
type Error struct {
	Kind Kind
	Msg  string
	Err  error
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Err }

// Code is the stable snake_case code of the error envelope.
func (e *Error) Code() string {
	switch e.Kind {
	case KindInput:
		return "invalid_params"
	case KindQuery:
		return "query_failed"
	case KindAuth:
		return "connection_failed"
	case KindPolicy:
		return "host_not_allowed"
	case KindTimeout:
		return "query_timeout"
	case KindUnavailable:
		return "database_unavailable"
	case KindBroker:
		return "broker_unavailable"
	case KindBusy:
		return "database_busy"
	}
	return "error"
}

// Errorf builds a classified error.
func Errorf(k Kind, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{Kind: k, Msg: err.Error(), Err: errors.Unwrap(err)}
}

// KindOf returns the kind of err, or KindUnavailable for an unclassified error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindUnavailable
}
