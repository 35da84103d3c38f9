// Package integrations connects users' OAuth apps (Gmail, Slack, BigQuery)
// through Composio: signed OAuth state, the redirect allowlist, the connect,
// callback, disconnect and tool flows, and the worker handlers that confirm
// accounts and run Composio tools.
package integrations
