package main

import (
	"github.com/openanalyst/mcp-integration-service/config"
	"github.com/openanalyst/mcp-integration-service/service"
)

// extensions wires the optional parts of the service (OAuth, MCP, UI,
// metrics) into the process.
func extensions(_ *config.Config, _ service.Mode, _ bool) (service.Options, error) {
	return service.Options{}, nil
}
