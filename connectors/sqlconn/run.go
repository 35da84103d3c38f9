package sqlconn

import (
	"context"
	"encoding/json"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

// Engine is what one SQL connector does for each tool, once the shared code
// has decoded and checked the call.
type Engine interface {
	// Query runs one statement (already checked when the connection is
	// read-only), returning at most maxRows rows.
	Query(ctx context.Context, stmt string, maxRows int) (*connectors.Result, error)
	// CheckReadOnly refuses, with a KindQuery error, a statement that a
	// read-only connection must not run. Each dialect owns its guard.
	CheckReadOnly(stmt string) error
	ListTables(ctx context.Context, p ListParams, maxRows int) (*connectors.Result, error)
	Describe(ctx context.Context, p DescribeParams) (*connectors.Result, error)
}

// Run is the Source.Run of every SQL connector: it applies the call's
// deadline, decodes the tool's params, checks a read-only statement, caps the
// rows and hands the call to the engine.
func Run(ctx context.Context, e Engine, writes bool, tool string, params json.RawMessage, lim connectors.Limits) (*connectors.Result, error) {
	if lim.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, lim.Timeout)
		defer cancel()
	}
	switch tool {
	case ToolQuery:
		qp, err := decodeQuery(params)
		if err != nil {
			return nil, err
		}
		if !writes {
			if err := e.CheckReadOnly(qp.Query); err != nil {
				return nil, err
			}
		}
		return e.Query(ctx, qp.Query, rowCap(lim, qp.MaxRows))
	case ToolListTables:
		lp, err := decodeList(params)
		if err != nil {
			return nil, err
		}
		return e.ListTables(ctx, lp, rowCap(lim, 0))
	case ToolDescribe:
		dp, err := decodeDescribe(params)
		if err != nil {
			return nil, err
		}
		return e.Describe(ctx, dp)
	}
	return nil, connectors.Errorf(connectors.KindInput, "unknown tool %q", tool)
}
