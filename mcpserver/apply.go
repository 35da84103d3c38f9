package mcpserver

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/openanalyst/mcp-integration-service/messages"
	"github.com/openanalyst/mcp-integration-service/tools"
)

// Deps are what the MCP endpoint is built from.
type Deps struct {
	Tools *tools.Service
	// DB is the service's own database, where token hashes are kept.
	DB *mongo.Database
	// NC carries tools-changed events, so open sessions get list_changed.
	NC *nats.Conn
	// PublicBase is OAUTH_REDIRECT_BASE: the public URL for mcp_url.
	PublicBase string
	// RateLimit is requests per minute per token (0: off); MaxSessions the
	// open sessions per token.
	RateLimit, MaxSessions int
	Logger                 *slog.Logger
}

// Server is the MCP endpoint (/mcp) and its token routes (/api/mcp/tokens).
type Server struct {
	hub    *hub
	tokens *tokenRoutes
	sub    *nats.Subscription
	stop   chan struct{}
}

// New builds the MCP endpoint.
func New(d Deps) (*Server, error) {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	log := d.Logger.With("component", "mcp")
	store := newTokenStore(d.DB)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := store.ensureIndexes(ctx); err != nil {
		log.Warn("mcp token indexes not created; lookups will scan", "err", err)
	}
	s := &Server{hub: newHub(d.Tools, store, newLimits(d.RateLimit, d.MaxSessions), log),
		tokens: &tokenRoutes{store: store, publicBase: d.PublicBase}, stop: make(chan struct{})}
	if d.NC != nil {
		// One subscription per process: a user's open sessions learn that
		// their tools changed, whichever API node made the change.
		sub, err := d.NC.Subscribe(messages.EventToolsChanged, func(m *nats.Msg) { go s.hub.refresh(string(m.Data)) })
		if err != nil {
			log.Warn("mcp: no tools-changed events; sessions will not get list_changed", "err", err)
		}
		s.sub = sub
	}
	go s.hub.sweep(s.stop, time.Minute)
	return s, nil
}

// Handler serves /mcp (streamable HTTP: POST messages, GET the session's
// event stream, DELETE the session).
func (s *Server) Handler() http.Handler { return s.hub }

// TokenRoutes serves /api/mcp/tokens; mount it behind the API key.
func (s *Server) TokenRoutes() http.Handler {
	r := chi.NewRouter()
	s.tokens.mount(r)
	return r
}

// Close stops the sweeper and the event subscription.
func (s *Server) Close() {
	close(s.stop)
	if s.sub != nil {
		_ = s.sub.Unsubscribe()
	}
}
