package mcpserver

import (
	"net/http"
	"sync"
	"time"

	"github.com/go-chi/httprate"

	"github.com/openanalyst/mcp-integration-service/api"
)

// sessionHeader is the Streamable HTTP session header.
const sessionHeader = "Mcp-Session-Id"

// limits guards /mcp per token: a request rate (MCP_RATE_LIMIT_PER_TOKEN a
// minute, 0 = off) and a number of open sessions
// (MCP_MAX_SESSIONS_PER_TOKEN). Counters are per API node.
type limits struct {
	rate        *httprate.RateLimiter
	perMin      int
	maxSessions int

	mu       sync.Mutex
	sessions map[string]map[string]bool // token id → ids of sessions it opened
	opening  map[string]int             // token id → session openings in flight
}

func newLimits(perMin, maxSessions int) *limits {
	l := &limits{perMin: perMin, maxSessions: maxSessions,
		sessions: map[string]map[string]bool{}, opening: map[string]int{}}
	if perMin > 0 {
		l.rate = httprate.NewRateLimiter(perMin, time.Minute)
	}
	return l
}

// guard runs next for a request of token tokenID unless a limit refuses it
// (429). live lists the session ids the user's server still holds: closed
// and expired sessions no longer count.
func (l *limits) guard(w http.ResponseWriter, r *http.Request, tokenID string, live func() map[string]bool, next http.Handler) {
	if l.rate != nil && l.rate.OnLimit(w, r, "mcp:"+tokenID) {
		api.WriteError(w, api.Fail(http.StatusTooManyRequests, "rate_limited",
			"rate limit exceeded: at most %d MCP requests per minute for this token", l.perMin))
		return
	}
	// A POST without a session id opens a session (an initialize).
	if r.Method != http.MethodPost || r.Header.Get(sessionHeader) != "" || l.maxSessions <= 0 {
		next.ServeHTTP(w, r)
		return
	}
	if !l.reserve(tokenID, live()) {
		w.Header().Set("Retry-After", "60")
		api.WriteError(w, api.Fail(http.StatusTooManyRequests, "too_many_sessions",
			"this MCP token already has %d open sessions, the most allowed: close one (DELETE /mcp) or let one expire", l.maxSessions))
		return
	}
	defer func() { l.opened(tokenID, w.Header().Get(sessionHeader)) }()
	next.ServeHTTP(w, r)
}

// reserve counts a session opening against the token's cap, after dropping
// the sessions that are gone.
func (l *limits) reserve(tokenID string, live map[string]bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	open := l.sessions[tokenID]
	for id := range open {
		if !live[id] {
			delete(open, id)
		}
	}
	if len(open)+l.opening[tokenID] >= l.maxSessions {
		return false
	}
	l.opening[tokenID]++
	return true
}

// opened ends an opening: id is the new session's, or "" when none opened.
func (l *limits) opened(tokenID, id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.opening[tokenID]--; l.opening[tokenID] <= 0 {
		delete(l.opening, tokenID)
	}
	if id != "" {
		if l.sessions[tokenID] == nil {
			l.sessions[tokenID] = map[string]bool{}
		}
		l.sessions[tokenID][id] = true
	}
	if len(l.sessions[tokenID]) == 0 {
		delete(l.sessions, tokenID)
	}
}

// liveSessions lists the ids of a user's open sessions.
func (h *hub) liveSessions(user string) map[string]bool {
	out := map[string]bool{}
	us := h.lookup(user)
	if us == nil {
		return out
	}
	for ss := range us.server.Sessions() {
		out[ss.ID()] = true
	}
	return out
}
