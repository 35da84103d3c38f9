package main

import (
	"github.com/openanalyst/mcp-integration-service/config"
	"github.com/openanalyst/mcp-integration-service/integrations"
	"github.com/openanalyst/mcp-integration-service/service"
)

// extensions wires the optional parts of the service (OAuth, MCP, UI,
// metrics) into the process.
func extensions(cfg *config.Config, mode service.Mode, sandbox bool) (service.Options, error) {
	// Refuse a misplaced --composio-sandbox before anything starts.
	if err := integrations.CheckSandbox(cfg, mode, sandbox); err != nil {
		return service.Options{}, err
	}
	var opts service.Options

	// OAuth apps through Composio: /api/integrations*, the OAuth-callback
	// worker and the Composio tools (or the local sandbox with
	// --composio-sandbox).
	opts.Integrations = integrations.Hook(integrations.Options{Sandbox: sandbox})

	// UI, MCP and metrics mounts (Options.Mount, APIRoutes, Middleware) are
	// added here.

	return opts, nil
}
