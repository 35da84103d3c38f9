package e2e

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/keyring"
)

// Outside embedded mode a process refuses to start without its secrets or
// servers, and says which variable is missing.
func TestStartupRefusals(t *testing.T) {
	t.Parallel()
	key, _ := keyring.Generate()
	cases := []struct {
		name string
		args []string
		env  []string
		want []string
	}{
		{"api without keys", []string{"api"}, []string{"NATS_URL=nats://127.0.0.1:1", "MONGODB_URI=mongodb://127.0.0.1:1/"},
			[]string{"AGENT_API_KEY", "DB_ENCRYPTION_KEY"}},
		{"worker without encryption key", []string{"worker"}, []string{"NATS_URL=nats://127.0.0.1:1", "MONGODB_URI=mongodb://127.0.0.1:1/", "AGENT_API_KEY=k"},
			[]string{"DB_ENCRYPTION_KEY"}},
		{"api without servers", []string{"api"}, []string{"AGENT_API_KEY=k", "DB_ENCRYPTION_KEY=" + key},
			[]string{"NATS_URL", "MONGODB_URI"}},
		{"bad port", []string{"serve"}, []string{"MCP_SERVICE_PORT=99999"}, []string{"MCP_SERVICE_PORT"}},
		{"bad encryption key", []string{"worker"}, []string{"NATS_URL=nats://127.0.0.1:1", "MONGODB_URI=mongodb://127.0.0.1:1/",
			"AGENT_API_KEY=k", "DB_ENCRYPTION_KEY=not-a-fernet-key"}, []string{"key 1 of DB_ENCRYPTION_KEY"}},
		{"sandbox with a real Composio key", []string{"serve", "--composio-sandbox"}, []string{"COMPOSIO_API_KEY=real", "MCP_DATA_DIR=" + t.TempDir()},
			[]string{"COMPOSIO_API_KEY"}},
	}
	for _, c := range cases {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cmd := exec.CommandContext(ctx, binary(t), c.args...)
		cmd.Env = c.env
		out, err := cmd.CombinedOutput()
		cancel()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Fatalf("%s: want a non-zero exit, got %v:\n%s", c.name, err, out)
		}
		for _, w := range c.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("%s: output does not name %s:\n%s", c.name, w, out)
			}
		}
		if strings.Contains(string(out), "not-a-fernet-key") {
			t.Errorf("%s: the bad key was echoed", c.name)
		}
	}
}
