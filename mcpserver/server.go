package mcpserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/openanalyst/mcp-integration-service/api"
	"github.com/openanalyst/mcp-integration-service/storage"
	"github.com/openanalyst/mcp-integration-service/tools"
)

const (
	// sessionIdle closes an MCP session after this long without a request
	// on this node; its client's later requests are served statelessly.
	sessionIdle = time.Hour
	// serverIdle drops a user's MCP server once it has had no session and
	// no request for this long.
	serverIdle = 10 * time.Minute

	instructions = "Tools of one OpenAnalyst user: their connected databases and apps. " +
		"For a database, DB_LIST_TABLES_<db_id> and DB_DESCRIBE_<db_id> show its tables and columns; " +
		"DB_QUERY_<db_id> runs one SQL statement (read-only unless the connection allows writes). " +
		"Every result is a JSON object: {\"success\":true,\"result\":…} or {\"success\":false,\"error\":…,\"code\":…}."
)

// hub serves /mcp for one service instance: one mcp.Server per user, shared
// by that user's sessions, holding exactly that user's tools.
//
// Any API node answers any request. A legacy client's initialize opens a
// session on the node it reaches (the SDK's stateful handler), so that the
// session's event stream (GET) can carry list_changed; every other request
// that is not of a session this node holds, including one naming a session
// of another node, is served statelessly by a session that lives for that
// one request (the SDK's stateless handler), which also serves the stateless
// protocol (2026-07-28: subscriptions/listen carries list_changed). Nothing
// a request needs is kept between requests: the token, the user and the
// user's tools are read again each time.
type hub struct {
	tools     *tools.Service
	tokens    Verifier
	lim       *limits
	log       *slog.Logger
	stateful  http.Handler
	stateless http.Handler
	handler   http.Handler

	mu    sync.Mutex
	users map[string]*userServer

	hooked sync.Map // *http.Server → struct{}: shutdown hook registered
}

// userServer is the MCP server of one user.
type userServer struct {
	user     string
	server   *mcp.Server
	lastUsed atomic.Int64 // unix nanoseconds

	mu    sync.Mutex        // one sync at a time
	tools map[string]string // registered tool name → fingerprint of its definition
}

type ctxKey struct{}

// statelessProtocol is the first protocol version without sessions
// (SEP-2575): the SDK serves it on its stateless handler only.
const statelessProtocol = "2026-07-28"

func newHub(ts *tools.Service, tokens Verifier, lim *limits, log *slog.Logger) *hub {
	h := &hub{tools: ts, tokens: tokens, log: log, users: map[string]*userServer{}, lim: lim}
	opts := mcp.StreamableHTTPOptions{
		SessionTimeout: sessionIdle,
		Logger:         slog.New(minLevel{h: log.Handler(), min: slog.LevelError}),
		// Every request carries a bearer token that a page rebinding a DNS
		// name to 127.0.0.1 does not have, and a reverse proxy on the same
		// host sends its public Host header over loopback: the SDK's
		// localhost Host check would refuse exactly those proxies.
		DisableLocalhostProtection: true,
	}
	stateful := mcp.NewStreamableHTTPHandler(h.serverFor, &opts)
	opts.Stateless, opts.SessionTimeout = true, 0
	stateless := mcp.NewStreamableHTTPHandler(h.serverFor, &opts)
	// The SDK binds a session to TokenInfo.UserID, so another user's token
	// cannot use a session id it learned, and a call names its token (see
	// actorOf): put our verdict where they look.
	bind := auth.RequireBearerToken(func(ctx context.Context, _ string, _ *http.Request) (*auth.TokenInfo, error) {
		d, ok := ctx.Value(ctxKey{}).(*storage.Token)
		if !ok {
			return nil, auth.ErrInvalidToken
		}
		return &auth.TokenInfo{UserID: d.UserID, Expiration: d.ExpiresAt, Extra: map[string]any{"token_id": d.ID}}, nil
	}, &auth.RequireBearerTokenOptions{ClockSkew: time.Minute})
	h.stateful, h.stateless = bind(stateful), bind(stateless)
	h.handler = h.authenticate()
	return h
}

