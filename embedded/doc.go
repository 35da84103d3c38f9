// Package embedded runs the in-process NATS and MongoDB-compatible (FerretDB) servers used when no external ones are configured.
package embedded
