package main

import (
	"net/http"

	"github.com/openanalyst/mcp-integration-service/api"
	"github.com/openanalyst/mcp-integration-service/mcpserver"
	"github.com/openanalyst/mcp-integration-service/service"
	"github.com/openanalyst/mcp-integration-service/tracing"
)

// observability adds the MCP endpoint, and tracing and rate limits on the
// key-checked /api routes. Tracing goes first so that a 429 still gets a span.
func observability(opts *service.Options) {
	mcpserver.Apply(opts)
	opts.Middleware = append(opts.Middleware,
		func(*service.Instance) func(http.Handler) http.Handler { return tracing.Middleware },
		func(in *service.Instance) func(http.Handler) http.Handler {
			return api.RateLimit(in.Config.RateLimitPerKey, in.Config.RateLimitPerUser)
		})
}
