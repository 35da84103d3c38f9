package messages

import (
	"testing"
)

// One encoder, one decoder: what Encode writes, DecodeReply reads back, for
// a success and an error; a garbled error body still decodes as an error.
func TestReplyRoundTrip(t *testing.T) {
	t.Parallel()
	ok := Reply{JobID: "j1", Body: []byte(`{"success":true,"result":[1]}`)}
	m := ok.Encode("_INBOX.x.j1")
	if m.Subject != "_INBOX.x.j1" || m.Header.Get(HeaderErrorCode) != "" {
		t.Fatalf("success message %+v", m)
	}
	if got := DecodeReply(m); !got.OK() || got.JobID != "j1" || string(got.Body) != string(ok.Body) {
		t.Fatalf("success decoded as %+v", got)
	}
	bad := Reply{JobID: "j2", Err: &Error{Code: "query_failed", Message: "syntax error at or near \"SELEC\""}}
	m = bad.Encode("mcp.results.u.j2")
	if m.Header.Get(HeaderErrorCode) != "query_failed" || m.Header.Get(HeaderOutcome) != OutcomeError {
		t.Fatalf("error headers %v", m.Header)
	}
	got := DecodeReply(m)
	if got.OK() || got.Err.Code != "query_failed" || got.Err.Message != bad.Err.Message || got.JobID != "j2" {
		t.Fatalf("error decoded as %+v", got)
	}
	m.Data = []byte("not json")
	if got := DecodeReply(m); got.OK() || got.Err.Code != "query_failed" || got.Err.Message == "" {
		t.Fatalf("garbled error decoded as %+v", got)
	}
	m.Header.Del(HeaderErrorCode)
	if got := DecodeReply(m); got.OK() || got.Err.Code != "internal_error" {
		t.Fatalf("error without a code decoded as %+v", got)
	}
}