func (h *hub) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.handler.ServeHTTP(w, r) }

// authenticate answers 401 before any MCP traffic unless the request carries
// a live token, and puts the token's record in the request context. The
// token's limits (rate, connections) then apply: 429 beyond them.
func (h *hub) authenticate() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.hookShutdown(r)
		fields := strings.Fields(r.Header.Get("Authorization"))
		if len(fields) != 2 || !strings.EqualFold(fields[0], "bearer") {
			unauthorized(w, "", "missing_token", "send the MCP token as Authorization: Bearer <token>")
			return
		}
		d, err := h.tokens.Verify(r.Context(), fields[1])
		switch {
		case errors.Is(err, storage.ErrTokenUnknown):
			unauthorized(w, "invalid_token", "invalid_token", "unknown MCP token")
			return
		case errors.Is(err, storage.ErrTokenExpired):
			unauthorized(w, "invalid_token", "token_expired", "this MCP token has expired; mint a new one")
			return
		case errors.Is(err, storage.ErrTokenRevoked):
			unauthorized(w, "invalid_token", "token_revoked", "this MCP token was revoked")
			return
		case err != nil:
			h.log.Warn("token check failed", "err", err)
			api.WriteError(w, err)
			return
		}
		live := func() map[string]bool { return h.liveSessions(d.UserID) }
		next, opens := h.route(r, d.UserID)
		for _, id := range h.lim.guard(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, d)), d.ID, opens, live, next) {
			if ss := h.session(d.UserID, id); ss != nil {
				_ = ss.Close() // its client goes on statelessly, without its event stream
			}
		}
	})
}

// route picks the handler of a user's request: the stateful one only for a
// session this node holds, or to open one (opens); anything else, a session
// id from another node or from before a restart included, is served
// statelessly, never answered 404.
func (h *hub) route(r *http.Request, user string) (next http.Handler, opens bool) {
	id := r.Header.Get(sessionHeader)
	switch {
	case id != "" && h.session(user, id) != nil:
		return h.stateful, false
	case id == "" && r.Method == http.MethodPost && r.Header.Get(protocolHeader) < statelessProtocol:
		// A legacy initialize (any other message without a session is
		// refused by the SDK, which then drops the session it opened).
		return h.stateful, true
	}
	return h.stateless, false
}

func unauthorized(w http.ResponseWriter, oauthErr, code, msg string) {
	challenge := `Bearer realm="mcp"`
	if oauthErr != "" {
		challenge += fmt.Sprintf(`, error=%q, error_description=%q`, oauthErr, msg)
	}
	w.Header().Set("WWW-Authenticate", challenge)
	api.WriteJSON(w, http.StatusUnauthorized, errBody{Error: msg, Code: code})
}

// hookShutdown closes every MCP session when the HTTP server shuts down:
// their event streams would otherwise hold http.Server.Shutdown until its
// deadline.
func (h *hub) hookShutdown(r *http.Request) {
	srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server)
	if !ok {
		return
	}
	if _, done := h.hooked.LoadOrStore(srv, struct{}{}); !done {
		srv.RegisterOnShutdown(h.closeAll)
	}
}

func (h *hub) closeAll() {
	h.mu.Lock()
	all := make([]*userServer, 0, len(h.users))
	for _, us := range h.users {
		all = append(all, us)
	}
	h.mu.Unlock()
	for _, us := range all {
		for ss := range us.server.Sessions() {
			_ = ss.Close()
		}
	}
}

