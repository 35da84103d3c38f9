// Package tools is the one service under REST and MCP: it lists a user's
// tools (saved databases and connected apps) and runs them through the job
// queue, choosing each job's class (fast or durable), and returns typed
// errors that carry a stable code (and, on a timeout, the job id). REST and
// MCP differ only in how they encode what it returns.
package tools
