package opa

import (
	"context"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/mizuchi-uploadr/mizuchi/internal/authz"
	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

// Options configure New.
type Options struct {
	// Config names a remote server (URL, PolicyPath) or an embedded policy
	// (PolicyFile, Query); TimeoutSeconds bounds each decision.
	Config config.OPA
	// HTTPClient and Propagator are for a remote server (RemoteOptions).
	HTTPClient *http.Client
	Propagator propagation.TextMapPropagator
}

// New returns the remote authorizer when Config.URL is set and the
// embedded one otherwise (the config package guarantees one of the two).
func New(ctx context.Context, opts Options) (authz.Authorizer, error) {
	cfg := opts.Config
	timeout := time.Duration(cfg.TimeoutSeconds) * time.Second
	if cfg.URL != "" {
		return NewRemote(RemoteOptions{
			URL: cfg.URL, PolicyPath: cfg.PolicyPath, Timeout: timeout,
			HTTPClient: opts.HTTPClient, Propagator: opts.Propagator,
		})
	}
	return NewEmbedded(ctx, EmbeddedOptions{PolicyFile: cfg.PolicyFile, Query: cfg.Query, Timeout: timeout})
}
