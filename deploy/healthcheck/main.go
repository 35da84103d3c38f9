// Command healthcheck probes an HTTP endpoint and exits 0 when it answers
// 2xx, 1 otherwise. The runtime image is distroless (no shell, curl or wget),
// so Docker and compose healthchecks run this static binary instead:
//
//	/healthcheck                                  # http://127.0.0.1:$MCP_SERVICE_PORT/readyz
//	/healthcheck http://127.0.0.1:9090/healthz    # any URL (here a worker)
//
// Kubernetes does not need it: its probes call the endpoints directly.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stderr))
}

func run(args []string, getenv func(string) string, stderr io.Writer) int {
	url := ""
	switch len(args) {
	case 0:
		port := getenv("MCP_SERVICE_PORT")
		if port == "" {
			port = "8001"
		}
		url = "http://127.0.0.1:" + port + "/readyz"
	case 1:
		url = args[0]
	default:
		fmt.Fprintln(stderr, "usage: healthcheck [URL]")
		return 2
	}
	if err := probe(url, 3*time.Second); err != nil {
		fmt.Fprintln(stderr, "unhealthy:", err)
		return 1
	}
	return 0
}

func probe(url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// The URL is the container's own healthcheck argument, not user input.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil) // #nosec G704
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req) // #nosec G704
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return nil
}
