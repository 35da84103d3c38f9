package integrations

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestCacheSharesFetchesAndExpires(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	var calls atomic.Int32
	release := make(chan struct{})
	c := newCache(time.Minute, clock.now, func(_ context.Context, key string) (string, error) {
		n := calls.Add(1)
		<-release
		return fmt.Sprintf("%s-%d", key, n), nil
	})
	var wg sync.WaitGroup
	results := make([]string, 20)
	for i := range results {
		wg.Go(func() {
			v, err := c.get(context.Background(), "gmail")
			if err != nil {
				t.Error(err)
			}
			results[i] = v
		})
	}
	time.Sleep(50 * time.Millisecond) // let the callers pile up on one fetch
	close(release)
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("%d fetches for concurrent misses, want 1", calls.Load())
	}
	for _, r := range results {
		if r != "gmail-1" {
			t.Fatalf("results = %v", results)
		}
	}
	if v, _ := c.get(context.Background(), "gmail"); v != "gmail-1" || calls.Load() != 1 {
		t.Fatalf("within TTL: %q after %d fetches", v, calls.Load())
	}
	clock.add(2 * time.Minute)
	if v, _ := c.get(context.Background(), "gmail"); v != "gmail-2" {
		t.Fatalf("after TTL: %q, want a fresh fetch", v)
	}
}

func TestCacheServesStaleOnErrorAndRemembersFailures(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	var fail atomic.Bool
	var calls atomic.Int32
	boom := errors.New("composio down")
	c := newCache(time.Minute, clock.now, func(_ context.Context, key string) (string, error) {
		calls.Add(1)
		if fail.Load() {
			return "", boom
		}
		return "v", nil
	})
	if v, err := c.get(context.Background(), "a"); v != "v" || err != nil {
		t.Fatal(v, err)
	}
	fail.Store(true)
	clock.add(2 * time.Minute)
	if v, err := c.get(context.Background(), "a"); v != "v" || err != nil {
		t.Fatalf("stale on error: %q, %v", v, err)
	}
	// A key never fetched fails, and the failure is remembered.
	if _, err := c.get(context.Background(), "b"); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	n := calls.Load()
	if _, err := c.get(context.Background(), "b"); !errors.Is(err, boom) || calls.Load() != n {
		t.Fatalf("failure not remembered: %v after %d fetches (was %d)", err, calls.Load(), n)
	}
	fail.Store(false)
	clock.add(time.Minute)
	if v, err := c.get(context.Background(), "b"); v != "v" || err != nil {
		t.Fatalf("after the failure TTL: %q, %v", v, err)
	}
}
