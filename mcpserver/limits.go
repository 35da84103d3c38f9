package mcpserver

import (
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/go-chi/httprate"

	"github.com/openanalyst/mcp-integration-service/api"
)

const (
	// sessionHeader is the Streamable HTTP session header.
	sessionHeader = "Mcp-Session-Id"
	// protocolHeader names the protocol version of a request after the
	// initialize (or of every request, in the stateless protocol).
	protocolHeader = "Mcp-Protocol-Version"
)

// limits guards /mcp per token, in each API node: a request rate
// (MCP_RATE_LIMIT_PER_TOKEN a minute, 0 = off) and a number of connections
// (MCP_MAX_SESSIONS_PER_TOKEN). A connection is a request in flight, event
// streams included (a session's GET, a subscriptions/listen); beyond the
// number, 429. The same number bounds the sessions the node keeps for the
// token: opening one more closes the oldest, whose client goes on statelessly
// without that session's event stream.
type limits struct {
	rate   *httprate.RateLimiter
	perMin int
	max    int

	mu       sync.Mutex
	busy     map[string]int      // token id → requests in flight
	sessions map[string][]string // token id → ids of the sessions it opened here, oldest first
}

func newLimits(perMin, maxConns int) *limits {
	l := &limits{perMin: perMin, max: maxConns, busy: map[string]int{}, sessions: map[string][]string{}}
	if perMin > 0 {
		l.rate = httprate.NewRateLimiter(perMin, time.Minute)
	}
	return l
}

// guard runs next for a request of token tokenID unless a limit refuses it
// (429). When the request opens a session (opens), it returns the ids of the
// token's sessions to close, oldest first, to keep at most the maximum; live
// lists the ids of the sessions the node still holds for the token's user.
func (l *limits) guard(w http.ResponseWriter, r *http.Request, tokenID string, opens bool,
	live func() map[string]bool, next http.Handler) (evict []string) {
	if l.rate != nil && l.rate.OnLimit(w, r, "mcp:"+tokenID) {
		api.WriteError(w, api.Fail(http.StatusTooManyRequests, "rate_limited",
			"rate limit exceeded: at most %d MCP requests per minute for this token", l.perMin))
		return nil
	}
	if l.max > 0 {
		if !l.acquire(tokenID) {
			w.Header().Set("Retry-After", "5")
			api.WriteError(w, api.Fail(http.StatusTooManyRequests, "too_many_sessions",
				"this MCP token already has %d MCP requests or event streams open, the most allowed: close one or retry shortly", l.max))
			return nil
		}
		defer l.release(tokenID)
	}
	next.ServeHTTP(w, r)
	if id := w.Header().Get(sessionHeader); opens && id != "" && l.max > 0 {
		return l.opened(tokenID, id, live())
	}
	return nil
}

// acquire counts a request in flight against the token's maximum.
func (l *limits) acquire(tokenID string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.busy[tokenID] >= l.max {
		return false
	}
	l.busy[tokenID]++
	return true
}

// release ends a request acquire counted.
func (l *limits) release(tokenID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.busy[tokenID]--; l.busy[tokenID] <= 0 {
		delete(l.busy, tokenID)
	}
}

// opened records the token's new session id, forgets its sessions that are
// no longer live, and returns the oldest ones beyond the maximum.
func (l *limits) opened(tokenID, id string, live map[string]bool) (evict []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	kept := append(slices.DeleteFunc(l.sessions[tokenID], func(s string) bool { return !live[s] }), id)
	if n := len(kept) - l.max; n > 0 {
		evict, kept = slices.Clone(kept[:n]), kept[n:]
	}
	l.sessions[tokenID] = kept
	return evict
}

// prune forgets the sessions that are gone (closed, expired) of every token.
// live lists the ids of all the sessions of the node; it runs under the
// lock, so that no session recorded meanwhile is missing from it.
func (l *limits) prune(live func() map[string]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	all := live()
	for tok, ids := range l.sessions {
		if ids = slices.DeleteFunc(ids, func(s string) bool { return !all[s] }); len(ids) == 0 {
			delete(l.sessions, tok)
		} else {
			l.sessions[tok] = ids
		}
	}
}

// liveSessions lists the ids of a user's open sessions on this node, or of
// every user's when user is "".
func (h *hub) liveSessions(user string) map[string]bool {
	h.mu.Lock()
	var servers []*userServer
	if user != "" {
		if us := h.users[user]; us != nil {
			servers = append(servers, us)
		}
	} else {
		for _, us := range h.users {
			servers = append(servers, us)
		}
	}
	h.mu.Unlock()
	out := map[string]bool{}
	for _, us := range servers {
		for ss := range us.server.Sessions() {
			if id := ss.ID(); id != "" {
				out[id] = true
			}
		}
	}
	return out
}
