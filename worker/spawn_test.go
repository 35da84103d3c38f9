package worker

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// Jobs run at once each get a goroutine (none waits for another), a later
// job reuses an idle one instead of starting another, and stop ends them.
func TestSpawnerKeepsIdleGoroutines(t *testing.T) {
	base := runtime.NumGoroutine()
	s := newSpawner()
	const n = 8
	release := make(chan struct{})
	var started, done sync.WaitGroup
	started.Add(n)
	done.Add(n)
	for range n {
		s.run(func() {
			started.Done()
			<-release
			done.Done()
		})
	}
	waitOrFail(t, &started, "8 jobs run at once did not all start")
	close(release)
	waitOrFail(t, &done, "the jobs did not end")
	peak := runtime.NumGoroutine()
	if peak < base+n {
		t.Fatalf("%d goroutines after 8 concurrent jobs, want at least %d kept", peak, base+n)
	}
	for range 100 {
		var one sync.WaitGroup
		one.Add(1)
		s.run(one.Done)
		one.Wait()
	}
	if now := runtime.NumGoroutine(); now > peak {
		t.Fatalf("100 sequential jobs grew the goroutines from %d to %d: idle ones are not reused", peak, now)
	}
	s.stop()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after stop, want %d", runtime.NumGoroutine(), base)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitOrFail(t *testing.T, wg *sync.WaitGroup, msg string) {
	t.Helper()
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal(msg)
	}
}
