// Package tracing carries OpenTelemetry trace context from the REST API through NATS job headers to the workers, exporting spans over OTLP/HTTP only when OTEL_EXPORTER_OTLP_ENDPOINT is set.
package tracing
