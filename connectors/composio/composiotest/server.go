package composiotest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Connected account statuses, as Composio spells them.
const (
	// StatusInitiated: a link was created; the user has not consented yet.
	StatusInitiated = "INITIATED"
	// StatusActive: the user consented; tools can run on the account.
	StatusActive = "ACTIVE"
	// StatusFailed: the connection attempt failed.
	StatusFailed = "FAILED"
	// StatusExpired: the credentials expired.
	StatusExpired = "EXPIRED"
	// StatusInactive: the account was disabled.
	StatusInactive = "INACTIVE"
	// StatusRevoked: access was revoked.
	StatusRevoked = "REVOKED"
)

const (
	// DefaultAPIKey is the API key a Server accepts unless WithAPIKey says
	// otherwise.
	DefaultAPIKey = "composiotest-key"
	// DefaultPageSize is the largest page a list answers with unless
	// WithPageSize says otherwise. It is small so pagination is exercised.
	DefaultPageSize = 5
	// DefaultLinkTTL is how long a connection link stays usable.
	DefaultLinkTTL = 10 * time.Minute
)

// Prefixes are the API version prefixes the server answers under.
var Prefixes = []string{"/api/v3", "/api/v3.1"}

// Option configures a Server.
type Option func(*config)

type config struct {
	apiKey         string
	pageSize       int
	authConfigs    map[string]string // auth config id -> toolkit slug
	legacyCallback bool
	legacySpelling bool
	latency        time.Duration
	publicURL      string
	linkTTL        time.Duration
}

// WithAPIKey sets the API key the server requires in x-api-key.
func WithAPIKey(key string) Option { return func(c *config) { c.apiKey = key } }

// WithAuthConfig makes the auth config id valid for a toolkit, in addition
// to the default ac_gmail, ac_slack and ac_bigquery. The toolkit is one of
// Composio's real slugs (gmail, slack, googlebigquery); New panics on any
// other, as Composio has no auth config for a toolkit it does not know.
func WithAuthConfig(toolkit, id string) Option {
	return func(c *config) { c.authConfigs[id] = toolkit }
}

// WithPageSize sets the largest page a list answers with (default
// DefaultPageSize). A smaller limit query parameter is honoured.
func WithPageSize(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.pageSize = n
		}
	}
}

// WithLegacyCallback makes consent redirects use the older flow's camel case
// query (connectedAccountId and appName) instead of connected_account_id.
func WithLegacyCallback() Option { return func(c *config) { c.legacyCallback = true } }

// WithLegacySuccessSpelling makes tool execution answer with the old
// old misspelled success field (successful with a double l) instead of
// "successful".
func WithLegacySuccessSpelling() Option { return func(c *config) { c.legacySpelling = true } }

// WithLatency delays every API answer by d (see also SetLatency).
func WithLatency(d time.Duration) Option { return func(c *config) { c.latency = d } }

// WithPublicURL sets the base URL put in redirect_url, for a sandbox that
// browsers reach through another address than the one it listens on.
func WithPublicURL(u string) Option {
	return func(c *config) { c.publicURL = strings.TrimRight(u, "/") }
}

// WithLinkTTL sets how long a connection link stays usable (default
// DefaultLinkTTL).
func WithLinkTTL(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.linkTTL = d
		}
	}
}

// Account is a snapshot of a connected account held by the server.
type Account struct {
	// ID identifies the account, e.g. "ca_…".
	ID string
	// UserID is the Composio user id given when the link was created.
	UserID string
	// Toolkit is Composio's toolkit slug: "gmail", "slack" or
	// "googlebigquery".
	Toolkit string
	// AuthConfigID is the auth config the link was created with.
	AuthConfigID string
	// Status is one of the Status constants.
	Status string
	// StatusReason explains a FAILED or EXPIRED status.
	StatusReason string
	// Alias is the alias given when the link was created.
	Alias string
	// CallbackURL is the callback URL given when the link was created.
	CallbackURL string
	// LinkToken is the token of the link that created the account.
	LinkToken string
	// LinkExpiresAt is when the link stops working.
	LinkExpiresAt time.Time
	// Data is the connection data (set when the account becomes ACTIVE).
	Data map[string]any
	// Deleted is true once the account was deleted through the API.
	Deleted bool
	// CreatedAt is when the account was created.
	CreatedAt time.Time
	// UpdatedAt is when the account last changed.
	UpdatedAt time.Time

	seq int
}

// Request is one request the server received.
type Request struct {
	// Method is the HTTP method.
	Method string
	// Path is the full URL path as sent (escaped), e.g. "/api/v3/tools".
	Path string
	// RelPath is Path without the version prefix, e.g. "/tools".
	RelPath string
	// Query is the parsed query string.
	Query url.Values
	// Header is a copy of the request headers.
	Header http.Header
	// Body is the request body.
	Body []byte
}

