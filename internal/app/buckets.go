package app

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"google.golang.org/grpc"

	"github.com/mizuchi-uploadr/mizuchi/internal/auth"
	"github.com/mizuchi-uploadr/mizuchi/internal/auth/jwt"
	"github.com/mizuchi-uploadr/mizuchi/internal/auth/sigv4"
	"github.com/mizuchi-uploadr/mizuchi/internal/auth/tlsclient"
	"github.com/mizuchi-uploadr/mizuchi/internal/authz"
	"github.com/mizuchi-uploadr/mizuchi/internal/authz/opa"
	"github.com/mizuchi-uploadr/mizuchi/internal/authz/openfga"
	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
	"github.com/mizuchi-uploadr/mizuchi/internal/backend/fs"
	s3backend "github.com/mizuchi-uploadr/mizuchi/internal/backend/s3"
	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api"
	"github.com/mizuchi-uploadr/mizuchi/internal/telemetry"
)

// buildBucket builds one bucket's backend, authentication and
// authorization, as part of a generation: what needs closing goes to
// a.closers, periodic work to a.cleanups (both the generation's).
func (a *generation) buildBucket(ctx context.Context, c *config.Bucket) (*s3api.Bucket, error) {
	be, err := a.buildBackend(ctx, c)
	if err != nil {
		return nil, err
	}
	if cl, ok := be.(backend.Closer); ok {
		a.closers = append(a.closers, cl.Close)
	}
	chain, err := a.buildAuth(ctx, c)
	if err != nil {
		return nil, err
	}
	b := &s3api.Bucket{
		Name:    c.Name,
		Prefix:  c.PathPrefix,
		Backend: be,
		Auth:    chain,
		Upload:  c.Upload,
		Region:  "us-east-1",
		CORS:    c.CORS,
		Limits:  a.bucketLimits(c),
	}
	if c.Auth != nil && c.Auth.SigV4 != nil && c.Auth.SigV4.Region != "" {
		b.Region = c.Auth.SigV4.Region
	}
	if c.Authz != nil && c.Authz.Enabled {
		if b.Authz, err = a.buildAuthz(ctx, c); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (a *generation) buildBackend(ctx context.Context, c *config.Bucket) (backend.Backend, error) {
	switch {
	case c.Filesystem != nil:
		store, err := fs.New(fs.Options{Root: c.Filesystem.Root, MinPartSize: int64(c.Upload.MinPartSize), Logger: a.log})
		if err != nil {
			return nil, err
		}
		a.addCleanup(c, store)
		return &metered{Backend: store, bucket: c.Name, metrics: a.metrics}, nil
	case c.S3 != nil:
		store, err := s3backend.New(ctx, s3backend.Options{
			Config:                *c.S3,
			Upload:                c.Upload,
			BucketName:            c.Name,
			Metrics:               a.metrics,
			Logger:                a.log.With("bucket", c.Name),
			TracerProvider:        a.tracing.Provider(),
			WrapTransport:         a.wrapTransport,
			ZeroCopy:              a.cfg.Server.ZeroCopy,
			Memory:                a.memory,
			StallTimeout:          time.Duration(c.S3.StallTimeoutSeconds) * time.Second,
			ResponseHeaderTimeout: time.Duration(c.S3.ResponseHeaderTimeoutSeconds) * time.Second,
			CleanupSkipPrefixes:   a.cfg.CleanupSkipPrefixes(c),
		})
		if err != nil {
			return nil, err
		}
		a.addCleanup(c, store)
		return store, nil
	}
	return nil, fmt.Errorf("no backend configured")
}

// wrapTransport adds client spans and W3C trace context to outgoing calls.
func (a *App) wrapTransport(rt http.RoundTripper) http.RoundTripper {
	return telemetry.WrapTransport(rt, a.tracing.Provider(), a.tracing.Propagator())
}

// httpClient is a pooled client for an engine or key server, traced. Its
// idle connections are closed with the generation.
func (a *generation) httpClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	a.closers = append(a.closers, func() error { tr.CloseIdleConnections(); return nil })
	return &http.Client{Transport: a.wrapTransport(tr)}
}

func (a *generation) buildAuth(ctx context.Context, c *config.Bucket) (auth.Authenticator, error) {
	opts := auth.ChainOptions{
		Bucket:  c.Name,
		Metrics: a.metrics,
		Logger:  a.log,
		Tracer:  a.tracing.Provider().Tracer("github.com/mizuchi-uploadr/mizuchi/internal/auth"),
	}
	if c.Auth == nil || !c.Auth.Enabled {
		opts.Anonymous = true
		return auth.NewChain(opts), nil
	}
	if c.Auth.SigV4 != nil {
		v4, err := sigv4.New(*c.Auth.SigV4, sigv4.Options{Logger: a.log, ReplayStore: a.replaySet(c.Name, *c.Auth.SigV4)})
		if err != nil {
			return nil, fmt.Errorf("sigv4: %w", err)
		}
		opts.Methods = append(opts.Methods, v4)
	}
	if c.Auth.JWT != nil {
		j, err := jwt.New(ctx, *c.Auth.JWT, jwt.Options{HTTPClient: a.httpClient(), Logger: a.log})
		if err != nil {
			return nil, fmt.Errorf("jwt: %w", err)
		}
		a.closers = append(a.closers, func() error { j.Close(); return nil })
		opts.Methods = append(opts.Methods, j)
		opts.JWT = true
	}
	if c.Auth.TLSClient != nil {
		// Last: a request's own signature or token decides before the
		// certificate of its connection.
		m, err := tlsclient.New(*c.Auth.TLSClient)
		if err != nil {
			return nil, err
		}
		opts.Methods = append(opts.Methods, m)
	}
	return auth.NewChain(opts), nil
}

func (a *generation) buildAuthz(ctx context.Context, c *config.Bucket) (authz.Authorizer, error) {
	var (
		inner      authz.Authorizer
		engine     string
		ttl, limit int
	)
	switch z := c.Authz; {
	case z.OPA != nil:
		engine, ttl, limit = "opa", z.OPA.CacheTTLSeconds, z.OPA.CacheMaxEntries
		o, err := opa.New(ctx, opa.Options{Config: *z.OPA, HTTPClient: a.httpClient(), Propagator: a.tracing.Propagator()})
		if err != nil {
			return nil, fmt.Errorf("opa: %w", err)
		}
		inner = o
	case z.OpenFGA != nil:
		engine, ttl, limit = "openfga", z.OpenFGA.CacheTTLSeconds, z.OpenFGA.CacheMaxEntries
		// The package's pooled transport trusts ca_file; traced here. TLS
		// and the token of the grpc transport come from the config too.
		tr, err := openfga.NewTransport(*z.OpenFGA)
		if err != nil {
			return nil, fmt.Errorf("openfga: %w", err)
		}
		f, err := openfga.New(ctx, openfga.Options{
			Config:     *z.OpenFGA,
			Objects:    z.OpenFGA.Objects,
			Timeout:    time.Duration(z.OpenFGA.TimeoutSeconds) * time.Second,
			HTTPClient: &http.Client{Transport: a.wrapTransport(tr)},
			Propagator: a.tracing.Propagator(),
			GRPCDialOptions: []grpc.DialOption{
				grpc.WithUnaryInterceptor(telemetry.UnaryClientInterceptor(a.tracing.Provider(), a.tracing.Propagator())),
			},
		})
		if err != nil {
			return nil, fmt.Errorf("openfga: %w", err)
		}
		a.closers = append(a.closers, f.Close)
		inner = f
	default:
		return nil, fmt.Errorf("authz enabled without an engine")
	}
	return authz.NewCache(inner, authz.CacheOptions{
		TTL:            time.Duration(ttl) * time.Second,
		MaxEntries:     limit,
		Engine:         engine,
		Bucket:         c.Name,
		Metrics:        a.metrics,
		TracerProvider: a.tracing.Provider(),
	}), nil
}
