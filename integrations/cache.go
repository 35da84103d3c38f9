package integrations

import (
	"context"
	"sync"
	"time"
)

// cache keeps one value per key for a TTL. Concurrent misses of a key share
// one fetch; a failed refresh serves the stale value when there is one, and
// a failure without one is remembered for failTTL so an unreachable
// upstream is not asked again on every call.
type cache[T any] struct {
	ttl, failTTL time.Duration
	now          func() time.Time
	// fetchTimeout bounds one fetch, which runs detached from the caller
	// that started it (other callers may be waiting for it).
	fetchTimeout time.Duration
	fetch        func(ctx context.Context, key string) (T, error)

	mu      sync.Mutex
	entries map[string]*entry[T]
}

type entry[T any] struct {
	val      T
	has      bool
	fetched  time.Time
	err      error
	failedAt time.Time
	call     *fetchCall[T]
}

type fetchCall[T any] struct {
	done chan struct{}
	val  T
	err  error
}

func newCache[T any](ttl time.Duration, now func() time.Time, fetch func(context.Context, string) (T, error)) *cache[T] {
	return &cache[T]{ttl: ttl, failTTL: 30 * time.Second, now: now, fetchTimeout: 30 * time.Second,
		fetch: fetch, entries: map[string]*entry[T]{}}
}

// get returns the key's value, fetching it when missing or stale.
func (c *cache[T]) get(ctx context.Context, key string) (T, error) {
	c.mu.Lock()
	e := c.entries[key]
	if e == nil {
		e = &entry[T]{}
		c.entries[key] = e
	}
	now := c.now()
	if e.has && now.Sub(e.fetched) < c.ttl {
		v := e.val
		c.mu.Unlock()
		return v, nil
	}
	if !e.has && e.err != nil && now.Sub(e.failedAt) < c.failTTL {
		err := e.err
		c.mu.Unlock()
		var zero T
		return zero, err
	}
	call := e.call
	if call == nil {
		call = &fetchCall[T]{done: make(chan struct{})}
		e.call = call
		go c.run(context.WithoutCancel(ctx), key, e, call)
	}
	stale, hasStale := e.val, e.has
	c.mu.Unlock()

	select {
	case <-call.done:
	case <-ctx.Done():
		if hasStale {
			return stale, nil
		}
		var zero T
		return zero, ctx.Err()
	}
	if call.err != nil && hasStale {
		return stale, nil
	}
	return call.val, call.err
}

func (c *cache[T]) run(ctx context.Context, key string, e *entry[T], call *fetchCall[T]) {
	ctx, cancel := context.WithTimeout(ctx, c.fetchTimeout)
	defer cancel()
	v, err := c.fetch(ctx, key)
	c.mu.Lock()
	if err == nil {
		e.val, e.has, e.fetched, e.err = v, true, c.now(), nil
	} else {
		e.err, e.failedAt = err, c.now()
		if e.has {
			// Serve the stale value, but try again after failTTL.
			e.fetched = c.now().Add(c.failTTL - c.ttl)
		}
	}
	e.call = nil
	call.val, call.err = v, err
	c.mu.Unlock()
	close(call.done)
}
