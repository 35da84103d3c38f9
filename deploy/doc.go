// Package deploy holds the deployment manifests (Docker, compose, Kubernetes, NATS) and the tests that check them.
package deploy
