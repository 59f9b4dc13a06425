package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/mizuchi-uploadr/mizuchi/internal/auth"
	"github.com/mizuchi-uploadr/mizuchi/internal/authz"
	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
	"github.com/mizuchi-uploadr/mizuchi/internal/backend/fs"
	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api"
)

// buildBucket builds one bucket's backend, authentication and
// authorization.
func (a *App) buildBucket(ctx context.Context, c *config.Bucket) (*s3api.Bucket, error) {
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
	}
	if c.Auth != nil && c.Auth.SigV4 != nil && c.Auth.SigV4.Region != "" {
		b.Region = c.Auth.SigV4.Region
	}
	if c.Authz != nil && c.Authz.Enabled {
		az, err := a.buildAuthz(ctx, c)
		if err != nil {
			return nil, err
		}
		b.Authz = az
	}
	return b, nil
}

func (a *App) buildBackend(ctx context.Context, c *config.Bucket) (backend.Backend, error) {
	switch {
	case c.Filesystem != nil:
		return fs.New(fs.Options{Root: c.Filesystem.Root, MinPartSize: int64(c.Upload.MinPartSize), Logger: a.log})
	case c.S3 != nil:
		return nil, errors.New("s3 backend not available in this build")
	}
	return nil, fmt.Errorf("no backend configured")
}

// anonymous authenticates every request as the anonymous subject.
type anonymous struct{}

func (anonymous) Authenticate(context.Context, *http.Request) (*auth.Principal, error) {
	return &auth.Principal{Subject: auth.AnonymousSubject, Method: auth.MethodAnonymous}, nil
}

func (a *App) buildAuth(ctx context.Context, c *config.Bucket) (auth.Authenticator, error) {
	if c.Auth == nil || !c.Auth.Enabled {
		return anonymous{}, nil
	}
	return nil, errors.New("authentication is not available in this build")
}

func (a *App) buildAuthz(ctx context.Context, c *config.Bucket) (authz.Authorizer, error) {
	return nil, errors.New("authorization is not available in this build")
}
