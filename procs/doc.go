// Package procs runs the Go scheduler on one CPU while the process has
// little in flight, and on all of them under load.
package procs
