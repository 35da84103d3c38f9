package service

// The database connectors register themselves in init.
import (
	_ "github.com/openanalyst/mcp-integration-service/connectors/mongodb"
	_ "github.com/openanalyst/mcp-integration-service/connectors/mysql"
	_ "github.com/openanalyst/mcp-integration-service/connectors/postgres"
	_ "github.com/openanalyst/mcp-integration-service/connectors/redis"
)
