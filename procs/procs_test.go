package procs

import (
	"sync"
	"testing"
)

// The high-water mark of a window sees a peak that came and went between
// two looks, and a new window starts at what is in flight now.
func TestLoadWindow(t *testing.T) {
	t.Parallel()
	var l Load
	var wg sync.WaitGroup
	for range 10 {
		l.Begin()
	}
	for range 10 {
		wg.Add(1)
		go func() { defer wg.Done(); l.End() }()
	}
	wg.Wait()
	if h := l.window(); h != 10 {
		t.Fatalf("window after a peak of 10: %d", h)
	}
	if h := l.window(); h != 0 {
		t.Fatalf("window after everything ended: %d", h)
	}
	l.Begin()
	l.Begin()
	if h := l.window(); h != 2 {
		t.Fatalf("window with 2 in flight: %d", h)
	}
	if h := l.window(); h != 2 {
		t.Fatalf("a new window starts at what is in flight: %d, want 2", h)
	}
}

// One P after downAfter quiet windows, every CPU as soon as one window
// reaches upAt, and nothing in between: a load between the thresholds
// changes nothing, and a single busy window resets the count of quiet ones.
func TestControllerRule(t *testing.T) {
	t.Parallel()
	var l Load
	var sets []int
	c := &controller{load: &l, set: func(n int) { sets = append(sets, n) }}
	hold := func(n int) { // n in flight during one window
		for range n {
			l.Begin()
		}
		for range n {
			l.End()
		}
	}
	step := func(n int) bool { hold(n); return c.step() }

	for i := range downAfter - 1 {
		if step(1) {
			t.Fatalf("switched after %d quiet windows, want %d", i+1, downAfter)
		}
	}
	if step(upAt - 1) { // busy, below upAt: not quiet
		t.Fatal("a window between the thresholds switched")
	}
	for range downAfter - 1 {
		step(downAt)
	}
	if c.one || len(sets) != 0 {
		t.Fatalf("one P before %d quiet windows in a row (sets %v)", downAfter, sets)
	}
	if !step(0) || !c.one || len(sets) != 1 || sets[0] != 1 {
		t.Fatalf("after %d quiet windows: one=%v sets %v, want GOMAXPROCS 1", downAfter, c.one, sets)
	}
	for range 20 {
		if step(upAt - 1) {
			t.Fatalf("on one P, %d in flight switched back (sets %v)", upAt-1, sets)
		}
	}
	if !step(upAt) || c.one || len(sets) != 2 || sets[1] != 0 {
		t.Fatalf("on one P, %d in flight: one=%v sets %v, want the default again", upAt, c.one, sets)
	}
	if step(upAt * 4) {
		t.Fatal("switched again while already on every CPU")
	}
}

func TestEnabled(t *testing.T) {
	t.Parallel()
	if Enabled(func(k string) string {
		if k == "GOMAXPROCS" {
			return "2"
		}
		return ""
	}) {
		t.Fatal("enabled although the operator set GOMAXPROCS")
	}
}
