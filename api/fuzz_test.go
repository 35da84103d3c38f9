package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkAPIError fails unless err is an *apiError with a 4xx status, a
// snake_case code and a message.
func checkAPIError(t *testing.T, err error) {
	t.Helper()
	var ae *apiError
	if !errors.As(err, &ae) {
		t.Fatalf("error %T %q is not an *apiError", err, err)
	}
	if ae.status < 400 || ae.status > 499 {
		t.Fatalf("error %q has status %d, want 4xx", ae.msg, ae.status)
	}
	if ae.code == "" || strings.Trim(ae.code, "abcdefghijklmnopqrstuvwxyz_") != "" {
		t.Fatalf("error %q has code %q", ae.msg, ae.code)
	}
	if ae.msg == "" || !utf8.ValidString(ae.msg) {
		t.Fatalf("error message %q", ae.msg)
	}
}

func FuzzParseExecute(f *testing.F) {
	f.Add([]byte(`{"user_id":"user_123","action":"DB_QUERY_db_abc123","params":{"query":"SELECT 1"}}`))
	f.Add([]byte(`{"user_id":"u","action":"GMAIL_SEND_EMAIL","params":null,"max_rows":5,"async":true}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := parseExecute(body)
		if err != nil {
			if req != nil {
				t.Fatal("a request and an error")
			}
			checkAPIError(t, err)
			return
		}
		if strings.TrimSpace(req.UserID) == "" || len(req.UserID) > 256 {
			t.Fatalf("accepted user_id %q", req.UserID)
		}
		if strings.TrimSpace(req.Action) == "" {
			t.Fatalf("accepted action %q", req.Action)
		}
		if req.MaxRows < 0 {
			t.Fatalf("accepted max_rows %d", req.MaxRows)
		}
		p := bytes.TrimSpace(req.Params)
		if len(p) > 0 && !bytes.Equal(p, []byte("null")) {
			var obj map[string]json.RawMessage
			if p[0] != '{' || json.Unmarshal(p, &obj) != nil {
				t.Fatalf("accepted params %q", p)
			}
		}
		// What was accepted encodes and parses back to the same request.
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		back, err := parseExecute(again)
		if err != nil {
			t.Fatalf("round trip of %s refused: %v", again, err)
		}
		if back.UserID != req.UserID || back.Action != req.Action || back.MaxRows != req.MaxRows || back.Async != req.Async {
			t.Fatalf("round trip changed %+v into %+v", req, back)
		}
		if !sameJSON(back.Params, req.Params) {
			t.Fatalf("round trip changed params %s into %s", req.Params, back.Params)
		}
	})
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

func FuzzDBRequest(f *testing.F) {
	f.Add([]byte(`{"db_type":"postgres","host":"analytics.db.example.com","port":5432,"database":"campaigns","username":"db_user","password":"secret123"}`))
	f.Add([]byte(`{"user_id":"user_123","db_type":"mysql","name":"x","port":"3306","ssl":true}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var req dbRequest
		err := decodeBytes(body, &req)
		if err != nil {
			checkAPIError(t, err)
			return
		}
		if req.Port.set {
			// The port came from a JSON number or a numeric string.
			var raw struct {
				Port json.RawMessage `json:"port"`
			}
			_ = json.Unmarshal(body, &raw)
			// (A later "port": null or "" leaves an earlier value in place.)
			if s := strings.Trim(string(raw.Port), `"`); s != "" && s != "null" {
				if n, err := strconv.Atoi(s); err != nil || n != req.Port.n {
					t.Fatalf("port %s decoded as %d", raw.Port, req.Port.n)
				}
			}
		}
		// What was accepted encodes and decodes back to the same request.
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		var out map[string]any
		if err := json.Unmarshal(again, &out); err != nil {
			t.Fatalf("re-decode %s: %v", again, err)
		}
		delete(out, "port") // port has no MarshalJSON
		if req.Port.set {
			out["port"] = req.Port.n
		}
		if again, err = json.Marshal(out); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		var back dbRequest
		if err := decodeBytes(again, &back); err != nil {
			t.Fatalf("round trip of %s refused: %v", again, err)
		}
		if !reflect.DeepEqual(back, req) {
			t.Fatalf("round trip changed %+v into %+v", req, back)
		}
	})
}