// serverFor is the SDK's getServer: the server of the request's user. The
// SDK calls it for every request, so it must be cheap.
func (h *hub) serverFor(r *http.Request) *mcp.Server {
	d, ok := r.Context().Value(ctxKey{}).(*storage.Token)
	if !ok {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	us := h.users[d.UserID]
	if us == nil {
		us = h.newUserServer(d.UserID)
		h.users[d.UserID] = us
	}
	us.lastUsed.Store(time.Now().UnixNano())
	return us.server
}

func (h *hub) newUserServer(user string) *userServer {
	us := &userServer{user: user, tools: map[string]string{}}
	us.lastUsed.Store(time.Now().UnixNano())
	us.server = mcp.NewServer(&mcp.Implementation{Name: "openanalyst-mcp-integration-service", Title: "OpenAnalyst", Version: "1"},
		&mcp.ServerOptions{
			Instructions: instructions,
			Logger:       slog.New(minLevel{h: h.log.Handler(), min: slog.LevelError}),
			// Tools, with list_changed, even before the first one is known.
			Capabilities: &mcp.ServerCapabilities{Tools: &mcp.ToolCapabilities{ListChanged: true}},
			// A tool list is one user's, and may change at any time: not to
			// be cached by anything between the client and us.
			SetCacheable: func(_ context.Context, _ mcp.Request, c *mcp.Cacheable) { c.TTLMs, c.CacheScope = 0, "private" },
		})
	us.server.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			switch method {
			case "tools/list":
				// Always list what the REST API would list now.
				if err := h.sync(ctx, us); err != nil {
					h.log.Warn("tool list unavailable", "err", err)
					return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "the tool list is unavailable; try again shortly"}
				}
			case "tools/call":
				// Every call, listed or not, goes to the workers, which check
				// that the tool is this user's: an unknown tool is an isError
				// result, like any other tool failure.
				if cr, ok := req.(*mcp.CallToolRequest); ok {
					return h.call(ctx, us.user, cr)
				}
			}
			return next(ctx, method, req)
		}
	})
	return us
}

// lookup returns a user's server if one is live.
func (h *hub) lookup(user string) *userServer {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.users[user]
}

// session returns the user's session id if this node holds it: another
// user's session, or one of another node, is nil.
func (h *hub) session(user, id string) *mcp.ServerSession {
	if us := h.lookup(user); us != nil {
		for ss := range us.server.Sessions() {
			if ss.ID() == id {
				return ss
			}
		}
	}
	return nil
}

// refresh re-reads a user's tools after a change; the SDK then sends
// notifications/tools/list_changed to the user's open sessions.
func (h *hub) refresh(user string) {
	us := h.lookup(user)
	if us == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := h.sync(ctx, us); err != nil {
		h.log.Warn("tool refresh failed", "err", err)
	}
}

// sync makes the server's tools those of GET /api/tools, adding, replacing
// and removing only what changed.
func (h *hub) sync(ctx context.Context, us *userServer) error {
	list, err := h.tools.List(ctx, us.user, tools.Filter{})
	if err != nil {
		return err
	}
	us.mu.Lock()
	defer us.mu.Unlock()
	want := make(map[string]*mcp.Tool, len(list))
	prints := make(map[string]string, len(list))
	for _, t := range list {
		mt := toMCP(t)
		want[mt.Name], prints[mt.Name] = mt, fingerprint(mt)
	}
	var gone []string
	for name := range us.tools {
		if _, ok := want[name]; !ok {
			gone = append(gone, name)
		}
	}
	if len(gone) > 0 {
		us.server.RemoveTools(gone...)
	}
	next := make(map[string]string, len(want))
	for name, mt := range want {
		if us.tools[name] == prints[name] {
			next[name] = prints[name]
			continue
		}
		if err := addTool(us.server, mt, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return h.call(ctx, us.user, req)
		}); err != nil {
			h.log.Warn("tool not served over MCP", "tool", name, "err", err)
			continue
		}
		next[name] = prints[name]
	}
	us.tools = next
	return nil
}

// addTool is Server.AddTool, which panics on a tool it cannot serve.
func addTool(s *mcp.Server, t *mcp.Tool, h mcp.ToolHandler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	s.AddTool(t, h)
	return nil
}

// toMCP turns a REST tool into an MCP tool.
func toMCP(t tools.Tool) *mcp.Tool {
	desc := strings.TrimSpace(t.Description)
	if desc == "" {
		desc = fmt.Sprintf("%s (%s).", t.Name, t.Provider)
	}
	return &mcp.Tool{Name: t.Name, Description: desc, InputSchema: objectSchema(t.InputSchema)}
}

