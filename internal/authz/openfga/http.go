package openfga

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	openfgav1 "github.com/openfga/api/proto/openfga/v1"
	fgasdk "github.com/openfga/go-sdk"
	fgaclient "github.com/openfga/go-sdk/client"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

const maxResponseBytes = 1 << 20

// httpChecker sends Check through the official SDK. The SDK (v0.6) has no
// call for the server's BatchCheck endpoint, so that one request is made
// directly, in the API's JSON shape, with the same HTTP client.
type httpChecker struct {
	sdk      *fgaclient.OpenFgaClient
	client   *http.Client
	batchURL string
}

func newHTTP(cfg config.OpenFGA, client *http.Client, prop propagation.TextMapPropagator) (*httpChecker, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("openfga: the http transport takes an http(s) URL")
	}
	if client == nil {
		tr, err := NewTransport(cfg)
		if err != nil {
			return nil, err
		}
		client = &http.Client{Transport: tr}
	}
	// Inject the trace context and the token on every request: the SDK's
	// Check and the direct batch check.
	traced := *client
	base := traced.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	traced.Transport = &headerTransport{base: base, prop: prop, auth: bearerHeader(cfg.APIToken)}
	sdk, err := fgaclient.NewSdkClient(&fgaclient.ClientConfiguration{
		ApiUrl:               cfg.URL,
		StoreId:              cfg.StoreID,
		AuthorizationModelId: cfg.ModelID,
		HTTPClient:           &traced,
		// One attempt: the decision is bounded by our timeout, and a
		// retry loop would only hold the upload.
		RetryParams: &fgasdk.RetryParams{MaxRetry: 0, MinWaitInMs: 0},
	})
	if err != nil {
		return nil, fmt.Errorf("openfga: %w", err)
	}
	return &httpChecker{
		sdk:      sdk,
		client:   &traced,
		batchURL: u.JoinPath("stores", cfg.StoreID, "batch-check").String(),
	}, nil
}

// headerTransport adds the trace context and, with a token, the
// Authorization header.
type headerTransport struct {
	base http.RoundTripper
	prop propagation.TextMapPropagator
	auth string
}

func (t *headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	t.prop.Inject(req.Context(), propagation.HeaderCarrier(req.Header))
	if t.auth != "" {
		req.Header.Set("Authorization", t.auth)
	}
	return t.base.RoundTrip(req)
}

func (h *httpChecker) check(ctx context.Context, req *openfgav1.CheckRequest) (bool, error) {
	body := fgaclient.ClientCheckRequest{
		User:     req.GetTupleKey().GetUser(),
		Relation: req.GetTupleKey().GetRelation(),
		Object:   req.GetTupleKey().GetObject(),
	}
	for _, t := range req.GetContextualTuples().GetTupleKeys() {
		body.ContextualTuples = append(body.ContextualTuples, fgaclient.ClientContextualTupleKey{
			User: t.GetUser(), Relation: t.GetRelation(), Object: t.GetObject(),
		})
	}
	resp, err := h.sdk.Check(ctx).Body(body).Execute()
	if err != nil {
		return false, httpError("check", err)
	}
	return resp.GetAllowed(), nil
}

func (h *httpChecker) batchCheck(ctx context.Context, req *openfgav1.BatchCheckRequest) (*openfgav1.BatchCheckResponse, error) {
	// The store id is in the path, not the body.
	body := &openfgav1.BatchCheckRequest{
		Checks:               req.GetChecks(),
		AuthorizationModelId: req.GetAuthorizationModelId(),
	}
	payload, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("openfga: encode batch check: %w", err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, h.batchURL, bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("openfga: batch check: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := h.client.Do(hreq)
	if err != nil {
		return nil, httpError("batch check", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, httpError("batch check", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("openfga: batch check over http: HTTP status %d", resp.StatusCode)
	}
	var out openfgav1.BatchCheckResponse
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("openfga: decode batch check: %w", err)
	}
	return &out, nil
}

func (h *httpChecker) close() error {
	h.client.CloseIdleConnections()
	return nil
}

// httpError keeps the HTTP status or the transport failure, not the
// server's message, which can quote the tuple and the subject.
func httpError(op string, err error) error {
	var coded interface{ ResponseStatusCode() int }
	if errors.As(err, &coded) {
		return fmt.Errorf("openfga: %s over http: HTTP status %d", op, coded.ResponseStatusCode())
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("openfga: %s over http: %w", op, context.DeadlineExceeded)
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return fmt.Errorf("openfga: %s over http: %w", op, uerr.Err)
	}
	return fmt.Errorf("openfga: %s over http failed", op)
}

var _ checker = (*httpChecker)(nil)
