package composio

import (
	"context"
	"time"
)

// SetSleep replaces the wait between attempts, so tests never really sleep.
func SetSleep(c *Client, f func(ctx context.Context, d time.Duration) error) { c.sleep = f }

// SetJitter replaces the backoff jitter.
func SetJitter(c *Client, f func(d time.Duration) time.Duration) { c.jitter = f }

// ParseRetryAfter exposes parseRetryAfter.
var ParseRetryAfter = parseRetryAfter
