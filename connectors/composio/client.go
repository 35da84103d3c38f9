package composio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults applied by New to a zero Config field.
const (
	// DefaultBaseURL is Composio's production API host.
	DefaultBaseURL = "https://backend.composio.dev"
	// DefaultAPIPrefix is the version prefix of every resource path.
	DefaultAPIPrefix = "/api/v3"
	// DefaultTimeout bounds one HTTP attempt, including reading the answer.
	DefaultTimeout = 15 * time.Second
	// DefaultMaxRetries is how many times an idempotent call is retried.
	DefaultMaxRetries = 3
	// DefaultMaxRetryWait caps one wait between two attempts.
	DefaultMaxRetryWait = 30 * time.Second
)

const (
	userAgent = "openanalyst-mcp-integration-service/composio-go"
	// baseBackoff is the first backoff step; it doubles on every retry.
	baseBackoff = 500 * time.Millisecond
	// maxResponseBytes bounds a successful answer (tool results can be big).
	maxResponseBytes = 32 << 20
	// maxErrorBytes bounds how much of an error answer is read.
	maxErrorBytes = 64 << 10
	// pageLimit is the page size asked of list endpoints.
	pageLimit = 100
	// maxPages stops a list whose cursor never ends.
	maxPages = 50
)

// Config configures a Client. Only APIKey is required.
type Config struct {
	// APIKey is the Composio project API key, sent as x-api-key. Required.
	APIKey string
	// BaseURL is the API host; default DefaultBaseURL (COMPOSIO_BASE_URL).
	BaseURL string
	// APIPrefix is the version prefix; default DefaultAPIPrefix. Composio's
	// clients moved to "/api/v3.1" in 2026; the resource paths are the same.
	APIPrefix string
	// HTTPClient sends the requests; default a new client on
	// http.DefaultTransport. Its own Timeout, if any, also applies.
	HTTPClient *http.Client
	// Timeout bounds each attempt; default DefaultTimeout. Negative disables
	// the per-attempt bound (the context still applies).
	Timeout time.Duration
	// MaxRetries is how many times an idempotent call (GET, DELETE) is
	// retried after a 429, a 5xx or a network error; default
	// DefaultMaxRetries. Negative disables retries.
	MaxRetries int
	// MaxRetryWait caps a single wait between attempts, including one asked
	// for by Retry-After; default DefaultMaxRetryWait.
	MaxRetryWait time.Duration
}

// Client calls Composio's REST API. It is safe for concurrent use.
type Client struct {
	apiKey       string
	root         string // scheme://host[/path] + prefix, no trailing slash
	prefixPath   string // path part of root, for error messages
	hc           *http.Client
	timeout      time.Duration
	maxRetries   int
	maxRetryWait time.Duration

	// sleep waits between attempts; replaced in tests.
	sleep func(ctx context.Context, d time.Duration) error
	// jitter returns a uniform duration in [0, d]; replaced in tests.
	jitter func(d time.Duration) time.Duration
	// now is the clock used for Retry-After dates and deadlines.
	now func() time.Time
}

// New returns a Client for cfg. It fails when the API key is empty or the
// base URL is not an absolute http(s) URL.
func New(cfg Config) (*Client, error) {
	if strings.TrimSpace(cfg.APIKey) == "" {
		return nil, errors.New("composio: API key is required")
	}
	base := strings.TrimSpace(cfg.BaseURL)
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("composio: base URL %q must be an absolute http(s) URL", base)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("composio: base URL %q must not have a query or fragment", base)
	}
	prefix := strings.TrimSpace(cfg.APIPrefix)
	if prefix == "" {
		prefix = DefaultAPIPrefix
	}
	prefix = "/" + strings.Trim(prefix, "/")
	if prefix == "/" {
		prefix = ""
	}
	basePath := strings.TrimRight(u.EscapedPath(), "/")
	c := &Client{
		apiKey:       cfg.APIKey,
		root:         u.Scheme + "://" + u.Host + basePath + prefix,
		prefixPath:   basePath + prefix,
		hc:           cfg.HTTPClient,
		timeout:      cfg.Timeout,
		maxRetries:   cfg.MaxRetries,
		maxRetryWait: cfg.MaxRetryWait,
		sleep:        sleepContext,
		jitter:       fullJitter,
		now:          time.Now,
	}
	if c.hc == nil {
		c.hc = &http.Client{}
	}
	switch {
	case c.timeout == 0:
		c.timeout = DefaultTimeout
	case c.timeout < 0:
		c.timeout = 0
	}
	switch {
	case c.maxRetries == 0:
		c.maxRetries = DefaultMaxRetries
	case c.maxRetries < 0:
		c.maxRetries = 0
	}
	if c.maxRetryWait <= 0 {
		c.maxRetryWait = DefaultMaxRetryWait
	}
	return c, nil
}

