package queue

import (
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/messages"
)

// A fast read still "queued" past the fast stream's MaxAge was lost (its
// reply went to a node that was gone); a durable job never is.
func TestStatusLost(t *testing.T) {
	t.Parallel()
	now := time.Now()
	old := now.Add(-DefaultSettings().FastMaxAge - 2*time.Minute)
	for _, c := range []struct {
		st   Status
		want bool
	}{
		{Status{Status: StatusQueued, Class: messages.Fast.String(), CreatedAt: old}, true},
		{Status{Status: StatusQueued, Class: messages.Fast.String(), CreatedAt: now.Add(-time.Minute)}, false},
		{Status{Status: StatusQueued, Class: messages.Durable.String(), CreatedAt: old}, false},
		{Status{Status: StatusQueued, CreatedAt: old}, false},
		{Status{Status: StatusRunning, Class: messages.Fast.String(), CreatedAt: old}, false},
		{Status{Status: StatusSucceeded, Class: messages.Fast.String(), CreatedAt: old}, false},
	} {
		if got := c.st.Lost(now); got != c.want {
			t.Errorf("%+v: Lost = %v, want %v", c.st, got, c.want)
		}
	}
}
