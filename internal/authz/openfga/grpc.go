package openfga

import (
	"context"
	"fmt"
	"strings"

	openfgav1 "github.com/openfga/api/proto/openfga/v1"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

// grpcAPI is the part of the generated OpenFGA client used here.
type grpcAPI interface {
	Check(ctx context.Context, in *openfgav1.CheckRequest, opts ...grpc.CallOption) (*openfgav1.CheckResponse, error)
	BatchCheck(ctx context.Context, in *openfgav1.BatchCheckRequest, opts ...grpc.CallOption) (*openfgav1.BatchCheckResponse, error)
}

type grpcChecker struct {
	conn *grpc.ClientConn
	api  grpcAPI
}

// newGRPC dials with TLS (cfg.TLS, trusting cfg.CAFile) or in plaintext,
// sends cfg.APIToken as a bearer token on every call, then applies extra.
func newGRPC(cfg config.OpenFGA, extra []grpc.DialOption, prop propagation.TextMapPropagator) (*grpcChecker, error) {
	target := cfg.URL
	if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") {
		return nil, fmt.Errorf("openfga: the grpc transport takes host:port, not an http URL")
	}
	creds := insecure.NewCredentials()
	if cfg.TLS {
		tc, err := tlsConfig(cfg)
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(tc)
	}
	opts := make([]grpc.DialOption, 0, len(extra)+3)
	opts = append(opts, grpc.WithTransportCredentials(creds))
	if h := bearerHeader(cfg.APIToken); h != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer{header: h}))
	}
	opts = append(opts, extra...)
	opts = append(opts, grpc.WithChainUnaryInterceptor(propagate(prop)))
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("openfga: grpc client: %w", err)
	}
	return &grpcChecker{conn: conn, api: openfgav1.NewOpenFGAServiceClient(conn)}, nil
}

// propagate puts the trace context into the call's metadata.
func propagate(prop propagation.TextMapPropagator) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		carrier := propagation.MapCarrier{}
		prop.Inject(ctx, carrier)
		for k, v := range carrier {
			ctx = metadata.AppendToOutgoingContext(ctx, k, v)
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

func (g *grpcChecker) check(ctx context.Context, req *openfgav1.CheckRequest) (bool, error) {
	resp, err := g.api.Check(ctx, req)
	if err != nil {
		return false, grpcError("check", err)
	}
	return resp.GetAllowed(), nil
}

func (g *grpcChecker) batchCheck(ctx context.Context, req *openfgav1.BatchCheckRequest) (*openfgav1.BatchCheckResponse, error) {
	resp, err := g.api.BatchCheck(ctx, req)
	if err != nil {
		return nil, grpcError("batch check", err)
	}
	return resp, nil
}

func (g *grpcChecker) close() error { return g.conn.Close() }

// grpcError keeps only the status code, named, not the message: OpenFGA's
// messages can quote the tuple, and with it the subject. OpenFGA's own
// codes (1000 and up, e.g. 1010 bearer_token_missing) get their names
// from the API's enums; a failed TLS handshake says so.
func grpcError(op string, err error) error {
	st, _ := status.FromError(err)
	code := int32(st.Code())
	for _, names := range []map[int32]string{
		openfgav1.AuthErrorCode_name, openfgav1.ErrorCode_name, openfgav1.NotFoundErrorCode_name,
		openfgav1.InternalErrorCode_name, openfgav1.UnprocessableContentErrorCode_name,
	} {
		if name, ok := names[code]; ok && code >= 1000 {
			return fmt.Errorf("openfga: %s over grpc: %s (%d)", op, name, code)
		}
	}
	if st.Code() == codes.Unavailable && strings.Contains(st.Message(), "authentication handshake failed") {
		return fmt.Errorf("openfga: %s over grpc: %s: TLS handshake failed (check tls and ca_file)", op, codes.Unavailable)
	}
	return fmt.Errorf("openfga: %s over grpc: %s", op, st.Code())
}

var _ checker = (*grpcChecker)(nil)
