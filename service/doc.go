// Package service wires configuration, storage, the broker, the API node and
// the workers into the processes the binary runs: serve (all in one), api and
// worker.
package service
