package composio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// Sentinel errors classify an *APIError; test for them with errors.Is.
var (
	// ErrNotFound reports that Composio answered 404: the toolkit, tool or
	// connected account does not exist (or no longer exists).
	ErrNotFound = errors.New("composio: not found")
	// ErrUnauthorized reports that Composio refused the API key (401) or that
	// the key lacks permission for the call (403).
	ErrUnauthorized = errors.New("composio: unauthorized")
	// ErrRateLimited reports that Composio answered 429 Too Many Requests.
	ErrRateLimited = errors.New("composio: rate limited")
	// ErrUnavailable reports that Composio could not serve the call: a 5xx
	// answer, a network error or a timeout.
	ErrUnavailable = errors.New("composio: unavailable")
)

// APIError describes a failed call to Composio. It never holds the API key.
type APIError struct {
	// Op is the client method that failed, e.g. "GetConnectedAccount".
	Op string
	// Method is the HTTP method of the request, e.g. "GET".
	Method string
	// Path is the request path without its query, e.g.
	// "/api/v3/connected_accounts/ca_1".
	Path string
	// StatusCode is the HTTP status Composio answered, or 0 when no answer
	// was received (network error, timeout, cancellation).
	StatusCode int
	// Message is Composio's error message, when its answer carried one.
	Message string
	// Code is Composio's machine-readable error code or slug, when given.
	Code string
	// RequestID is Composio's request id, worth quoting to its support.
	RequestID string
	// SuggestedFix is Composio's hint on how to resolve the error, when given.
	SuggestedFix string
	// RetryAfter is how long Composio asked the caller to wait (Retry-After),
	// or 0 when it did not say.
	RetryAfter time.Duration
	// Attempts is the number of HTTP requests made for this call.
	Attempts int
	// Err is the underlying error: a network error, a context error, or a
	// decoding error for a malformed answer. It is nil for plain HTTP errors.
	Err error
}

// Error names the call that failed and why.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("composio: ")
	b.WriteString(e.Op)
	if e.Method != "" || e.Path != "" {
		fmt.Fprintf(&b, " (%s %s)", e.Method, e.Path)
	}
	b.WriteString(": ")
	switch {
	case e.StatusCode != 0 && e.Err == nil:
		fmt.Fprintf(&b, "HTTP %d", e.StatusCode)
		if e.Message != "" {
			b.WriteString(": ")
			b.WriteString(e.Message)
		} else if t := http.StatusText(e.StatusCode); t != "" {
			b.WriteString(" ")
			b.WriteString(t)
		}
		if e.RetryAfter > 0 {
			fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
		}
	case e.StatusCode != 0:
		fmt.Fprintf(&b, "HTTP %d: %v", e.StatusCode, e.Err)
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	default:
		b.WriteString("request failed")
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (after %d attempts)", e.Attempts)
	}
	return b.String()
}

// Unwrap returns the underlying error, so errors.Is(err, context.Canceled)
// and errors.Is(err, context.DeadlineExceeded) work.
func (e *APIError) Unwrap() error { return e.Err }

// Is classifies the error for errors.Is against ErrNotFound, ErrUnauthorized,
// ErrRateLimited and ErrUnavailable.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden
	case ErrRateLimited:
		return e.StatusCode == http.StatusTooManyRequests
	case ErrUnavailable:
		if e.StatusCode >= 500 {
			return true
		}
		// No answer at all: a network error or a timeout. A cancellation by
		// the caller says nothing about Composio's health.
		return e.StatusCode == 0 && e.Err != nil && !errors.Is(e.Err, context.Canceled)
	}
	return false
}

// Retryable reports whether err is worth retrying later with the same
// arguments: rate limiting (429), a Composio server error (5xx), a network
// error or a timeout. Cancellation and client errors (4xx) are not.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrRateLimited) || errors.Is(err, ErrUnavailable) {
		return true
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// maxMessageLen bounds how much of a non-JSON error body ends up in Message.
const maxMessageLen = 300

// parseErrorBody fills Message, Code, RequestID and SuggestedFix from an error
// answer. Composio's documented shape is {"error":{"message":...}}; older
// endpoints and gateways answer {"message":...}, {"error":"..."} or
// {"detail":...}.
func (e *APIError) parseErrorBody(body []byte, contentType string) {
	body = []byte(strings.TrimSpace(string(body)))
	if len(body) == 0 {
		return
	}
	var env struct {
		Error        json.RawMessage `json:"error"`
		Message      json.RawMessage `json:"message"`
		Detail       json.RawMessage `json:"detail"`
		Code         json.RawMessage `json:"code"`
		Slug         string          `json:"slug"`
		RequestID    string          `json:"request_id"`
		SuggestedFix string          `json:"suggested_fix"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		// Not JSON. Keep a short plain-text body, never an HTML page.
		if strings.Contains(contentType, "html") || body[0] == '<' {
			return
		}
		e.Message = truncate(oneLine(string(body)), maxMessageLen)
		return
	}
	e.RequestID = env.RequestID
	e.SuggestedFix = env.SuggestedFix
	e.Code = firstNonEmpty(env.Slug, scalarString(env.Code))
	if len(env.Error) > 0 {
		var s string
		if json.Unmarshal(env.Error, &s) == nil {
			e.Message = s
		} else {
			var inner struct {
				Message      json.RawMessage `json:"message"`
				Code         json.RawMessage `json:"code"`
				Slug         string          `json:"slug"`
				Name         string          `json:"name"`
				RequestID    string          `json:"request_id"`
				SuggestedFix string          `json:"suggested_fix"`
			}
			if json.Unmarshal(env.Error, &inner) == nil {
				e.Message = messageString(inner.Message)
				e.Code = firstNonEmpty(inner.Slug, scalarString(inner.Code), inner.Name, e.Code)
				e.RequestID = firstNonEmpty(inner.RequestID, e.RequestID)
				e.SuggestedFix = firstNonEmpty(inner.SuggestedFix, e.SuggestedFix)
			}
		}
	}
	if e.Message == "" {
		e.Message = messageString(env.Message)
	}
	if e.Message == "" {
		e.Message = messageString(env.Detail)
	}
	e.Message = truncate(oneLine(e.Message), 4*maxMessageLen)
}

// messageString renders a message field that is usually a string but is
// sometimes a list of validation errors or an object.
func messageString(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) == nil {
		parts := make([]string, 0, len(list))
		for _, item := range list {
			if m := messageString(item); m != "" {
				parts = append(parts, m)
			}
		}
		return strings.Join(parts, "; ")
	}
	var obj struct {
		Message string `json:"message"`
		Msg     string `json:"msg"`
	}
	if json.Unmarshal(raw, &obj) == nil && (obj.Message != "" || obj.Msg != "") {
		return firstNonEmpty(obj.Message, obj.Msg)
	}
	return truncate(string(raw), maxMessageLen)
}

// scalarString renders a JSON string or number; anything else is "".
func scalarString(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) && len(s) > 0 {
		s = s[:len(s)-1]
	}
	return s + "…"
}
