package service

// The database connectors register themselves in init.
import (
	_ "github.com/openanalyst/mcp-integration-service/connectors/postgres"
)
