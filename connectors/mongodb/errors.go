package mongodb

import (
	"context"
	"errors"
	"strings"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/auth"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

// Server error codes that mean the credentials were refused.
const (
	codeAuthenticationFailed = 18
	codeMechanismUnavailable = 334
)

// classify turns a driver error into a connectors.Error whose message never
// shows the connection string's user information. opening is true while
// connecting or pinging, when a timeout means the server is unreachable.
func (s *source) classify(err error, opening bool) error {
	if err == nil {
		return nil
	}
	mk := func(k connectors.Kind, prefix string) error {
		return &connectors.Error{Kind: k, Msg: s.target.redact(prefix + err.Error()), Err: err}
	}
	var ce *connectors.Error
	if errors.As(err, &ce) {
		return ce
	}
	var sel topology.ServerSelectionError
	isSelection := errors.As(err, &sel)
	if pe := s.policyErr.Load(); pe != nil && (opening || isSelection) {
		return &connectors.Error{Kind: connectors.KindPolicy, Msg: pe.Msg, Err: err}
	}
	if ce := s.certErr.Load(); ce != nil && (opening || isSelection) {
		return &connectors.Error{Kind: ce.Kind, Msg: ce.Msg, Err: err}
	}
	if ce := connectors.CertError(err, "MongoDB"); ce != nil {
		ce.Msg = s.target.redact(ce.Msg)
		return ce
	}
	var ae *auth.Error
	if errors.As(err, &ae) {
		return mk(connectors.KindAuth, "MongoDB refused the credentials: ")
	}
	var se mongo.ServerError
	if errors.As(err, &se) && (se.HasErrorCode(codeAuthenticationFailed) || se.HasErrorCode(codeMechanismUnavailable)) {
		return mk(connectors.KindAuth, "MongoDB refused the credentials: ")
	}
	switch {
	case isSelection:
		return mk(connectors.KindUnavailable, "cannot reach MongoDB: ")
	case errors.Is(err, mongo.ErrClientDisconnected):
		return mk(connectors.KindUnavailable, "")
	case mongo.IsTimeout(err) && opening:
		return mk(connectors.KindUnavailable, "timed out connecting to MongoDB: ")
	case mongo.IsTimeout(err):
		return mk(connectors.KindTimeout, "MongoDB query timed out: ")
	case errors.Is(err, context.Canceled):
		return mk(connectors.KindUnavailable, "")
	case mongo.IsNetworkError(err):
		return mk(connectors.KindUnavailable, "MongoDB connection failed: ")
	}
	if se != nil {
		return mk(connectors.KindQuery, "")
	}
	var ia mongo.InvalidArgumentError
	var me mongo.MarshalError
	if errors.As(err, &ia) || errors.As(err, &me) {
		return mk(connectors.KindInput, "")
	}
	if strings.Contains(err.Error(), "error parsing uri") || strings.Contains(err.Error(), "lookup") {
		return mk(connectors.KindUnavailable, "cannot resolve the connection string: ")
	}
	return mk(connectors.KindUnavailable, "")
}
