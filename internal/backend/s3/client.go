package s3

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
)

// tuneTransport sizes the shared connection pool for concurrency and sets
// every phase timeout except a total one: a multi-gigabyte body may take
// as long as it takes while it progresses.
func tuneTransport(o *Options) func(*http.Transport) {
	return func(tr *http.Transport) {
		tr.MaxIdleConns = o.MaxConns
		tr.MaxIdleConnsPerHost = o.MaxConns
		tr.MaxConnsPerHost = 0
		tr.IdleConnTimeout = 90 * time.Second
		tr.TLSHandshakeTimeout = o.DialTimeout
		tr.ResponseHeaderTimeout = o.ResponseHeaderTimeout
		tr.ExpectContinueTimeout = time.Second
		tr.DisableCompression = true
		// Bodies go out through ReadFrom (sendfile) or large writes; a
		// bigger buffer only helps the buffered fallback.
		tr.WriteBufferSize = 256 << 10
		tr.ReadBufferSize = 64 << 10
		d := &net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if tc, ok := c.(*net.TCPConn); ok {
				// A request abandoned mid-body (client gone, stall) must
				// end in a reset, not a clean FIN: some stores (versitygw
				// 1.8.0) otherwise keep the truncated body as the object.
				_ = tc.SetLinger(0)
			}
			return c, err
		}
	}
}

// newHTTP builds the backend's one transport. The SDK's buildable client
// is used to resolve it so AWS_CA_BUNDLE and proxy settings apply; the
// transport is then owned here (closed by Close, wrapped for tracing).
func newHTTP(ctx context.Context, o *Options) (aws.Config, *http.Transport, error) {
	buildable := awshttp.NewBuildableClient().
		WithTransportOptions(tuneTransport(o)).
		WithTimeout(0)
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithHTTPClient(buildable),
		awsconfig.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }),
	}
	if o.Config.Region != "" {
		opts = append(opts, awsconfig.WithRegion(o.Config.Region))
	}
	if o.Config.AccessKey != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(
			o.Config.AccessKey, o.Config.SecretKey, o.Config.SessionToken)))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, nil, fmt.Errorf("s3 backend: load AWS configuration: %w", err)
	}
	b, ok := cfg.HTTPClient.(*awshttp.BuildableClient)
	if !ok {
		return aws.Config{}, nil, fmt.Errorf("s3 backend: unexpected HTTP client %T", cfg.HTTPClient)
	}
	return cfg, b.GetTransport(), nil
}

// newClient builds the SDK client on the shared transport.
func newClient(cfg aws.Config, o *Options, hc *httpClient) *s3.Client {
	return s3.NewFromConfig(cfg, func(so *s3.Options) {
		if o.Config.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Config.Endpoint)
		}
		so.UsePathStyle = o.Config.ForcePathStyle
		so.HTTPClient = hc
		so.Retryer = aws.NopRetryer{}
		// The SDK must not hash, buffer or aws-chunk bodies: checksums are
		// only those the client declared, forwarded as headers.
		so.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		so.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		// 100-continue would cost a round trip per request; the store
		// refusing early is rare and a refused body is just discarded.
		so.ContinueHeaderThresholdBytes = -1
		so.APIOptions = append(so.APIOptions, addPayloadHash)
	})
}

type payloadHashKey struct{}

// withPayloadHash asks for the request to be signed with the client's
// declared hex SHA-256 of the body, so the store verifies it.
func withPayloadHash(ctx context.Context, sha256hex string) context.Context {
	if sha256hex == "" {
		return ctx
	}
	return context.WithValue(ctx, payloadHashKey{}, sha256hex)
}

// addPayloadHash sets the payload hash before the SDK would compute one
// (which reads, and for unseekable bodies refuses, the stream):
// UNSIGNED-PAYLOAD unless the client declared a SHA-256.
func addPayloadHash(stack *middleware.Stack) error {
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("MizuchiPayloadHash",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			h, _ := ctx.Value(payloadHashKey{}).(string)
			if h == "" {
				h = "UNSIGNED-PAYLOAD"
			}
			return next.HandleFinalize(v4.SetPayloadHash(ctx, h), in)
		}), middleware.Before)
}
