// Package config reads the service's settings from environment variables and
// checks them before any server starts.
package config