// Execution is one tool execution that reached the tool: the account and
// arguments passed validation far enough for the tool to run or to report
// a failure in its answer.
type Execution struct {
	// Tool is the tool slug.
	Tool string
	// UserID is the user_id (or deprecated entity_id) sent.
	UserID string
	// ConnectedAccountID is the account the tool ran on.
	ConnectedAccountID string
	// Arguments are the arguments sent.
	Arguments map[string]any
	// Version is the version sent, if any.
	Version string
	// Successful reports the answer's successful field.
	Successful bool
	// Error is the answer's error message, if any.
	Error string
	// LogID is the answer's log_id.
	LogID string
}

// ToolCall is what a ToolHandler is given.
type ToolCall struct {
	// Tool is the tool slug.
	Tool string
	// Arguments are the arguments sent, already checked against the tool's
	// required parameters.
	Arguments map[string]any
	// Account is the connected account the tool runs on.
	Account Account
}

// ToolHandler implements a tool. Its result becomes the answer's data; an
// error becomes a failed execution (successful false, with its message).
type ToolHandler func(call ToolCall) (any, error)

type fault struct {
	method     string
	path       string // relative or full path; "" matches any
	remaining  int
	status     int
	retryAfter string
}

// Server is a fake Composio API. Create it with New, Start or NewServer.
type Server struct {
	cfg    config
	url    string
	closer func()

	mu           sync.Mutex
	toolkits     []*toolkitDef
	tools        []*toolDef
	accounts     map[string]*Account
	seq          int
	links        map[string]string // link token -> account id
	nextOutcomes []string
	outcomes     map[string]string // account id -> consent outcome
	handlers     map[string]ToolHandler
	faults       []*fault
	latency      time.Duration
	requests     []Request
	executions   []Execution
	deleted      []string
	now          func() time.Time
}

func newServer(opts []Option) *Server {
	cfg := config{
		apiKey:   DefaultAPIKey,
		pageSize: DefaultPageSize,
		authConfigs: map[string]string{
			"ac_gmail":    "gmail",
			"ac_slack":    "slack",
			"ac_bigquery": "googlebigquery",
		},
		linkTTL: DefaultLinkTTL,
	}
	for _, o := range opts {
		o(&cfg)
	}
	s := &Server{
		cfg:      cfg,
		accounts: map[string]*Account{},
		links:    map[string]string{},
		outcomes: map[string]string{},
		handlers: map[string]ToolHandler{},
		latency:  cfg.latency,
		now:      time.Now,
	}
	s.toolkits, s.tools = seed()
	for id, tk := range cfg.authConfigs {
		s.mustKnowToolkit("WithAuthConfig "+id, tk)
	}
	for _, t := range s.tools {
		s.handlers[t.Slug] = t.handler
	}
	return s
}

// New starts a Server on a random local port (an httptest.Server). Call
// Close when done.
func New(opts ...Option) *Server {
	s := newServer(opts)
	hs := httptest.NewUnstartedServer(s.Handler())
	s.url = "http://" + hs.Listener.Addr().String()
	if s.cfg.publicURL == "" {
		s.cfg.publicURL = s.url
	}
	hs.Start()
	s.closer = hs.Close
	return s
}

// Start is New for tests: it registers Close with t.Cleanup.
func Start(t interface{ Cleanup(func()) }, opts ...Option) *Server {
	s := New(opts...)
	t.Cleanup(s.Close)
	return s
}

// NewServer starts a Server listening on addr (e.g. "127.0.0.1:8090"), for
// running the fake as a local sandbox outside tests. Call Close when done.
func NewServer(addr string, opts ...Option) (*Server, error) {
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("composiotest: listen %s: %w", addr, err)
	}
	s := newServer(opts)
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.url = "http://" + dialableAddr(ln.Addr())
	if s.cfg.publicURL == "" {
		s.cfg.publicURL = s.url
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hs.Serve(ln) // returns http.ErrServerClosed after Close
	}()
	var once sync.Once
	s.closer = func() {
		once.Do(func() {
			_ = hs.Close()
			<-done
		})
	}
	return s, nil
}

// dialableAddr turns a wildcard listen address into a loopback one.
func dialableAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// Close stops the server.
func (s *Server) Close() {
	if s.closer != nil {
		s.closer()
	}
}

// URL is the server's base URL (use it as the client's BaseURL).
func (s *Server) URL() string { return s.url }

// APIKey is the API key the server requires.
func (s *Server) APIKey() string { return s.cfg.apiKey }

