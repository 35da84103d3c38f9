package main

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/openanalyst/mcp-integration-service/api"
	"github.com/openanalyst/mcp-integration-service/mcpserver"
	"github.com/openanalyst/mcp-integration-service/service"
	"github.com/openanalyst/mcp-integration-service/tracing"
	"github.com/openanalyst/mcp-integration-service/web"
)

// observability adds the MCP endpoint, and tracing and rate limits on the
// key-checked /api routes. Tracing goes first so that a 429 still gets a span.
func observability(opts *service.Options) {
	mcpserver.Apply(opts)
	// The connectors page, a reference client of the public API.
	opts.Mount = append(opts.Mount, func(r chi.Router, _ *service.Instance) {
		r.Get("/ui", func(w http.ResponseWriter, r *http.Request) {
			target := "/ui/"
			if r.URL.RawQuery != "" {
				target += "?" + r.URL.RawQuery // keep an OAuth return's status=…&provider=…
			}
			http.Redirect(w, r, target, http.StatusMovedPermanently) //nolint:gosec // G710: always the local path /ui/; only the query is carried over
		})
		r.Mount("/ui/", http.StripPrefix("/ui", web.Handler()))
	})
	opts.Middleware = append(opts.Middleware,
		func(*service.Instance) func(http.Handler) http.Handler { return tracing.Middleware },
		func(in *service.Instance) func(http.Handler) http.Handler {
			return api.RateLimit(in.Config.RateLimitPerKey, in.Config.RateLimitPerUser)
		})
}
