package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// Ferret is an in-process FerretDB (MongoDB wire protocol) server.
type Ferret struct {
	uri    string
	cancel context.CancelFunc
	done   chan struct{}
	runErr error

	closeOnce sync.Once
}

// newMu serialises ferretdb.New, which writes FerretDB's package-global
// version information.
var newMu sync.Mutex

// StartFerret starts FerretDB v1 on SQLite in dir, listening on 127.0.0.1:port
// (0 = random free port), and waits until it accepts connections.
//
// The directory is created when missing. FerretDB's own log lines go to
// logger (slog.Default() when nil) at warn level and above only. The server
// runs until Close; ctx bounds only the wait for the listener.
func StartFerret(ctx context.Context, dir string, port int, logger *slog.Logger) (*Ferret, error) {
	if dir == "" {
		return nil, errors.New("embedded: FerretDB needs a data directory")
	}
	if port < 0 || port > 65535 {
		return nil, fmt.Errorf("embedded: FerretDB port %d out of range", port)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("embedded: FerretDB data directory: %w", err)
	}
	// FerretDB builds SQLite URIs from the directory without escaping it.
	if strings.ContainsAny(abs, "?#%") {
		return nil, fmt.Errorf("embedded: FerretDB data directory %q must not contain ?, # or %%", abs)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("embedded: FerretDB data directory: %w", err)
	}
	sqliteURL := "file:" + filepath.ToSlash(abs) + "/"
	if logger == nil {
		logger = slog.Default()
	}
	quiet := slog.New(minLevel{h: logger.Handler(), min: slog.LevelError})

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if port != 0 {
		// FerretDB 1.24 leaks its storage backend when New fails to bind the
		// listener, and the leak detector's finalizer then panics the whole
		// process at the next GC. Find a taken port here instead.
		ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("embedded: FerretDB cannot listen on %s: %w", addr, err)
		}
		if err := ln.Close(); err != nil {
			return nil, fmt.Errorf("embedded: FerretDB cannot listen on %s: %w", addr, err)
		}
	}
	newMu.Lock()
	fdb, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: addr},
		Logger:    quiet,
		Handler:   "sqlite",
		SQLiteURL: sqliteURL,
	})
	newMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("embedded: start FerretDB: %w", err)
	}

	// ctx bounds only the start: the server runs until Close.
	f := &Ferret{done: make(chan struct{})}
	var runCtx context.Context
	runCtx, f.cancel = context.WithCancel(context.WithoutCancel(ctx)) //nolint:gosec // Close calls f.cancel
	go func() {
		defer close(f.done)
		f.runErr = fdb.Run(runCtx)
	}()

	// New has already bound the listener, so the address is known now.
	f.uri = fdb.MongoDBURI()
	host, err := hostOf(f.uri)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	if err := waitAccepting(ctx, host); err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

// URI returns the server's connection string, mongodb://127.0.0.1:<port>/.
func (f *Ferret) URI() string { return f.uri }

// Close stops the server and waits until its listener, connections and
// storage are closed. Clients still connected are given a few seconds to
// disconnect. Close is safe to call more than once.
func (f *Ferret) Close() error {
	f.closeOnce.Do(f.cancel)
	<-f.done
	return f.runErr
}

// hostOf extracts host:port from a mongodb://host:port/ URI.
func hostOf(uri string) (string, error) {
	const scheme = "mongodb://"
	if len(uri) <= len(scheme) || uri[:len(scheme)] != scheme {
		return "", fmt.Errorf("embedded: unexpected FerretDB URI %q", uri)
	}
	hp := uri[len(scheme):]
	for i := 0; i < len(hp); i++ {
		if hp[i] == '/' {
			hp = hp[:i]
			break
		}
	}
	return hp, nil
}

// waitAccepting dials addr until a connection succeeds.
func waitAccepting(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return c.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("embedded: FerretDB at %s does not accept connections: %w", addr, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// minLevel is a slog.Handler that drops records below min.
type minLevel struct {
	h   slog.Handler
	min slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.h.Enabled(ctx, l)
}

func (m minLevel) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < m.min {
		return nil
	}
	return m.h.Handle(ctx, r)
}

func (m minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevel{h: m.h.WithAttrs(attrs), min: m.min}
}

func (m minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h: m.h.WithGroup(name), min: m.min}
}