// Handler returns the server's HTTP handler, for mounting it elsewhere. A
// Server built by New or NewServer already serves it; when mounting it on
// another server, build that Server with WithPublicURL so redirect_url
// points at the right place.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, p := range Prefixes {
		mux.HandleFunc("GET "+p+"/toolkits", s.listToolkits)
		mux.HandleFunc("GET "+p+"/toolkits/{slug}", s.getToolkit)
		mux.HandleFunc("POST "+p+"/connected_accounts/link", s.createLink)
		mux.HandleFunc("GET "+p+"/connected_accounts", s.listAccounts)
		mux.HandleFunc("GET "+p+"/connected_accounts/{id}", s.getAccount)
		mux.HandleFunc("DELETE "+p+"/connected_accounts/{id}", s.deleteAccount)
		mux.HandleFunc("GET "+p+"/tools", s.listTools)
		mux.HandleFunc("GET "+p+"/tools/{slug}", s.getTool)
		mux.HandleFunc("POST "+p+"/tools/execute/{slug}", s.executeTool)
	}
	mux.HandleFunc("GET /consent/{token}", s.consent)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "Route "+r.Method+" "+r.URL.Path+" not found", "NotFound")
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.serve(mux, w, r)
	})
}

func (s *Server) serve(mux http.Handler, w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "could not read request body", "BadRequest")
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	path := r.URL.EscapedPath()
	rel := relPath(path)
	isAPI := rel != path

	s.mu.Lock()
	s.requests = append(s.requests, Request{
		Method:  r.Method,
		Path:    path,
		RelPath: rel,
		Query:   r.URL.Query(),
		Header:  r.Header.Clone(),
		Body:    body,
	})
	latency := s.latency
	s.mu.Unlock()

	if !isAPI {
		mux.ServeHTTP(w, r)
		return
	}
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-r.Context().Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	key := r.Header.Get("x-api-key")
	if key == "" || subtle.ConstantTimeCompare([]byte(key), []byte(s.cfg.apiKey)) != 1 {
		writeError(w, http.StatusUnauthorized, "Invalid or missing API key. Pass your project API key in the x-api-key header.", "Unauthorized")
		return
	}
	if f := s.takeFault(r.Method, path, rel); f != nil {
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		msg := "Internal server error (injected fault)"
		switch {
		case f.status == http.StatusTooManyRequests:
			msg = "Rate limit exceeded. Please retry after some time."
		case f.status < 500:
			msg = http.StatusText(f.status) + " (injected fault)"
		}
		writeError(w, f.status, msg, strings.ReplaceAll(http.StatusText(f.status), " ", ""))
		return
	}
	mux.ServeHTTP(w, r)
}

// relPath strips a version prefix from p; p itself when it has none.
func relPath(p string) string {
	for _, pre := range []string{"/api/v3.1", "/api/v3"} {
		if rest, ok := strings.CutPrefix(p, pre); ok && (rest == "" || rest[0] == '/') {
			return rest
		}
	}
	return p
}

func (s *Server) takeFault(method, full, rel string) *fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.remaining <= 0 {
			continue
		}
		if f.method != "" && !strings.EqualFold(f.method, method) {
			continue
		}
		if f.path != "" && f.path != rel && f.path != full {
			continue
		}
		f.remaining--
		cp := *f
		if f.remaining == 0 {
			s.faults = slices.Delete(s.faults, i, i+1)
		}
		return &cp
	}
	return nil
}

// FailNext makes the next n API requests answer with status (e.g. 429 or
// 503) and, when retryAfter is not empty, a Retry-After header with that
// value ("2" or an HTTP date).
func (s *Server) FailNext(n, status int, retryAfter string) {
	s.FailNextPath("", "", n, status, retryAfter)
}

// FailNextPath is FailNext restricted to one method ("" for any) and path.
// The path is relative to the version prefix (e.g.
// "/connected_accounts/link") or a full path; "" matches any path.
func (s *Server) FailNextPath(method, path string, n, status int, retryAfter string) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{method: method, path: path, remaining: n, status: status, retryAfter: retryAfter})
}

// ClearFaults drops every pending injected fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// SetLatency delays every later API answer by d (0 to stop). A request whose
// client gives up stops waiting.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// SetNextOutcome makes the next consent that is not denied leave its account
// in status (e.g. StatusFailed or StatusExpired) instead of ACTIVE, while the
// browser is still redirected with status=success. Calls queue up.
func (s *Server) SetNextOutcome(status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextOutcomes = append(s.nextOutcomes, status)
}

// SetOutcome is SetNextOutcome for one account: its consent leaves it in
// status. It takes precedence over SetNextOutcome.
func (s *Server) SetOutcome(accountID, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outcomes[accountID] = status
}

// SetAccountStatus changes an account's status, e.g. to simulate a token
// that expires later. It reports whether the account exists.
func (s *Server) SetAccountStatus(id, status, reason string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[id]
	if !ok {
		return false
	}
	a.Status, a.StatusReason, a.UpdatedAt = status, reason, s.now().UTC()
	return true
}

