package embedded

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// One store, one process: a second start on the same data directory fails
// at once with ErrInUse naming the owner's pid (instead of sharing its files
// and taking over its socket), and succeeds once the first has closed.
func TestDataDirLocked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pid := strconv.Itoa(os.Getpid())
	inUse := func(err error, what string) {
		t.Helper()
		if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "pid "+pid) || !strings.Contains(err.Error(), what) {
			t.Fatalf("second %s on one data dir: got %v, want ErrInUse naming pid %s", what, err, pid)
		}
	}

	ns, err := StartNATS(dir, -1)
	if err != nil {
		t.Fatal(err)
	}
	_, err = StartNATS(dir, -1)
	inUse(err, "NATS")
	ns.Close()
	ns, err = StartNATS(dir, -1)
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	ns.Close()

	ctx := context.Background()
	fdir := filepath.Join(dir, "ferretdb")
	f, err := StartFerret(ctx, fdir, -1, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(fdir, "run", "mongo.sock")
	_, err = StartFerret(ctx, fdir, -1, slog.New(slog.DiscardHandler))
	inUse(err, "FerretDB")
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("the refused start touched the running server's socket: %v", err)
	}
	if _, ok := RunningFerretURI(ctx, fdir); !ok {
		t.Fatal("the running server no longer answers on its socket")
	}
	_ = f.Close()
	f, err = StartFerret(ctx, fdir, -1, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	_ = f.Close()
}