// call describes one logical API call.
type call struct {
	op         string     // client method name
	method     string     // HTTP method
	path       string     // escaped path below the prefix, e.g. "/tools"
	query      url.Values // may be nil
	body       any        // JSON request body, or nil
	idempotent bool       // may be retried
}

// do runs c, retrying idempotent calls, and decodes a 2xx JSON answer into
// out (when out is non-nil).
func (c *Client) do(ctx context.Context, cl call, out any) error {
	var body []byte
	if cl.body != nil {
		var err error
		if body, err = json.Marshal(cl.body); err != nil {
			return fmt.Errorf("composio: %s: encode request: %w", cl.op, err)
		}
	}
	target := c.root + cl.path
	if len(cl.query) > 0 {
		target += "?" + cl.query.Encode()
	}
	attempts := 1
	if cl.idempotent {
		attempts += c.maxRetries
	}
	var last *APIError
	for n := 1; ; n++ {
		if err := ctx.Err(); err != nil {
			return c.ctxError(cl, n-1, err, last)
		}
		data, apiErr := c.attempt(ctx, cl, target, body)
		if apiErr == nil {
			return c.decode(cl, n, data, out)
		}
		apiErr.Attempts = n
		if ctx.Err() != nil {
			// The caller's context ended during the attempt: report that,
			// not the transport error it caused.
			return c.ctxError(cl, n, ctx.Err(), apiErr)
		}
		last = apiErr
		if n >= attempts || !retryAttempt(apiErr) {
			return apiErr
		}
		wait := c.backoff(n, apiErr)
		if dl, ok := ctx.Deadline(); ok && c.now().Add(wait).After(dl) {
			// Waiting would outlive the caller's deadline: give up now with
			// the real cause instead of a bare deadline error.
			return apiErr
		}
		if err := c.sleep(ctx, wait); err != nil {
			return c.ctxError(cl, n, err, apiErr)
		}
	}
}

// attempt sends one request and returns the answer body on 2xx.
func (c *Client) attempt(ctx context.Context, cl call, target string, body []byte) ([]byte, *APIError) {
	actx := ctx
	if c.timeout > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(actx, cl.method, target, rd)
	if err != nil {
		return nil, c.newError(cl, 0, err)
	}
	req.Header.Set("x-api-key", c.apiKey)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.newError(cl, 0, c.transportError(actx, err))
	}
	defer func() {
		// Drain a little so the connection can be reused.
		_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
		_ = resp.Body.Close()
	}()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
		if err != nil {
			return nil, c.newError(cl, 0, c.transportError(actx, err))
		}
		if len(data) > maxResponseBytes {
			return nil, c.newError(cl, resp.StatusCode,
				fmt.Errorf("answer larger than %d bytes", maxResponseBytes))
		}
		return data, nil
	}
	apiErr := c.newError(cl, resp.StatusCode, nil)
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	apiErr.parseErrorBody(data, resp.Header.Get("Content-Type"))
	apiErr.Message = c.redact(apiErr.Message)
	apiErr.SuggestedFix = c.redact(apiErr.SuggestedFix)
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		apiErr.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), c.now())
	}
	return nil, apiErr
}

// transportError explains an error from sending a request or reading its
// answer. A per-attempt timeout becomes a readable message that still
// matches context.DeadlineExceeded.
func (c *Client) transportError(actx context.Context, err error) error {
	if actx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("attempt timed out after %s: %w", c.timeout, context.DeadlineExceeded)
	}
	// The method and path are already in the APIError; drop url.Error's
	// repetition of them (and of the query string).
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}

