// Package api is the stateless REST node: it checks the API key and input,
// reads and writes records in storage, and turns test-connection, execute and
// OAuth-callback calls into JetStream jobs whose replies it waits for.
package api
