// Package messages defines the NATS subjects, headers and versioned job and
// reply envelopes that the API node and the workers exchange. It has no
// dependency on a live connection.
package messages
