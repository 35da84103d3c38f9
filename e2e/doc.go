// Package e2e holds the end-to-end tests: the whole service run in-process
// (embedded NATS and FerretDB) or as separate processes, driven over HTTP
// against the real databases of the machine.
package e2e
