package api

import (
	"net/http"
	"time"
)

// Timeouts bound how long a client may take to send a request, so a slow
// (slowloris) client cannot hold connections open.
type Timeouts struct {
	// ReadHeader bounds the request line and headers.
	ReadHeader time.Duration
	// Read bounds headers and body together. net/http lifts it once the
	// body is read, so a handler that then waits (a synchronous execute, an
	// MCP event stream) is not cut off by it.
	Read time.Duration
	// Idle bounds a keep-alive connection between requests.
	Idle time.Duration
	// MaxHeaderBytes bounds the request line and headers.
	MaxHeaderBytes int
}

// DefaultTimeouts are the timeouts of the service's listeners.
func DefaultTimeouts() Timeouts {
	return Timeouts{ReadHeader: 10 * time.Second, Read: time.Minute, Idle: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
}

// NewHTTPServer returns the server every listener of the service uses: h
// behind the timeouts t. There is no write timeout: responses may stream.
func NewHTTPServer(h http.Handler, t Timeouts) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: t.ReadHeader, ReadTimeout: t.Read,
		IdleTimeout: t.Idle, MaxHeaderBytes: t.MaxHeaderBytes}
}
