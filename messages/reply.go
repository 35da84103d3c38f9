package messages

import (
	"encoding/json"

	"github.com/nats-io/nats.go"
)

// Reply is a worker's answer to one job: a success body, or an error code and
// message. The same encoding goes to the waiting API node's inbox and to an
// async caller's result subject. No HTTP status travels on the bus: the API
// maps the code to one at the edge.
type Reply struct {
	JobID string
	// Body is the success body, a JSON object without "success", e.g.
	// {"result":[…],"row_count":1,"truncated":false}. Encoded once, by the
	// worker; never re-wrapped.
	Body []byte
	// Err is set on failure.
	Err *Error
}

// Error is a failure as it travels on the bus: a stable snake_case code and
// a message safe to show to the caller.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"error"`
}

func (e *Error) Error() string { return e.Message }

// OK reports whether the reply is a success.
func (r Reply) OK() bool { return r.Err == nil }

// Encode builds the NATS message of a reply to subject. Headers carry the
// job id, the outcome and, on failure, the error code (as nats.go's micro
// carries Nats-Service-Error-Code); the body is the success object or
// {"error":…,"code":…}.
func (r Reply) Encode(subject string) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Header.Set(HeaderJobID, r.JobID)
	if r.Err != nil {
		m.Header.Set(HeaderOutcome, OutcomeError)
		m.Header.Set(HeaderErrorCode, r.Err.Code)
		m.Data, _ = json.Marshal(r.Err)
		return m
	}
	m.Header.Set(HeaderOutcome, OutcomeOK)
	m.Data = r.Body
	return m
}

// DecodeReply reads a message built by Encode. A malformed error body still
// gives an error reply, with the code from the header.
func DecodeReply(m *nats.Msg) Reply {
	r := Reply{JobID: m.Header.Get(HeaderJobID)}
	if m.Header.Get(HeaderOutcome) == OutcomeOK {
		r.Body = m.Data
		return r
	}
	e := &Error{}
	if json.Unmarshal(m.Data, e) != nil || e.Message == "" {
		e.Message = "the worker failed"
	}
	if c := m.Header.Get(HeaderErrorCode); c != "" {
		e.Code = c
	}
	if e.Code == "" {
		e.Code = "internal_error"
	}
	r.Err = e
	return r
}
