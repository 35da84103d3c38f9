package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/go-chi/httprate"
)

// RateLimit limits the /api routes behind the key, per minute, per API key
// (a hash of X-API-Key: OA's traffic shares one key, so this is a global cap)
// and per user_id: the user_id the handler acts on (see userOf). A request
// without a valid user_id counts against the key only. 0 disables a limit.
// Over a limit the answer is 429 with Retry-After and the usual error
// envelope, code "rate_limited". Counters are per API node.
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
				var user string
				user, r = userOf(r)
				if user != "" && byUser.OnLimit(w, r, "user:"+user) {
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

// defaultCallbackPerIP is the OAuth callback's limit per client IP and
// minute: a user completes one flow at a time.
const defaultCallbackPerIP = 30

// callbackLimit limits a route per client IP (see clientIP) to perMin a
// minute (0: the default, negative: off).
func callbackLimit(perMin int) func(http.Handler) http.Handler {
	if perMin == 0 {
		perMin = defaultCallbackPerIP
	}
	if perMin < 0 {
		return func(next http.Handler) http.Handler { return next }
	}
	rl := httprate.NewRateLimiter(perMin, time.Minute,
		httprate.WithResponseHeaders(httprate.ResponseHeaders{RetryAfter: "Retry-After"}))
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if rl.OnLimit(w, r, "ip:"+clientIP(r)) {
				limited(w, fmt.Sprintf("rate limit exceeded: at most %d OAuth callbacks per minute from this address", perMin))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// clientIP is the peer's address, or the X-Real-IP a reverse proxy on a
// loopback or private address set (deploy/proxy/nginx.conf overwrites it);
// a client on a public address cannot choose its own key.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	if peer.IsLoopback() || peer.IsPrivate() {
		if real, err := netip.ParseAddr(strings.TrimSpace(r.Header.Get("X-Real-IP"))); err == nil {
			return real.Unmap().String()
		}
	}
	return peer.Unmap().String()
}

// limited answers 429. httprate has set Retry-After (the window, 60 s).
func limited(w http.ResponseWriter, msg string) {
	if after := w.Header().Get("Retry-After"); after != "" {
		msg += "; retry after " + after + " s"
	}
	writeError(w, &apiError{status: http.StatusTooManyRequests, code: "rate_limited", msg: msg})
}

// userOf finds the user_id the handler will act on, where it will read it:
// the JSON body of POST, PUT and PATCH (whatever the query says), the query
// of GET and HEAD, and for DELETE the query, else the body. An invalid
// user_id is left to the handler (a 400) and counts against the key only.
//
// A body is read once, up to maxBody: the returned request carries the
// bytes for readBody (Decode) and replays them to any other reader. A larger
// or unreadable body is put back unchanged, for the handler's own 413.
func userOf(r *http.Request) (string, *http.Request) {
	var user string
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
	case http.MethodDelete:
		user = r.URL.Query().Get("user_id")
	default:
		user = r.URL.Query().Get("user_id")
		return validUser(user), r
	}
	if user == "" && r.Body != nil && r.Body != http.NoBody {
		var body []byte
		body, r = bufferBody(r)
		user = userInBody(body)
	}
	return validUser(user), r
}

func validUser(u string) string {
	if requireUser(u) != nil {
		return ""
	}
	return u
}

type bodyKey struct{}

// bufferBody reads a body of at most maxBody bytes once and returns it with
// a request that carries it (see readBody). A larger or unreadable body
// is put back as it came and nil returned.
func bufferBody(r *http.Request) ([]byte, *http.Request) {
	head, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(head) > maxBody {
		r.Body = &peekedBody{Reader: io.MultiReader(bytes.NewReader(head), r.Body), closer: r.Body}
		return nil, r
	}
	r.Body = &peekedBody{Reader: bytes.NewReader(head), closer: r.Body}
	return head, r.WithContext(context.WithValue(r.Context(), bodyKey{}, head))
}

// userInBody returns a string user_id at the top level of a JSON object.
func userInBody(b []byte) string {
	var v struct {
		UserID json.RawMessage `json:"user_id"`
	}
	if len(b) == 0 || json.Unmarshal(b, &v) != nil || len(v.UserID) == 0 || v.UserID[0] != '"' {
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
