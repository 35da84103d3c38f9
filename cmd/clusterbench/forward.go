package main

import (
	"context"
	"io"
	"net"
	"strconv"
	"sync"
)

// forwarder relays TCP connections from the bridge to the user database on
// loopback, and remembers the local port of every upstream connection it
// holds open, so that pg_stat_activity rows of the service (and only those)
// can be picked out by client_port.
type forwarder struct {
	ln   net.Listener
	to   string
	mu   sync.Mutex
	open map[int]bool // local ports of live upstream connections
	peak int
}

func startForwarder(ctx context.Context, listen, to string) (*forwarder, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", listen)
	if err != nil {
		return nil, err
	}
	f := &forwarder{ln: ln, to: to, open: map[int]bool{}}
	go f.serve(ctx)
	return f, nil
}

func (f *forwarder) serve(ctx context.Context) {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		go f.relay(ctx, c)
	}
}

func (f *forwarder) relay(ctx context.Context, c net.Conn) {
	defer c.Close()
	up, err := (&net.Dialer{}).DialContext(ctx, "tcp", f.to)
	if err != nil {
		return
	}
	defer up.Close()
	_, p, _ := net.SplitHostPort(up.LocalAddr().String())
	port, _ := strconv.Atoi(p)
	f.mu.Lock()
	f.open[port] = true
	f.peak = max(f.peak, len(f.open))
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.open, port)
		f.mu.Unlock()
	}()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done // either side closing ends both
}

// ports returns the local ports of the open upstream connections.
func (f *forwarder) ports() []int32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]int32, 0, len(f.open))
	for p := range f.open {
		out = append(out, int32(p))
	}
	return out
}

func (f *forwarder) peakOpen() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.peak
}

func (f *forwarder) close() { _ = f.ln.Close() }
