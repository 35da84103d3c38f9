package api

import (
	"context"
	"net/http"
)

// Integrations is the OAuth side of the service (Composio). The API calls it
// for the /api/integrations routes and for the tools of connected apps.
type Integrations interface {
	// Tools lists the tools of the user's active integrations.
	Tools(ctx context.Context, userID string) ([]Tool, error)
}

func notConfigured(w http.ResponseWriter) {
	writeError(w, errUnavailable("composio_not_configured",
		"OAuth integrations are not configured on this server (set COMPOSIO_API_KEY and COMPOSIO_AUTH_CONFIGS)"))
}

func (s *Server) integrationsList(w http.ResponseWriter, _ *http.Request)       { notConfigured(w) }
func (s *Server) integrationsConnect(w http.ResponseWriter, _ *http.Request)    { notConfigured(w) }
func (s *Server) integrationsConnected(w http.ResponseWriter, _ *http.Request)  { notConfigured(w) }
func (s *Server) integrationsDisconnect(w http.ResponseWriter, _ *http.Request) { notConfigured(w) }
func (s *Server) integrationCallback(w http.ResponseWriter, _ *http.Request)    { notConfigured(w) }
