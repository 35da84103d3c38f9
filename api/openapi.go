package api

import (
	_ "embed"
	"net/http"
	"strconv"
)

// openAPIDoc is the hand-written OpenAPI 3.1 document of the REST API. The
// test in openapi_test.go fails when a registered route is missing from it.
//
//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI returns the OpenAPI 3.1 document (JSON). Do not modify the slice.
func OpenAPI() []byte { return openAPIDoc }

// OpenAPIHandler serves the document. Register it on the /api router
// outside the API-key group: r.Method(http.MethodGet, "/openapi.json", OpenAPIHandler()).
func OpenAPIHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-cache")
		h.Set("Content-Length", strconv.Itoa(len(openAPIDoc)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(openAPIDoc)
		}
	})
}
