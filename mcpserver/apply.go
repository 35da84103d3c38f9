package mcpserver

import (
	"context"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go"

	"github.com/openanalyst/mcp-integration-service/messages"
	"github.com/openanalyst/mcp-integration-service/service"
)

// Apply adds the MCP parts to a process's options: the token routes under
// /api/mcp/tokens (behind the API key) and the /mcp endpoint. Worker-only
// processes ignore them.
func Apply(o *service.Options) {
	var (
		mu     sync.Mutex
		stores = map[*service.Instance]*tokenStore{}
	)
	// Both hooks run while the API router is built, before in.API is set:
	// the hub reads in.API at request time.
	storeOf := func(in *service.Instance) *tokenStore {
		mu.Lock()
		defer mu.Unlock()
		s := stores[in]
		if s == nil {
			s = newTokenStore(in.Store.DB())
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := s.ensureIndexes(ctx); err != nil {
				in.Logger.Warn("mcp token indexes not created; lookups will scan", "err", err)
			}
			cancel()
			stores[in] = s
		}
		return s
	}
	o.APIRoutes = append(o.APIRoutes, func(r chi.Router, in *service.Instance) {
		(&tokenRoutes{store: storeOf(in), publicBase: in.Config.OAuthRedirectBase}).mount(r)
	})
	o.Mount = append(o.Mount, func(r chi.Router, in *service.Instance) {
		h := newHub(in, storeOf(in))
		// Streamable HTTP: POST messages, GET the session's event stream,
		// DELETE the session.
		r.Post("/mcp", h.ServeHTTP)
		r.Get("/mcp", h.ServeHTTP)
		r.Delete("/mcp", h.ServeHTTP)
		if in.NC == nil {
			return
		}
		// One subscription per process: a user's open sessions learn that
		// their tools changed, whichever API node made the change.
		if _, err := in.NC.Subscribe(messages.EventToolsChanged, func(m *nats.Msg) {
			go h.refresh(string(m.Data))
		}); err != nil {
			in.Logger.Warn("mcp: no tools-changed events; sessions will not get list_changed", "err", err)
		}
		go h.sweep(in.NC, time.Minute)
	})
}
