package api

import "net/http"

// statusOf is the one table from an error code, as workers, connectors, the
// tools service and the OAuth side return it, to the HTTP status the API
// answers. No HTTP status travels on the bus; it is chosen here, at the
// edge. An unknown code is a 500.
func statusOf(code string) int {
	if s, ok := codeStatus[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

var codeStatus = map[string]int{
	// The caller's input.
	"invalid_request": http.StatusBadRequest, "invalid_params": http.StatusBadRequest,
	"invalid_field": http.StatusBadRequest, "missing_field": http.StatusBadRequest,
	"invalid_state": http.StatusBadRequest, "unknown_db_type": http.StatusBadRequest,
	"unknown_provider": http.StatusBadRequest, "provider_not_configured": http.StatusBadRequest,
	"redirect_not_allowed": http.StatusBadRequest, "host_not_allowed": http.StatusBadRequest,
	// Not found, or another user's: the same answer.
	"database_not_found": http.StatusNotFound, "tool_not_found": http.StatusNotFound,
	"integration_not_found": http.StatusNotFound, "job_not_found": http.StatusNotFound,
	// The state of a resource.
	"integration_inactive": http.StatusConflict, "integration_not_connected": http.StatusConflict,
	// The user's database or app ran the call and it failed.
	"query_failed": http.StatusUnprocessableEntity, "connection_failed": http.StatusUnprocessableEntity,
	"query_timeout": http.StatusUnprocessableEntity, "database_unavailable": http.StatusUnprocessableEntity,
	"tool_failed": http.StatusUnprocessableEntity, "result_too_large": http.StatusUnprocessableEntity,
	"rate_limited":   http.StatusTooManyRequests,
	"internal_error": http.StatusInternalServerError,
	// Composio answered badly.
	"composio_error": http.StatusBadGateway, "composio_unauthorized": http.StatusBadGateway,
	"outcome_unknown": http.StatusBadGateway,
	// Our infrastructure.
	"storage_unavailable": http.StatusServiceUnavailable, "broker_unavailable": http.StatusServiceUnavailable,
	"database_busy":        http.StatusServiceUnavailable,
	"composio_unavailable": http.StatusServiceUnavailable, "oauth_not_configured": http.StatusServiceUnavailable,
	"composio_not_configured": http.StatusServiceUnavailable,
	"worker_timeout":          http.StatusGatewayTimeout, "job_expired": http.StatusGatewayTimeout,
}
