package main

import (
	"crypto/rand"
	"fmt"

	"github.com/openanalyst/mcp-integration-service/connectors/composio/composiotest"
	"github.com/openanalyst/mcp-integration-service/integrations"
)

// sandboxAuthConfigs are the auth configs the Composio test double knows.
var sandboxAuthConfigs = map[string]string{"gmail": "ac_gmail", "slack": "ac_slack", "bigquery": "ac_bigquery"}

// startSandbox runs the Composio test double on loopback for serve
// --composio-sandbox. Only this command wires it: the service's packages
// never import the double.
func startSandbox() (*integrations.Sandbox, func(), error) {
	key := "sandbox_" + rand.Text()
	sb, err := composiotest.NewServer("127.0.0.1:0", composiotest.WithAPIKey(key))
	if err != nil {
		return nil, nil, fmt.Errorf("composio sandbox: %w", err)
	}
	return &integrations.Sandbox{URL: sb.URL(), APIKey: key, AuthConfigs: sandboxAuthConfigs}, sb.Close, nil
}
