// Package composio is a client for Composio's v3 REST API: toolkits, hosted
// connection links, connected accounts and tool execution, with retries for
// idempotent calls and errors classified for callers.
package composio
