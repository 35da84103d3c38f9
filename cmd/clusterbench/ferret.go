package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// runFerret serves FerretDB on SQLite until SIGINT or SIGTERM. Unlike
// embedded.StartFerret, which binds loopback only, it listens on any address:
// here it is the storage "host" of the bed, reached across the bridge.
func runFerret(args []string) error {
	fs := flag.NewFlagSet("ferret", flag.ExitOnError)
	listen := fs.String("listen", "0.0.0.0:27017", "TCP listen address")
	dir := fs.String("dir", "ferret-data", "SQLite data directory")
	_ = fs.Parse(args)

	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	fdb, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + filepath.ToSlash(abs) + "/",
	})
	if err != nil {
		return fmt.Errorf("start FerretDB: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintln(os.Stderr, "clusterbench ferret: serving", fdb.MongoDBURI())
	if err := fdb.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
