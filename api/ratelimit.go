package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/go-chi/httprate"
)

// RateLimit limits the /api routes behind the key, per minute, per API key
// (a hash of X-API-Key: OA's traffic shares one key, so this is a global cap)
// and per user_id (from the query string, or peeked from a JSON body without
// consuming it). A request without a user_id counts against the key only. 0
// disables a limit. Over a limit the answer is 429 with Retry-After and the
// usual error envelope, code "rate_limited". Counters are per API node.
func RateLimit(perKeyPerMin, perUserPerMin int) func(http.Handler) http.Handler {
	var byKey, byUser *httprate.RateLimiter
	if perKeyPerMin > 0 {
		// The key's limit sends Retry-After only; the X-RateLimit-* headers
		// describe the per-user limit, which is what a caller can act on.
		byKey = httprate.NewRateLimiter(perKeyPerMin, time.Minute,
			httprate.WithResponseHeaders(httprate.ResponseHeaders{RetryAfter: "Retry-After"}))
	}
	if perUserPerMin > 0 {
		byUser = httprate.NewRateLimiter(perUserPerMin, time.Minute)
	}
	return func(next http.Handler) http.Handler {
		if byKey == nil && byUser == nil {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// The user's limit goes first, so a throttled user does not also
			// spend the shared key's budget.
			if byUser != nil {
				if user := userOf(r); user != "" && byUser.OnLimit(w, r, "user:"+user) {
					limited(w, fmt.Sprintf("rate limit exceeded: at most %d requests per minute for this user_id", perUserPerMin))
					return
				}
			}
			if byKey != nil {
				sum := sha256.Sum256([]byte(r.Header.Get("X-API-Key")))
				if byKey.OnLimit(w, r, "key:"+hex.EncodeToString(sum[:16])) {
					limited(w, fmt.Sprintf("rate limit exceeded: at most %d requests per minute for this API key", perKeyPerMin))
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// limited answers 429. httprate has set Retry-After (the window, 60 s).
func limited(w http.ResponseWriter, msg string) {
	if after := w.Header().Get("Retry-After"); after != "" {
		msg += "; retry after " + after + " s"
	}
	writeError(w, &apiError{status: http.StatusTooManyRequests, code: "rate_limited", msg: msg})
}

// userOf finds the request's user_id: the query string first, then a JSON
// body of POST, PUT, PATCH or DELETE (whatever its Content-Type: the
// handlers decode JSON regardless). The body is read up to maxBody and put
// back unchanged for the handler, which enforces its own limits.
func userOf(r *http.Request) string {
	if u := r.URL.Query().Get("user_id"); u != "" {
		return u
	}
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return ""
	}
	if r.Body == nil || r.Body == http.NoBody {
		return ""
	}
	head, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	r.Body = &peekedBody{Reader: io.MultiReader(bytes.NewReader(head), r.Body), closer: r.Body}
	if err != nil {
		return ""
	}
	return userInBody(head)
}

// userInBody returns a string user_id at the top level of a JSON object.
func userInBody(b []byte) string {
	var v struct {
		UserID json.RawMessage `json:"user_id"`
	}
	if json.Unmarshal(b, &v) != nil || len(v.UserID) == 0 || v.UserID[0] != '"' {
		return ""
	}
	var u string
	if json.Unmarshal(v.UserID, &u) != nil {
		return ""
	}
	return u
}

// peekedBody replays the bytes read for the user_id, then the rest.
type peekedBody struct {
	io.Reader
	closer io.Closer
}

func (b *peekedBody) Close() error { return b.closer.Close() }
