package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/openanalyst/mcp-integration-service/embedded"
	"github.com/openanalyst/mcp-integration-service/keyring"
)

// scale measures split mode: api + 1 worker, then api + 2 workers, on one
// NATS and one FerretDB started here with TCP listeners.
func scale(dir string) error {
	ns, err := embedded.StartNATS(filepath.Join(dir, "scale-nats"), 0)
	if err != nil {
		return err
	}
	defer ns.Close()
	fdb, err := embedded.StartFerret(context.Background(), filepath.Join(dir, "scale-ferret"), 0, nil)
	if err != nil {
		return err
	}
	defer func() { _ = fdb.Close() }()
	key, _ := keyring.Generate()
	port := freePort()
	env := map[string]string{"NATS_URL": ns.URL(), "MONGODB_URI": fdb.URI(), "AGENT_API_KEY": apiKey,
		"DB_ENCRYPTION_KEY": key, "MCP_ALLOW_PRIVATE_HOSTS": "true", "MCP_LOG_LEVEL": "warn",
		"MCP_POOL_SIZE": strconv.Itoa(*pool), "MCP_METRICS_ADDR": "127.0.0.1:0"}
	apiEnv := map[string]string{"MCP_SERVICE_HOST": "127.0.0.1", "MCP_SERVICE_PORT": strconv.Itoa(port)}
	for k, v := range env {
		apiEnv[k] = v
	}
	apiP, err := startProc("api", filepath.Join(dir, "api.log"), *bin, apiEnv, "api")
	if err != nil {
		return err
	}
	defer apiP.stop()
	w1, err := startProc("worker 1", filepath.Join(dir, "worker1.log"), *bin, env, "worker")
	if err != nil {
		return err
	}
	defer w1.stop()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := waitHTTP(base + "/api/tools/health"); err != nil {
		return apiP.failed(err)
	}
	client := newClient()
	dbID, err := connect(client, base)
	if err != nil {
		return apiP.failed(err)
	}
	call := serveWorker(client, base, dbID, "SELECT 1")
	fmt.Printf("\nscale-out (split mode, SELECT 1, c=64, one NATS, worker pool %d):\n", *pool)
	r1, err := load(64, *warm, *dur, 0, call)
	if err != nil {
		return w1.failed(err)
	}
	fmt.Printf("  api + 1 worker : %8.0f req/s  p50 %s  p99 %s\n", r1.rps, ms(r1.p50), ms(r1.p99))
	w2, err := startProc("worker 2", filepath.Join(dir, "worker2.log"), *bin, env, "worker")
	if err != nil {
		return err
	}
	defer w2.stop()
	time.Sleep(2 * time.Second)
	r2, err := load(64, *warm, *dur, 0, call)
	if err != nil {
		return w2.failed(err)
	}
	fmt.Printf("  api + 2 workers: %8.0f req/s  p50 %s  p99 %s  (%.2fx; all processes share %d CPUs)\n",
		r2.rps, ms(r2.p50), ms(r2.p99), r2.rps/r1.rps, numCPU())
	return nil
}
