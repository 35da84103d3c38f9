package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/openanalyst/mcp-integration-service/connectors"
	"github.com/openanalyst/mcp-integration-service/keyring"
	"github.com/openanalyst/mcp-integration-service/messages"
	"github.com/openanalyst/mcp-integration-service/metrics"
	"github.com/openanalyst/mcp-integration-service/queue"
	"github.com/openanalyst/mcp-integration-service/storage"
	"github.com/openanalyst/mcp-integration-service/tools"
	"github.com/openanalyst/mcp-integration-service/tracing"
)

// Deps are what the API node runs on.
type Deps struct {
	APIKey string
	Store  storage.Store
	Ring   *keyring.Keyring
	// Tools lists and runs tools, and submits every job.
	Tools    *tools.Service
	Statuses *queue.Statuses
	NC       *nats.Conn
	JS       jetstream.JetStream
	// Policy refuses database hosts before anything is stored or dialled.
	Policy connectors.HostPolicy
	// JobTimeout is how long a synchronous call waits for its worker.
	JobTimeout time.Duration
	// Integrations serves /api/integrations*; nil answers "not configured".
	Integrations Integrations
	// CallbackPerIPPerMin limits the OAuth callback, which needs no key,
	// per client IP and minute: 0 is the default (30), negative is off.
	CallbackPerIPPerMin int
	// DatabaseChanged, when set, drops this process's caches of a database
	// (tool routes, a worker's pool) the moment it is edited or removed,
	// before the answer goes out; other processes learn it from the
	// EventDatabaseChanged message. May be nil.
	DatabaseChanged func(dbID string)
	// Audit records executes, connects and disconnects. May be nil.
	Audit func(e storage.AuditEntry)
	// Observe records each request (metrics). May be nil.
	Observe func(route, method string, status int, d time.Duration)
	// Load counts the requests in flight (procs.Load). May be nil.
	Load interface {
		Begin()
		End()
	}
	// RateLimitPerKey and RateLimitPerUser are requests per minute (0: off).
	RateLimitPerKey, RateLimitPerUser int
	// Tokens keeps the MCP tokens of /api/mcp/tokens; nil answers 503.
	Tokens *storage.Tokens
	// PublicBase is OAUTH_REDIRECT_BASE, the service's public URL: the base
	// of a minted token's mcp_url when set.
	PublicBase string
	// The other endpoints of the process, mounted here beside /api; any may
	// be nil.
	MCP, UI, Metrics http.Handler
	Logger           *slog.Logger
}

// Server is the REST API.
type Server struct {
	d      Deps
	keySum [32]byte
	log    *slog.Logger
	router chi.Router
}

// New builds the router.
func New(d Deps) *Server {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.JobTimeout <= 0 {
		d.JobTimeout = 30 * time.Second
	}
	s := &Server{d: d, keySum: sha256.Sum256([]byte(d.APIKey)), log: d.Logger}
	r := chi.NewRouter()
	r.Use(middleware.RequestID, s.logRequests, s.recoverPanics)
	r.Get("/healthz", s.liveness)
	r.Get("/readyz", s.readiness)
	r.Route("/api", func(r chi.Router) {
		r.Get("/tools/health", s.readiness)
		r.Method(http.MethodGet, "/openapi.json", OpenAPIHandler())
		r.With(callbackLimit(d.CallbackPerIPPerMin)).Get("/integrations/callback", s.integrationCallback)
		r.Group(func(r chi.Router) {
			r.Use(s.requireKey)
			// Tracing first, so that a 429 still gets a span.
			r.Use(tracing.Middleware, RateLimit(d.RateLimitPerKey, d.RateLimitPerUser))
			r.Get("/databases/types", s.databaseTypes)
			r.Get("/databases/schema", s.databaseSchema)
			r.Post("/databases/test", s.databaseTest)
			r.Post("/databases/connect", s.databaseConnect)
			r.Get("/databases", s.databaseList)
			r.Post("/databases/disconnect", s.databaseDisconnect)
			r.Get("/databases/{db_id}", s.databaseGet)
			r.Patch("/databases/{db_id}", s.databaseUpdate)
			r.Post("/databases/{db_id}/test", s.databaseRetest)
			r.Get("/tools", s.toolsList)
			r.Post("/tools/execute", s.toolsExecute)
			r.Get("/jobs/{job_id}", s.jobGet)
			r.Get("/integrations", s.integrationsList)
			r.Post("/integrations/connect", s.integrationsConnect)
			r.Get("/integrations/connected", s.integrationsConnected)
			r.Post("/integrations/disconnect", s.integrationsDisconnect)
			r.Post("/integrations/{integration_id}/refresh", s.integrationsRefresh)
			r.Post("/mcp/tokens", s.tokenCreate)
			r.Get("/mcp/tokens", s.tokenList)
			r.Delete("/mcp/tokens/{token_id}", s.tokenRevoke)
		})
		r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, errNotFound("route_not_found", "no such API route"))
		})
		r.MethodNotAllowed(func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, &apiError{status: http.StatusMethodNotAllowed, code: "method_not_allowed", msg: "method not allowed on this route"})
		})
	})
	// Outside /api too, an unknown route or method answers in the envelope.
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, errNotFound("route_not_found", "no such route"))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, &apiError{status: http.StatusMethodNotAllowed, code: "method_not_allowed", msg: "method not allowed on this route"})
	})
	if d.Metrics != nil {
		r.Method(http.MethodGet, "/metrics", d.Metrics)
	}
	if d.MCP != nil {
		r.Post("/mcp", d.MCP.ServeHTTP)
		r.Get("/mcp", d.MCP.ServeHTTP)
		r.Delete("/mcp", d.MCP.ServeHTTP)
	}
	if d.UI != nil {
		r.Get("/ui", func(w http.ResponseWriter, r *http.Request) {
			target := "/ui/"
			if r.URL.RawQuery != "" {
				target += "?" + r.URL.RawQuery // keep an OAuth return's status=…&provider=…
			}
			http.Redirect(w, r, target, http.StatusMovedPermanently) //nolint:gosec // G710: always the local path /ui/; only the query is carried over
		})
		r.Mount("/ui/", http.StripPrefix("/ui", d.UI))
	}
	s.router = r
	return s
}

