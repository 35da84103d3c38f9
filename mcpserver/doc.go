// Package mcpserver serves each user's tools over the Model Context Protocol
// at /mcp (streamable HTTP, per-user bearer tokens minted under
// /api/mcp/tokens).
package mcpserver
