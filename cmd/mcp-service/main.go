// Command mcp-service runs the MCP integration service.
//
//	mcp-service [serve]   API, workers and embedded servers in one process (default)
//	mcp-service api       the API node only, against external NATS and MongoDB
//	mcp-service worker    a worker process only; run as many as needed
//	mcp-service rotate-keys  re-encrypt stored credentials with the first key
//	mcp-service audit     print the newest audit log entries
//	mcp-service nats      only the embedded NATS server, for local split-mode setups
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/openanalyst/mcp-integration-service/config"
	"github.com/openanalyst/mcp-integration-service/integrations"
	"github.com/openanalyst/mcp-integration-service/procs"
	"github.com/openanalyst/mcp-integration-service/service"
	"github.com/openanalyst/mcp-integration-service/tracing"
)

func main() {
	setGCDefault(os.Getenv)
	os.Exit(run(os.Args[1:]))
}

// gcPercent is the garbage collector's target when GOGC is unset: the heap
// may grow to three times what is live before a collection, instead of
// twice. Requests allocate a lot and keep little, so collections were ~7-11%
// of the CPU under load. Measured on `serve` at c=64: 100-row selects +11%
// req/s and -14% CPU per call, SELECT 1 +4% and -7%, for ~12 MiB more RSS.
// GOGC and GOMEMLIMIT still work as usual.
const gcPercent = 200

// setGCDefault applies gcPercent unless GOGC is set.
func setGCDefault(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
}

func usage() { printUsage(os.Stderr) }

// printUsage lists the commands and every environment variable, with its
// default when it has one (an empty default's help says what unset means).
func printUsage(w io.Writer) {
	fmt.Fprint(w, `usage: mcp-service [serve|api|worker|rotate-keys|audit|nats|help] [flags]

  serve        API, workers and, when NATS_URL / MONGODB_URI are unset, embedded
               NATS and FerretDB under MCP_DATA_DIR (default)
  api          the API node only (needs NATS_URL and MONGODB_URI)
  worker       a worker process only (needs NATS_URL and MONGODB_URI)
  rotate-keys  re-encrypt every stored credential with the first DB_ENCRYPTION_KEY
  audit        print the newest audit log entries, newest first, as JSON lines
               (-user ID: one user's; -limit N, default 100)
  (rotate-keys and audit use MONGODB_URI, else the store of a serve running
  on MCP_DATA_DIR)
  nats         only the embedded NATS server (JetStream under MCP_DATA_DIR, on
               127.0.0.1:MCP_EMBEDDED_NATS_PORT), for local split-mode setups

Environment variables:
`)
	for _, v := range config.Env {
		if v.Default == "" {
			fmt.Fprintf(w, "  %-28s %s\n", v.Name, v.Help)
			continue
		}
		fmt.Fprintf(w, "  %-28s %s (default %q)\n", v.Name, v.Help, v.Default)
	}
}

func run(args []string) int {
	mode := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		mode, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet(mode, flag.ContinueOnError)
	fs.Usage = usage
	sandbox := fs.Bool("composio-sandbox", false, "run a local Composio test double (never the default when COMPOSIO_API_KEY is set)")
	if mode != "audit" { // audit has flags of its own
		if err := fs.Parse(args); err != nil {
			return 2
		}
	}
	cfg, err := config.Load(nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "configuration error:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	switch mode {
	case "serve", "api", "worker":
		return serve(ctx, stop, cfg, service.Mode(mode), *sandbox)
	case "rotate-keys":
		return rotateKeys(ctx, cfg)
	case "audit":
		return printAudit(ctx, cfg, args, os.Stdout)
	case "nats":
		return natsOnly(ctx, cfg)
	case "help":
		usage()
		return 0
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n", mode)
		usage()
		return 2
	}
}

func serve(ctx context.Context, stop context.CancelFunc, cfg *config.Config, mode service.Mode, sandbox bool) int {
	var opts service.Options
	if sandbox {
		// Refuse a misplaced --composio-sandbox before anything starts.
		if err := integrations.CheckSandbox(cfg, mode == service.ModeServe, true, string(mode)); err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			return 1
		}
		sb, closeSandbox, err := startSandbox()
		if err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			return 1
		}
		defer closeSandbox()
		opts.ComposioSandbox = sb
	}
	shutdownTracing, err := tracing.Setup(ctx, cfg.OTLPEndpoint, "mcp-"+string(mode))
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	defer func() {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = shutdownTracing(c)
	}()
	in, err := service.Start(ctx, cfg, mode, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	if procs.Enabled(os.Getenv) {
		pctx, stopProcs := context.WithCancel(context.Background())
		defer stopProcs()
		go procs.Run(pctx, in.Load, in.Logger)
	}
	if mode == service.ModeServe && cfg.Embedded() && in.URL != "" {
		if _, set := os.LookupEnv("AGENT_API_KEY"); !set {
			// A developer console on this machine: the generated key is
			// already in the data dir. A key set in the environment (a
			// deployment) is never printed.
			fmt.Fprintf(os.Stderr, "connectors page: %s/ui/#key=%s&user=user_123\n", in.URL, url.QueryEscape(cfg.APIKey))
		} else {
			fmt.Fprintf(os.Stderr, "connectors page: %s/ui/ (sign in with AGENT_API_KEY)\n", in.URL)
		}
	}
	select {
	case <-ctx.Done():
	case err := <-in.Done():
		in.Logger.Error("fatal", "err", err)
		in.Close()
		return 1
	}
	stop() // a second signal now kills the process at once
	in.Logger.Info("shutting down: draining in-flight jobs (send the signal again to exit at once)")
	second := make(chan os.Signal, 1)
	signal.Notify(second, syscall.SIGINT, syscall.SIGTERM)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.QueryTimeout+30*time.Second)
	defer cancel()
	go func() {
		<-second
		in.Logger.Warn("second signal: exiting now; unfinished jobs will be redelivered")
		os.Exit(130)
	}()
	if err := in.Shutdown(sctx); err != nil {
		in.Logger.Warn("shutdown", "err", err)
		return 1
	}
	in.Logger.Info("stopped")
	return 0
}
