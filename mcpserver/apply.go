package mcpserver

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/openanalyst/mcp-integration-service/messages"
	"github.com/openanalyst/mcp-integration-service/storage"
	"github.com/openanalyst/mcp-integration-service/tools"
)

// Verifier checks the bearer token of a request: storage.Tokens.
type Verifier interface {
	Verify(ctx context.Context, token string) (*storage.Token, error)
}

// Deps are what the MCP endpoint is built from.
type Deps struct {
	Tools *tools.Service
	// Tokens verifies the bearer tokens minted under /api/mcp/tokens.
	Tokens Verifier
	// NC carries tools-changed events, so open sessions get list_changed.
	NC *nats.Conn
	// RateLimit is requests per minute per token (0: off); MaxSessions the
	// open sessions per token.
	RateLimit, MaxSessions int
	Logger                 *slog.Logger
}

// Server is the MCP endpoint (/mcp).
type Server struct {
	hub  *hub
	sub  *nats.Subscription
	stop chan struct{}
}

// New builds the MCP endpoint.
func New(d Deps) (*Server, error) {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	log := d.Logger.With("component", "mcp")
	s := &Server{hub: newHub(d.Tools, d.Tokens, newLimits(d.RateLimit, d.MaxSessions), log), stop: make(chan struct{})}
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

// Close stops the sweeper and the event subscription.
func (s *Server) Close() {
	close(s.stop)
	if s.sub != nil {
		_ = s.sub.Unsubscribe()
	}
}
