package embedded

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrInUse: another process holds the store's directory.
var ErrInUse = errors.New("embedded: data directory in use by another process")

// dirLock is an exclusive lock on a store's directory, held by this process
// from start to Close, so that two processes never run one store (two
// `serve` on one MCP_DATA_DIR would share SQLite files, JetStream files and
// the socket path). The kernel drops it when the process dies, so a crash
// leaves nothing to clean up.
type dirLock struct{ f *os.File }

// lockDir takes dir's lock (dir/LOCK, holding the owner's pid), or fails at
// once with ErrInUse.
func lockDir(dir, what string) (*dirLock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded: %s data directory: %w", what, err)
	}
	path := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("embedded: %s lock: %w", what, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		owner, _ := io.ReadAll(io.LimitReader(f, 20))
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: the %s data in %s belongs to pid %s; stop that process, or give this one another MCP_DATA_DIR",
				ErrInUse, what, dir, strings.TrimSpace(string(owner)))
		}
		return nil, fmt.Errorf("embedded: %s lock %s: %w", what, path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dirLock{f: f}, nil
}

// release gives the lock up. The file stays: removing it could let a third
// process lock a new file while another still holds the old one.
func (l *dirLock) release() {
	if l != nil && l.f != nil {
		_ = l.f.Close()
		l.f = nil
	}
}