// SetToolHandler replaces the behaviour of a seeded tool. It reports
// whether the tool exists.
func (s *Server) SetToolHandler(slug string, h ToolHandler) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.findTool(slug) == nil || h == nil {
		return false
	}
	s.handlers[slug] = h
	return true
}

// AddAccount stores an account directly, skipping the link flow. Empty
// fields get defaults: an id, status ACTIVE, the toolkit's default auth
// config, connection data and timestamps. It returns the stored account.
// It panics when Toolkit is not one of Composio's slugs (e.g. "bigquery"
// for "googlebigquery"), as Composio would never hold such an account.
func (s *Server) AddAccount(a Account) Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustKnowToolkit("AddAccount", a.Toolkit)
	now := s.now().UTC()
	if a.ID == "" {
		a.ID = newID("ca_")
	}
	if a.Status == "" {
		a.Status = StatusActive
	}
	if a.AuthConfigID == "" {
		for id, tk := range s.cfg.authConfigs {
			if tk == a.Toolkit && (a.AuthConfigID == "" || id < a.AuthConfigID) {
				a.AuthConfigID = id
			}
		}
	}
	if a.Data == nil && a.Status == StatusActive {
		a.Data = connectionData(a.Toolkit, a.UserID)
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = now
	}
	if a.UpdatedAt.IsZero() {
		a.UpdatedAt = a.CreatedAt
	}
	s.seq++
	a.seq = s.seq
	a.Data = copyMap(a.Data)
	stored := a
	s.accounts[a.ID] = &stored
	return snapshot(&stored)
}

// mustKnowToolkit panics on a toolkit slug Composio does not have: a test
// that uses one would pass here and fail against the real API.
func (s *Server) mustKnowToolkit(what, slug string) {
	if s.findToolkit(slug) != nil && slug == strings.ToLower(slug) {
		return
	}
	known := make([]string, len(s.toolkits))
	for i, t := range s.toolkits {
		known[i] = t.Slug
	}
	panic(fmt.Sprintf("composiotest: %s: Composio has no toolkit %q; its slugs are %s",
		what, slug, strings.Join(known, ", ")))
}

// Account returns a snapshot of an account, including deleted ones.
func (s *Server) Account(id string) (Account, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[id]
	if !ok {
		return Account{}, false
	}
	return snapshot(a), true
}

// Accounts returns snapshots of every account, oldest first.
func (s *Server) Accounts() []Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Account, 0, len(s.accounts))
	for _, a := range s.accounts {
		out = append(out, snapshot(a))
	}
	slices.SortFunc(out, func(x, y Account) int { return x.seq - y.seq })
	return out
}

// Requests counts the requests received for method ("" for any) and path,
// which is relative to the version prefix (e.g. "/connected_accounts/link",
// counting both prefixes) or a full path.
func (s *Server) Requests(method, path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if (method == "" || strings.EqualFold(method, r.Method)) && (path == r.RelPath || path == r.Path) {
			n++
		}
	}
	return n
}

// TotalRequests counts every request received.
func (s *Server) TotalRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

// RequestLog returns every request received, oldest first.
func (s *Server) RequestLog() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		r.Query = cloneValues(r.Query)
		r.Header = r.Header.Clone()
		r.Body = bytes.Clone(r.Body)
		out[i] = r
	}
	return out
}

// Executions returns the tool executions that reached a tool, oldest first.
func (s *Server) Executions() []Execution {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Execution, len(s.executions))
	for i, e := range s.executions {
		e.Arguments = copyMap(e.Arguments)
		out[i] = e
	}
	return out
}

// Deleted returns the ids of the accounts deleted through the API, in order.
func (s *Server) Deleted() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deleted)
}

func snapshot(a *Account) Account {
	c := *a
	c.Data = copyMap(a.Data)
	return c
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

// copyMap deep-copies JSON-like data.
func copyMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = copyValue(v)
	}
	return out
}

func copyValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		return copyMap(t)
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = copyValue(x)
		}
		return out
	default:
		return v
	}
}

// newID returns prefix plus 12 random characters.
func newID(prefix string) string {
	return prefix + strings.ToLower(rand.Text()[:12])
}

// writeJSON writes v as a JSON answer.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"message":"encode answer","status":500}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeError writes Composio's error envelope.
func writeError(w http.ResponseWriter, status int, msg, slug string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{
		"message":    msg,
		"slug":       slug,
		"status":     status,
		"request_id": newID("req_"),
	}})
}

// errBadRequest marks a client error found while decoding a request.
var errBadRequest = errors.New("bad request")

// decodeBody decodes a JSON object request body.
func decodeBody(r *http.Request, v any) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return fmt.Errorf("%w: %w", errBadRequest, err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return fmt.Errorf("%w: request body is required", errBadRequest)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: invalid JSON body: %w", errBadRequest, err)
	}
	return nil
}
