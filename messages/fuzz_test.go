package messages_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/openanalyst/mcp-integration-service/messages"
)

func FuzzDecodeJob(f *testing.F) {
	ok, err := messages.NewJob(messages.KindExecute, "8c1f0a8e-2b4d-4c47-9a63-6f3f3b1c2d10", "user_123",
		messages.ExecutePayload{Action: "DB_QUERY_db_abc123", Params: json.RawMessage(`{"query":"SELECT 1"}`)})
	if err != nil {
		f.Fatal(err)
	}
	okBytes, err := ok.Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(okBytes)
	f.Add([]byte(`{"v":1,"kind":"oauth","job_id":"j","created_at":"2025-12-18T10:00:00Z","payload":{"query":{"status":"success"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		job, err := messages.DecodeJob(data)
		if err != nil {
			if job != nil {
				t.Fatal("a job and an error")
			}
			if !strings.HasPrefix(err.Error(), "messages: ") {
				t.Fatalf("error %q does not name the package", err)
			}
			return
		}
		if job.V != messages.Version || job.JobID == "" {
			t.Fatalf("accepted v=%d job_id=%q", job.V, job.JobID)
		}
		known := false
		for _, k := range messages.Kinds {
			known = known || job.Kind == k
		}
		if !known {
			t.Fatalf("accepted kind %q", job.Kind)
		}
		// An accepted envelope encodes and decodes back to itself.
		again, err := json.Marshal(job)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		back, err := messages.DecodeJob(again)
		if err != nil {
			t.Fatalf("round trip of %s refused: %v", again, err)
		}
		if back.V != job.V || back.Kind != job.Kind || back.JobID != job.JobID || back.UserID != job.UserID ||
			!back.CreatedAt.Equal(job.CreatedAt) {
			t.Fatalf("round trip changed %+v into %+v", job, back)
		}
		if !sameJSON(back.Payload, job.Payload) {
			t.Fatalf("round trip changed payload %s into %s", job.Payload, back.Payload)
		}
		// Decoding a payload never panics, whatever it holds.
		var pl messages.ExecutePayload
		_ = job.Decode(&pl)
	})
}

// A wrong version is reported as ErrVersion.
func TestDecodeJobVersion(t *testing.T) {
	_, err := messages.DecodeJob([]byte(`{"v":2,"kind":"execute","job_id":"j"}`))
	if !errors.Is(err, messages.ErrVersion) {
		t.Fatalf("err = %v, want ErrVersion", err)
	}
}

// sameJSON reports whether two JSON texts hold the same value (json.Marshal
// re-escapes <, > and & in raw messages, so bytes may differ). Empty is null.
func sameJSON(a, b []byte) bool {
	val := func(x []byte) (any, bool) {
		if len(bytes.TrimSpace(x)) == 0 {
			return nil, true
		}
		d := json.NewDecoder(bytes.NewReader(x))
		d.UseNumber()
		var v any
		return v, d.Decode(&v) == nil
	}
	va, oka := val(a)
	vb, okb := val(b)
	return oka && okb && reflect.DeepEqual(va, vb)
}

func validToken(tok string) bool {
	if tok == "" {
		return false
	}
	for _, c := range tok {
		if (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

func FuzzUserToken(f *testing.F) {
	f.Add("user_123", "user_124")
	f.Add("a.b", "a*b")
	f.Fuzz(func(t *testing.T, a, b string) {
		ta, tb := messages.UserToken(a), messages.UserToken(b)
		for _, tok := range []string{ta, tb} {
			if !validToken(tok) {
				t.Fatalf("token %q is not a single subject token of [a-z2-7]", tok)
			}
		}
		if ta != messages.UserToken(a) {
			t.Fatal("UserToken is not deterministic")
		}
		if (a == b) != (ta == tb) {
			t.Fatalf("UserToken(%q)=%q, UserToken(%q)=%q", a, ta, b, tb)
		}
		// The result subject has exactly the prefix, the token and the job id.
		subj := messages.ResultSubject(a, "job-1")
		if subj != messages.ResultSubjectPrefix+ta+".job-1" || strings.Count(subj, ".") != strings.Count(messages.ResultSubjectPrefix, ".")+1 {
			t.Fatalf("result subject %q", subj)
		}
	})
}
