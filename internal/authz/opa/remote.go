package opa

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/mizuchi-uploadr/mizuchi/internal/authz"
)

// DefaultTimeout bounds one decision when no timeout is configured.
const DefaultTimeout = 2 * time.Second

// maxResponseBytes bounds what is read of a decision response.
const maxResponseBytes = 1 << 20

// RemoteOptions configure a Remote.
type RemoteOptions struct {
	// URL is the OPA server's base URL, e.g. http://127.0.0.1:8181.
	URL string
	// PolicyPath is the document to ask for, e.g. mizuchi/allow.
	PolicyPath string
	// Timeout bounds one decision; zero means DefaultTimeout.
	Timeout time.Duration
	// HTTPClient defaults to a client with its own pooled, keep-alive
	// transport.
	HTTPClient *http.Client
	// Propagator injects the trace context into the request; nil means
	// W3C trace context.
	Propagator propagation.TextMapPropagator
}

// Remote asks an OPA server over its REST data API.
type Remote struct {
	endpoint   string
	timeout    time.Duration
	client     *http.Client
	propagator propagation.TextMapPropagator
}

// NewRemote checks the options and returns a Remote. It does not contact
// the server.
func NewRemote(opts RemoteOptions) (*Remote, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("opa: url must be an http(s) URL with a host")
	}
	path := strings.Trim(opts.PolicyPath, "/")
	if path == "" {
		return nil, errors.New("opa: policy_path is required")
	}
	for _, seg := range strings.Split(path, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "?#%") {
			return nil, fmt.Errorf("opa: policy_path %q is not a plain document path", opts.PolicyPath)
		}
	}
	endpoint := u.JoinPath("v1", "data", path)
	endpoint.RawQuery, endpoint.Fragment = "", ""
	r := &Remote{
		endpoint:   endpoint.String(),
		timeout:    opts.Timeout,
		client:     opts.HTTPClient,
		propagator: opts.Propagator,
	}
	if r.timeout <= 0 {
		r.timeout = DefaultTimeout
	}
	if r.client == nil {
		r.client = &http.Client{Transport: NewTransport()}
	}
	if r.propagator == nil {
		r.propagator = propagation.TraceContext{}
	}
	return r, nil
}

// NewTransport returns a keep-alive transport sized for many concurrent
// decisions against one server.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil, // the policy engine is reached directly
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
	}
}

type remoteRequest struct {
	Input *authz.Input `json:"input"`
}

type remoteResponse struct {
	Result json.RawMessage `json:"result"`
}

// Authorize asks the server. Only a result of exactly true, or an object
// whose allow is true, allows.
func (r *Remote) Authorize(ctx context.Context, in *authz.Input) (bool, error) {
	allow, _, err := r.AuthorizeLimits(ctx, in)
	return allow, err
}

// AuthorizeLimits asks the server; a result {"allow": true, "limits":
// {…}} allows with limits (authz.ParseDecision).
func (r *Remote) AuthorizeLimits(ctx context.Context, in *authz.Input) (bool, *authz.Limits, error) {
	if in == nil {
		return false, nil, authz.ErrNoInput
	}
	body, err := json.Marshal(remoteRequest{Input: in})
	if err != nil {
		return false, nil, fmt.Errorf("opa: encode input: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.endpoint, bytes.NewReader(body))
	if err != nil {
		return false, nil, fmt.Errorf("opa: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	r.propagator.Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := r.client.Do(req)
	if err != nil {
		return false, nil, fmt.Errorf("opa: decision request: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return false, nil, fmt.Errorf("opa: decision request: HTTP status %d", resp.StatusCode)
	}
	var out remoteResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponseBytes)).Decode(&out); err != nil {
		return false, nil, fmt.Errorf("opa: decode decision: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	// Missing (undefined), null, false or another type: deny.
	allow, limits := authz.ParseDecision(out.Result)
	return allow, limits, nil
}

var _ authz.LimitingAuthorizer = (*Remote)(nil)