// Router exposes the routes, e.g. for the OpenAPI route check.
func (s *Server) Router() chi.Router { return s.router }

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.d.Load != nil {
		s.d.Load.Begin()
		defer s.d.Load.End()
	}
	s.router.ServeHTTP(w, r)
}

// requireKey checks X-API-Key in constant time.
func (s *Server) requireKey(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := r.Header.Get("X-API-Key")
		sum := sha256.Sum256([]byte(got))
		if got == "" || subtle.ConstantTimeCompare(sum[:], s.keySum[:]) != 1 {
			writeError(w, &apiError{status: http.StatusUnauthorized, code: "unauthorized", msg: "missing or invalid X-API-Key"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		// The route pattern, never the raw path; a standard method or OTHER.
		route := chi.RouteContext(r.Context()).RoutePattern()
		method := metrics.Method(r.Method)
		status := ww.Status()
		if status == 0 {
			status = http.StatusOK // nothing written: net/http sends 200
		}
		if s.d.Observe != nil {
			s.d.Observe(route, method, status, time.Since(start))
		}
		// A 503 is an expected state (Composio not configured, NATS or
		// storage down, each reported where it happens): not a warning.
		lvl := slog.LevelDebug
		if status >= 500 && status != http.StatusServiceUnavailable {
			lvl = slog.LevelWarn
		}
		// Never the query string: it may carry OAuth state or user ids only,
		// but bodies and keys are never logged either.
		s.log.Log(r.Context(), lvl, "http", "request_id", middleware.GetReqID(r.Context()), "method", method,
			"route", route, "status", status, "ms", time.Since(start).Milliseconds())
	})
}

func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if e, ok := p.(error); ok && errors.Is(e, http.ErrAbortHandler) {
					panic(p)
				}
				s.log.Error("panic in handler", "request_id", middleware.GetReqID(r.Context()), "panic", p)
				writeError(w, &apiError{status: http.StatusInternalServerError, code: "internal_error", msg: "internal error"})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (s *Server) liveness(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readiness is /readyz and /api/tools/health: 200 when NATS, the job
// stream and storage answer, else 503 with what is wrong.
func (s *Server) readiness(w http.ResponseWriter, r *http.Request) {
	h := s.check(r.Context())
	status := http.StatusOK
	if h.Status != "ok" {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, h)
}

type healthReport struct {
	Status  string                    `json:"status"`
	NATS    string                    `json:"nats"`
	Storage string                    `json:"storage"`
	Workers map[string]consumerHealth `json:"workers,omitempty"`
}

type consumerHealth struct {
	Pending     uint64 `json:"pending"`
	AckPending  int    `json:"in_flight"`
	Waiting     int    `json:"waiting_pulls"`
	Redelivered int    `json:"redelivered"`
}

func (s *Server) check(ctx context.Context) healthReport {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	h := healthReport{Status: "ok", NATS: "ok", Storage: "ok"}
	if s.d.NC == nil || s.d.NC.Status() != nats.CONNECTED {
		h.NATS, h.Status = "unavailable", "degraded"
	} else if s.d.JS != nil {
		h.Workers = map[string]consumerHealth{}
		for _, k := range []string{"execute", "test", "oauth", "fast-execute", "fast-test"} {
			stream := messages.JobStream
			if strings.HasPrefix(k, "fast-") {
				stream = messages.FastStream
			}
			c, err := s.d.JS.Consumer(ctx, stream, "mcp-"+k)
			if err != nil {
				h.NATS, h.Status = "job stream unavailable: "+err.Error(), "degraded"
				break
			}
			info := c.CachedInfo()
			if fresh, err := c.Info(ctx); err == nil {
				info = fresh
			}
			h.Workers[k] = consumerHealth{Pending: info.NumPending, AckPending: info.NumAckPending,
				Waiting: info.NumWaiting, Redelivered: info.NumRedelivered}
		}
	}
	if err := s.d.Store.Ping(ctx); err != nil {
		h.Storage, h.Status = "unavailable", "degraded"
	}
	return h
}

// audit records one audited action; never its parameters or results.
// Callers pass validated values; a target is still cut to 128 bytes.
func (s *Server) audit(ctx context.Context, action, userID, target string, status int, start time.Time, jobID string) {
	if s.d.Audit == nil || userID == "" {
		return
	}
	if len(target) > maxAction {
		target = strings.ToValidUTF8(target[:maxAction], "")
	}
	outcome := "ok"
	if status >= 400 {
		outcome = "error"
	}
	s.d.Audit(storage.AuditEntry{UserID: userID, Actor: actorAPIKey, Action: action, Target: target, Outcome: outcome,
		Status: status, DurationMS: time.Since(start).Milliseconds(), RequestID: middleware.GetReqID(ctx), JobID: jobID})
}

// actorAPIKey is who acts in every REST request, for the audit log: the API
// key (an MCP call names its token instead).
const actorAPIKey = "api_key"
