package opa

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/mizuchi-uploadr/mizuchi/internal/authz"
)

// DefaultQuery is asked when EmbeddedOptions.Query is empty.
const DefaultQuery = "data.mizuchi.allow"

// EmbeddedOptions configure an Embedded.
type EmbeddedOptions struct {
	// PolicyFile is a Rego (v1 syntax) module.
	PolicyFile string
	// Query defaults to DefaultQuery.
	Query string
	// Timeout bounds one evaluation; zero means DefaultTimeout.
	Timeout time.Duration
}

// Embedded evaluates a Rego policy in-process. The query is compiled once,
// at construction; a policy that does not compile fails NewEmbedded.
type Embedded struct {
	query   rego.PreparedEvalQuery
	timeout time.Duration
}

// NewEmbedded reads and compiles the policy.
func NewEmbedded(ctx context.Context, opts EmbeddedOptions) (*Embedded, error) {
	if opts.PolicyFile == "" {
		return nil, errors.New("opa: policy_file is required")
	}
	src, err := os.ReadFile(opts.PolicyFile)
	if err != nil {
		return nil, fmt.Errorf("opa: read policy: %w", err)
	}
	q := opts.Query
	if q == "" {
		q = DefaultQuery
	}
	pq, err := rego.New(
		rego.Query(q),
		rego.Module(opts.PolicyFile, string(src)),
		rego.SetRegoVersion(ast.RegoV1),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("opa: compile policy: %w", err)
	}
	e := &Embedded{query: pq, timeout: opts.Timeout}
	if e.timeout <= 0 {
		e.timeout = DefaultTimeout
	}
	return e, nil
}

// Authorize evaluates the query. Only a single, binding-free result of
// true (or an object whose allow is true) allows; undefined is a deny; an
// evaluation error is an error.
func (e *Embedded) Authorize(ctx context.Context, in *authz.Input) (bool, error) {
	allow, _, err := e.AuthorizeLimits(ctx, in)
	return allow, err
}

// AuthorizeLimits evaluates the query; a result {"allow": true,
// "limits": {…}} allows with limits (authz.ParseDecision).
func (e *Embedded) AuthorizeLimits(ctx context.Context, in *authz.Input) (bool, *authz.Limits, error) {
	if in == nil {
		return false, nil, authz.ErrNoInput
	}
	input, err := ast.InterfaceToValue(inputDocument(in))
	if err != nil {
		return false, nil, fmt.Errorf("opa: convert input: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	rs, err := e.query.Eval(ctx, rego.EvalParsedInput(input))
	if err != nil {
		return false, nil, fmt.Errorf("opa: evaluate policy: %w", err)
	}
	if rs.Allowed() {
		return true, nil, nil
	}
	if len(rs) != 1 || len(rs[0].Bindings) != 0 || len(rs[0].Expressions) != 1 {
		return false, nil, nil
	}
	if _, isObject := rs[0].Expressions[0].Value.(map[string]any); !isObject {
		return false, nil, nil
	}
	raw, err := json.Marshal(rs[0].Expressions[0].Value)
	if err != nil {
		return false, nil, nil
	}
	allow, limits := authz.ParseDecision(raw)
	return allow, limits, nil
}

// inputDocument is the input as the generic values OPA converts without a
// JSON round trip; it has the same shape as authz.Input's JSON form.
func inputDocument(in *authz.Input) map[string]any {
	var claims any
	if in.Context.Claims != nil {
		claims = in.Context.Claims
	}
	return map[string]any{
		"subject": in.Subject,
		"action":  in.Action,
		"resource": map[string]any{
			"bucket": in.Resource.Bucket,
			"key":    in.Resource.Key,
		},
		"context": map[string]any{
			"method":         in.Context.Method,
			"path":           in.Context.Path,
			"ip":             in.Context.IP,
			"content_length": in.Context.ContentLength,
			"content_type":   in.Context.ContentType,
			"claims":         claims,
			"auth_method":    in.Context.AuthMethod,
		},
	}
}

var _ authz.Authorizer = (*Embedded)(nil)
