package openfga

import (
	"context"
	"fmt"
	"strings"

	openfgav1 "github.com/openfga/api/proto/openfga/v1"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
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

func newGRPC(target string, dialOpts []grpc.DialOption, prop propagation.TextMapPropagator) (*grpcChecker, error) {
	if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") {
		return nil, fmt.Errorf("openfga: the grpc transport takes host:port, not an http URL")
	}
	opts := dialOpts
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	opts = append(opts[:len(opts):len(opts)], grpc.WithChainUnaryInterceptor(propagate(prop)))
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

// grpcError keeps only the status code: OpenFGA's messages can quote the
// tuple, and with it the subject.
func grpcError(op string, err error) error {
	return fmt.Errorf("openfga: %s over grpc: %s", op, status.Code(err))
}

var _ checker = (*grpcChecker)(nil)
