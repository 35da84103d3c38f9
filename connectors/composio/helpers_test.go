package composio_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/connectors/composio"
	"github.com/openanalyst/mcp-integration-service/connectors/composio/composiotest"
)

// sleeper records the waits between attempts instead of sleeping.
type sleeper struct {
	mu    sync.Mutex
	waits []time.Duration
	// hook, when set, runs before the wait returns.
	hook func()
}

func (s *sleeper) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	hook := s.hook
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
	return ctx.Err()
}

func (s *sleeper) got() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

// newClient returns a client for s whose waits are recorded, not slept.
func newClient(t *testing.T, s *composiotest.Server, mods ...func(*composio.Config)) (*composio.Client, *sleeper) {
	t.Helper()
	cfg := composio.Config{APIKey: s.APIKey(), BaseURL: s.URL()}
	for _, m := range mods {
		m(&cfg)
	}
	c, err := composio.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	sl := &sleeper{}
	composio.SetSleep(c, sl.sleep)
	return c, sl
}

// noRedirect is an HTTP client that stops at the first redirect, like a test
// standing in for the browser would want.
var noRedirect = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       10 * time.Second,
}

// asAPIError fails the test unless err is an *APIError.
func asAPIError(t *testing.T, err error) *composio.APIError {
	t.Helper()
	if err == nil {
		t.Fatal("expected an error, got nil")
	}
	var apiErr *composio.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("error %T (%v) is not *composio.APIError", err, err)
	}
	return apiErr
}

// waitResult waits for a call running in a goroutine; it fails the test if
// the call hangs (it would otherwise hang until the test binary's timeout).
func waitResult(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("call did not return after its context ended")
		return nil
	}
}