func (c *Client) decode(cl call, attempts int, data []byte, out any) error {
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		e := c.newError(cl, http.StatusOK, fmt.Errorf("decode answer: %w", err))
		e.Attempts = attempts
		return e
	}
	return nil
}

func (c *Client) newError(cl call, status int, err error) *APIError {
	return &APIError{
		Op:         cl.op,
		Method:     cl.method,
		Path:       c.prefixPath + cl.path,
		StatusCode: status,
		Err:        err,
	}
}

// ctxError reports that ctx ended. The last answer, if any, is kept so the
// caller still sees what Composio said.
func (c *Client) ctxError(cl call, attempts int, ctxErr error, last *APIError) error {
	e := c.newError(cl, 0, ctxErr)
	if last != nil {
		e.Message = last.Message
		e.Code = last.Code
		e.RequestID = last.RequestID
		e.RetryAfter = last.RetryAfter
		if last.StatusCode != 0 {
			e.Err = fmt.Errorf("%w (last answer: HTTP %d)", ctxErr, last.StatusCode)
		}
	}
	e.Attempts = attempts
	return e
}

// redact removes the API key from text that came from the network, in case
// a gateway echoes request headers into its error message.
func (c *Client) redact(s string) string {
	if c.apiKey == "" || !strings.Contains(s, c.apiKey) {
		return s
	}
	return strings.ReplaceAll(s, c.apiKey, "[redacted]")
}

// retryAttempt reports whether an attempt's failure may be retried.
func retryAttempt(e *APIError) bool {
	switch {
	case e.StatusCode == http.StatusTooManyRequests:
		return true
	case e.StatusCode >= 500:
		return true
	case e.StatusCode == 0 && e.Err != nil:
		return !errors.Is(e.Err, context.Canceled)
	}
	return false
}

// backoff returns the wait before attempt n+1: Retry-After when Composio gave
// one, else exponential backoff with full jitter; both capped by
// MaxRetryWait.
func (c *Client) backoff(n int, e *APIError) time.Duration {
	if e.RetryAfter > 0 {
		return min(e.RetryAfter, c.maxRetryWait)
	}
	step := baseBackoff << min(n-1, 20)
	return c.jitter(min(step, c.maxRetryWait))
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs <= 0 || secs > 24*3600 {
			return 0
		}
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

func fullJitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d + 1)
}

func sleepContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// page is Composio's pagination envelope.
type page[T any] struct {
	Items      []T             `json:"items"`
	NextCursor json.RawMessage `json:"next_cursor"`
}

// cursor renders next_cursor, which is a string in current answers and was
// a number in older ones; null or empty ends the list.
func (p *page[T]) cursor() string {
	return scalarString(p.NextCursor)
}

// list fetches every page of a list endpoint.
func list[T any](ctx context.Context, c *Client, cl call) ([]T, error) {
	q := url.Values{}
	for k, v := range cl.query {
		q[k] = v
	}
	q.Set("limit", strconv.Itoa(pageLimit))
	cl.idempotent = true
	var all []T
	seen := map[string]bool{}
	for range maxPages {
		cl.query = q
		var p page[T]
		if err := c.do(ctx, cl, &p); err != nil {
			return nil, err
		}
		all = append(all, p.Items...)
		next := p.cursor()
		if next == "" || len(p.Items) == 0 {
			return all, nil
		}
		if seen[next] {
			return nil, c.newPagingError(cl, fmt.Errorf("cursor %q repeated", next))
		}
		seen[next] = true
		q.Set("cursor", next)
	}
	return nil, c.newPagingError(cl, fmt.Errorf("list did not end after %d pages", maxPages))
}

func (c *Client) newPagingError(cl call, err error) error {
	return c.newError(cl, http.StatusOK, err)
}

// segment escapes one path segment, refusing an empty one (which would
// silently address a different resource).
func segment(op, what, v string) (string, error) {
	if strings.TrimSpace(v) == "" {
		return "", fmt.Errorf("composio: %s: %s is required", op, what)
	}
	return url.PathEscape(v), nil
}

// WithoutRetries returns a copy of c that never retries: a 429 or a 5xx is
// returned at once (with Retry-After in the APIError), for callers that
// would rather stop and come back later, like a periodic batch.
func (c *Client) WithoutRetries() *Client {
	cp := *c
	cp.maxRetries = 0
	return &cp
}
