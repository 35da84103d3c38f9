package worker

import "sync"

// spawner runs each job on a goroutine kept from an earlier job when one is
// idle, else on a new one. A job's call chain (the pgx pipeline, the row
// encoder) grows a new goroutine's stack several times over, and copying
// those stacks cost about 4% of the worker's CPU under load; a kept
// goroutine starts with the stack it has. There are never more goroutines
// than jobs that ran at once; they end with stop.
type spawner struct {
	work chan func()
	quit chan struct{}
	once sync.Once
}

func newSpawner() *spawner {
	return &spawner{work: make(chan func()), quit: make(chan struct{})}
}

// run runs f on an idle kept goroutine, or a new one.
func (s *spawner) run(f func()) {
	select {
	case s.work <- f:
	default:
		go s.loop(f)
	}
}

func (s *spawner) loop(f func()) {
	for {
		f()
		f = nil // keep nothing of a finished job while idle
		select {
		case f = <-s.work:
		case <-s.quit:
			return
		}
	}
}

// stop ends the idle goroutines, and each busy one when its job ends.
func (s *spawner) stop() { s.once.Do(func() { close(s.quit) }) }