// objectSchema returns a tool's input schema as MCP requires it: a JSON
// Schema object of type "object".
func objectSchema(raw json.RawMessage) json.RawMessage {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return json.RawMessage(`{"type":"object"}`)
	}
	switch m["type"] {
	case "object":
		return raw
	case nil:
		m["type"] = "object"
		if b, err := json.Marshal(m); err == nil {
			return b
		}
	}
	return json.RawMessage(`{"type":"object"}`)
}

func fingerprint(t *mcp.Tool) string {
	b, _ := json.Marshal(t)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// call runs a tool through the tools service, exactly as POST
// /api/tools/execute does, and turns what it returns into a tool result.
// Tool failures and infrastructure faults are isError results, never
// protocol errors.
func (h *hub) call(ctx context.Context, user string, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if req.Params == nil || strings.TrimSpace(req.Params.Name) == "" {
		return errorResult(errBody{Error: "a tool name is required", Code: "missing_field"}), nil
	}
	if err := api.CheckAction(req.Params.Name); err != nil {
		return errorResult(errBody{Error: err.Error(), Code: "invalid_field"}), nil
	}
	args := bytes.TrimSpace(req.Params.Arguments)
	if len(args) == 0 || bytes.Equal(args, []byte("null")) {
		args = nil
	} else if args[0] != '{' {
		return errorResult(errBody{Error: "arguments must be a JSON object", Code: "invalid_field"}), nil
	}
	res, err := h.tools.Execute(ctx, tools.Request{UserID: user, Action: req.Params.Name, Params: json.RawMessage(args),
		Actor: actorOf(req)})
	if err != nil {
		e := errBody{Error: err.Error(), Code: tools.CodeOf(err)}
		var te *tools.Error
		if errors.As(err, &te) && te.Code == tools.CodeTimeout {
			e.JobID = te.JobID // still queued: GET /api/jobs/{id} will have it
		}
		return errorResult(e), nil
	}
	// The REST body, as the worker encoded it, as text and as structured
	// content.
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: string(res.Body)}},
		StructuredContent: json.RawMessage(res.Body)}, nil
}

// actorOf names the token behind a call, for the audit log.
func actorOf(req *mcp.CallToolRequest) string {
	if req.Extra != nil && req.Extra.TokenInfo != nil {
		if id, ok := req.Extra.TokenInfo.Extra["token_id"].(string); ok {
			return "mcp_token:" + id
		}
	}
	return "mcp_token"
}

// errBody is a failure as REST would answer it.
type errBody struct {
	Success bool   `json:"success"`
	Error   string `json:"error"`
	Code    string `json:"code"`
	JobID   string `json:"job_id,omitempty"`
}

func errorResult(e errBody) *mcp.CallToolResult {
	e.Success = false
	b, _ := json.Marshal(e)
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: string(b)}},
		StructuredContent: json.RawMessage(b), IsError: true}
}

// sweep drops the servers of users with no session left, and forgets closed
// sessions in the limits, until stop is closed.
func (h *hub) sweep(stop <-chan struct{}, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		cutoff := time.Now().Add(-serverIdle).UnixNano()
		h.mu.Lock()
		for user, us := range h.users {
			if us.lastUsed.Load() > cutoff {
				continue
			}
			idle := true
			for range us.server.Sessions() {
				idle = false
				break
			}
			if idle {
				delete(h.users, user)
			}
		}
		h.mu.Unlock()
		h.lim.prune(func() map[string]bool { return h.liveSessions("") })
	}
}

// minLevel drops records below min: the SDK logs every refused protocol
// probe as a warning.
type minLevel struct {
	h   slog.Handler
	min slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.h.Enabled(ctx, l)
}
func (m minLevel) Handle(ctx context.Context, r slog.Record) error { return m.h.Handle(ctx, r) }
func (m minLevel) WithAttrs(a []slog.Attr) slog.Handler            { return minLevel{m.h.WithAttrs(a), m.min} }
func (m minLevel) WithGroup(n string) slog.Handler                 { return minLevel{m.h.WithGroup(n), m.min} }
