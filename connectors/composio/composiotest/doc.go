// Package composiotest is an in-process fake of Composio's v3 REST API, for
// tests and for a local sandbox that needs no Composio account.
//
// It serves the calls package composio makes (toolkits, tools, hosted
// connection links, connected accounts, tool execution) under both the
// /api/v3 and /api/v3.1 prefixes, with Composio's published JSON shapes. It
// also serves the consent page a link's redirect_url points to, which
// activates the account and redirects the browser to the callback URL, as
// Composio does. Seeded toolkits carry Composio's real slugs, gmail, slack
// and googlebigquery (tools GMAIL_*, SLACK_*, GOOGLEBIGQUERY_*), with auth
// configs ac_gmail, ac_slack and ac_bigquery; a toolkit Composio does not
// have, such as "bigquery", is unknown here too.
//
// Tests can inject faults (FailNext, SetLatency), steer consent outcomes
// (SetNextOutcome, SetOutcome, ?deny=1 on the consent URL), replace tool
// behaviour (SetToolHandler) and inspect what happened (Requests,
// Executions, Deleted, Account). A Server is safe for concurrent use.
package composiotest
