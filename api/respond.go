package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/go-chi/chi/v5"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/openanalyst/mcp-integration-service/tools"
)

// maxBody bounds every request body.
const maxBody = 1 << 20

// apiError is an error with its HTTP status and stable code.
type apiError struct {
	status int
	code   string
	msg    string
	jobID  string
}

func (e *apiError) Error() string { return e.msg }

func errBadRequest(code, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: code, msg: fmt.Sprintf(format, args...)}
}

func errNotFound(code, format string, args ...any) *apiError {
	return &apiError{status: http.StatusNotFound, code: code, msg: fmt.Sprintf(format, args...)}
}

func errUnavailable(code, msg string) *apiError {
	return &apiError{status: http.StatusServiceUnavailable, code: code, msg: msg}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"success":false,"error":"response encoding failed","code":"internal_error"}`)
	}
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// errorBody is the JSON body of every REST error.
type errorBody struct {
	Success bool   `json:"success"`
	Error   string `json:"error"`
	Code    string `json:"code"`
	JobID   string `json:"job_id,omitempty"`
}

// classify turns any error into the answer the API gives for it: an error
// of this package keeps its status; a coded error of the tools service or
// the OAuth side gets the status of its code (statusOf); anything else is a
// 500 without details. retryAfter is the wait an error asks for, if any.
func classify(err error) (ae *apiError, retryAfter time.Duration) {
	var (
		te *tools.Error
		ie *IntegrationError
	)
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &te):
		ae = &apiError{status: statusOf(te.Code), code: te.Code, msg: te.Message}
		if ae.status == http.StatusGatewayTimeout {
			ae.jobID = te.JobID // only a timeout's job id is worth polling
		}
	case errors.As(err, &ie):
		ae, retryAfter = &apiError{status: statusOf(ie.Code), code: ie.Code, msg: ie.Msg}, ie.RetryAfter
	default:
		ae = &apiError{status: http.StatusInternalServerError, code: "internal_error", msg: "internal error"}
	}
	return ae, retryAfter
}

// errStatus is the HTTP status an error answers, for the audit log.
func errStatus(err error) int {
	ae, _ := classify(err)
	return ae.status
}

// writeError writes err in the error envelope (see classify).
func writeError(w http.ResponseWriter, err error) {
	ae, wait := classify(err)
	if wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
	}
	if ae.status == http.StatusTooManyRequests && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, ae.status, errorBody{Success: false, Error: ae.msg, Code: ae.code, JobID: ae.jobID})
}

// decodeWithID decodes a body into v, checks the user_id it names (userID
// points into v) and the id in the route parameter field.
func decodeWithID(r *http.Request, v any, userID *string, field string) (string, error) {
	if err := decodeUser(r, v, userID); err != nil {
		return "", err
	}
	id := chi.URLParam(r, field)
	return id, checkID(field, id)
}

// decodeUser decodes a body into v and checks the user_id it names (userID
// points into v).
func decodeUser(r *http.Request, v any, userID *string) error {
	if err := decode(r, v); err != nil {
		return err
	}
	return requireUser(*userID)
}

// decode reads a JSON object body into v: 413 when too large, 400 when
// malformed or empty.
func decode(r *http.Request, v any) error { return decodeBody(r, v, false) }

// decodeBody is decode that allows an empty body when emptyOK.
func decodeBody(r *http.Request, v any, emptyOK bool) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	if emptyOK && len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	return decodeBytes(body, v)
}

func decodeBytes(body []byte, v any) error {
	if len(strings.TrimSpace(string(body))) == 0 {
		return errBadRequest("invalid_json", "request body is empty; a JSON object is expected")
	}
	// encoding/json would turn invalid UTF-8 into U+FFFD silently, so that
	// "\xff" and "\ufffd" would name the same user: refuse it instead.
	if !utf8.Valid(body) {
		return errBadRequest("invalid_json", "request body is not valid UTF-8")
	}
	if err := json.Unmarshal(body, v); err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			return ae
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return errBadRequest("invalid_field", "field %s must be %s", Clip(te.Field), jsonKind(te.Type.Kind().String()))
		}
		return errBadRequest("invalid_json", "malformed JSON: %v", err)
	}
	return nil
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "int", "int64", "float64":
		return "a number"
	case "map", "struct":
		return "an object"
	case "slice":
		return "an array"
	}
	return "of another type"
}

// WriteJSON writes v as a JSON response, for the MCP endpoint's refusals.
func WriteJSON(w http.ResponseWriter, status int, v any) { writeJSON(w, status, v) }

// WriteError writes err in the error envelope, for the MCP endpoint: an
// error of this package keeps its status and code, a storage outage is a
// 503, anything else a 500 without details.
func WriteError(w http.ResponseWriter, err error) { writeError(w, storageError(err)) }

// Fail returns an error that WriteError answers with status and code, for
// the MCP endpoint's limits.
func Fail(status int, code, format string, args ...any) error {
	return &apiError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

// readBody reads a request body of at most maxBody bytes: 413 beyond.
func readBody(r *http.Request) ([]byte, error) {
	if b, ok := r.Context().Value(bodyKey{}).([]byte); ok {
		return b, nil // read once already, by the rate limiter
	}
	if r.Body == nil {
		return nil, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &apiError{status: http.StatusRequestEntityTooLarge, code: "body_too_large",
				msg: fmt.Sprintf("request body exceeds %d bytes", maxBody)}
		}
		return nil, errBadRequest("invalid_json", "request body could not be read")
	}
	return body, nil
}
