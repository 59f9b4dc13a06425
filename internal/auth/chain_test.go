package auth_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/mizuchi-uploadr/mizuchi/internal/auth"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
	"github.com/mizuchi-uploadr/mizuchi/internal/telemetry"
)

// fakeAuth answers with a fixed outcome and counts its calls.
type fakeAuth struct {
	name  auth.Method
	p     *auth.Principal
	err   error
	calls int
}

func (f *fakeAuth) Authenticate(context.Context, *http.Request) (*auth.Principal, error) {
	f.calls++
	return f.p, f.err
}

func (f *fakeAuth) Method() auth.Method { return f.name }

func missing(name auth.Method) *fakeAuth {
	return &fakeAuth{name: name, err: auth.ErrNoCredentials}
}

func ok(name auth.Method, sub string) *fakeAuth {
	return &fakeAuth{name: name, p: &auth.Principal{Subject: sub, Method: name}}
}

func denied(name auth.Method, e *s3err.Error) *fakeAuth {
	return &fakeAuth{name: name, err: e}
}

func broken(name auth.Method) *fakeAuth {
	return &fakeAuth{name: name, err: errors.New("jwks endpoint down")}
}

func TestChain(t *testing.T) {
	badToken := s3err.ErrInvalidToken.WithStatus(401).WithHeader("WWW-Authenticate", `Bearer realm="mizuchi", error="invalid_token"`)
	tests := []struct {
		name       string
		methods    []*fakeAuth
		anonymous  bool
		jwt        bool
		wantSub    string
		wantMethod auth.Method
		wantStatus int
		wantCode   string
		wantChal   string // WWW-Authenticate
		wantCalls  []int
		wantMetric [3]string // method, result (bucket is fixed)
	}{
		{
			name:    "anonymous ignores credentials",
			methods: []*fakeAuth{ok(auth.MethodJWT, "alice")}, anonymous: true,
			wantSub: auth.AnonymousSubject, wantMethod: auth.MethodAnonymous, wantCalls: []int{0},
			wantMetric: [3]string{"anonymous", "success"},
		},
		{
			name:    "first method with credentials decides",
			methods: []*fakeAuth{ok(auth.MethodJWT, "alice"), ok(auth.MethodSigV4, "bob")}, jwt: true,
			wantSub: "alice", wantMethod: auth.MethodJWT, wantCalls: []int{1, 0},
			wantMetric: [3]string{"jwt", "success"},
		},
		{
			name:    "missing falls through to the next method",
			methods: []*fakeAuth{missing(auth.MethodJWT), ok(auth.MethodSigV4, "bob")}, jwt: true,
			wantSub: "bob", wantMethod: auth.MethodSigV4, wantCalls: []int{1, 1},
			wantMetric: [3]string{"sigv4", "success"},
		},
		{
			name:    "bad credentials stop the chain",
			methods: []*fakeAuth{denied(auth.MethodJWT, badToken), ok(auth.MethodSigV4, "bob")}, jwt: true,
			wantStatus: 401, wantCode: "InvalidToken", wantChal: `Bearer realm="mizuchi", error="invalid_token"`, wantCalls: []int{1, 0},
			wantMetric: [3]string{"jwt", "denied"},
		},
		{
			name:    "SigV4 denial keeps its S3 code",
			methods: []*fakeAuth{missing(auth.MethodJWT), denied(auth.MethodSigV4, s3err.ErrSignatureDoesNotMatch)}, jwt: true,
			wantStatus: 403, wantCode: "SignatureDoesNotMatch", wantCalls: []int{1, 1},
			wantMetric: [3]string{"sigv4", "denied"},
		},
		{
			name:    "no credentials with JWT configured is a 401 challenge",
			methods: []*fakeAuth{missing(auth.MethodSigV4), missing(auth.MethodJWT)}, jwt: true,
			wantStatus: 401, wantCode: "AccessDenied", wantChal: `Bearer realm="mizuchi"`, wantCalls: []int{1, 1},
			wantMetric: [3]string{"jwt", "missing"},
		},
		{
			name:       "no credentials without JWT is 403",
			methods:    []*fakeAuth{missing(auth.MethodSigV4)},
			wantStatus: 403, wantCode: "AccessDenied", wantCalls: []int{1},
			wantMetric: [3]string{"sigv4", "missing"},
		},
		{
			name:    "technical failure is 503 and never falls through",
			methods: []*fakeAuth{broken(auth.MethodJWT), ok(auth.MethodSigV4, "bob")}, jwt: true,
			wantStatus: 503, wantCode: "ServiceUnavailable", wantCalls: []int{1, 0},
			wantMetric: [3]string{"jwt", "error"},
		},
		{
			name:       "5xx s3err is a technical failure",
			methods:    []*fakeAuth{denied(auth.MethodSigV4, s3err.ErrInternalError)},
			wantStatus: 500, wantCode: "InternalError", wantCalls: []int{1},
			wantMetric: [3]string{"sigv4", "error"},
		},
		{
			name:       "nil principal without error is a technical failure",
			methods:    []*fakeAuth{{name: auth.MethodSigV4}},
			wantStatus: 503, wantCode: "ServiceUnavailable", wantCalls: []int{1},
			wantMetric: [3]string{"sigv4", "error"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m := telemetry.NewMetrics(reg, telemetry.BuildInfo{})
			methods := make([]auth.Authenticator, len(tc.methods))
			for i, f := range tc.methods {
				methods[i] = f
			}
			c := auth.NewChain(auth.ChainOptions{Bucket: "uploads", Methods: methods, Anonymous: tc.anonymous, JWT: tc.jwt, Metrics: m})
			p, err := c.Authenticate(context.Background(), httptest.NewRequest(http.MethodPut, "/uploads/a", nil))
			if tc.wantStatus == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if p.Subject != tc.wantSub || p.Method != tc.wantMethod {
					t.Fatalf("principal = %+v", p)
				}
			} else {
				var e *s3err.Error
				if !errors.As(err, &e) {
					t.Fatalf("err = %v, want *s3err.Error", err)
				}
				if e.Status != tc.wantStatus || e.Code != tc.wantCode || e.Header.Get("WWW-Authenticate") != tc.wantChal {
					t.Fatalf("error = %d %s %q, want %d %s %q", e.Status, e.Code, e.Header.Get("WWW-Authenticate"), tc.wantStatus, tc.wantCode, tc.wantChal)
				}
			}
			for i, f := range tc.methods {
				if f.calls != tc.wantCalls[i] {
					t.Fatalf("method %d called %d times, want %d", i, f.calls, tc.wantCalls[i])
				}
			}
			if got := testutil.ToFloat64(m.AuthRequests.WithLabelValues("uploads", tc.wantMetric[0], tc.wantMetric[1])); got != 1 {
				t.Fatalf("auth_requests{%s,%s} = %v, want 1", tc.wantMetric[0], tc.wantMetric[1], got)
			}
			if got := testutil.CollectAndCount(m.AuthRequests); got != 1 {
				t.Fatalf("%d auth_requests series, want exactly 1", got)
			}
		})
	}
}

func TestChainTechnicalErrorKeepsCauseForTheLogOnly(t *testing.T) {
	var logs bytes.Buffer
	c := auth.NewChain(auth.ChainOptions{
		Bucket:  "uploads",
		Methods: []auth.Authenticator{broken(auth.MethodJWT)},
		Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
	})
	_, err := c.Authenticate(context.Background(), httptest.NewRequest(http.MethodPut, "/uploads/a", nil))
	w := httptest.NewRecorder()
	s3err.Write(w, nil, err, "/uploads/a", "R")
	if w.Code != 503 || strings.Contains(w.Body.String(), "jwks") {
		t.Fatalf("answer %d %q", w.Code, w.Body.String())
	}
	if !errors.Is(err, s3err.ErrServiceUnavailable) || !strings.Contains(err.Error(), "jwks endpoint down") {
		t.Fatalf("err = %v, want ServiceUnavailable carrying the cause", err)
	}
	if !strings.Contains(logs.String(), "jwks endpoint down") {
		t.Fatalf("cause not logged: %s", logs.String())
	}
}

func TestChainRecordsOneSpanPerMethodTried(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	c := auth.NewChain(auth.ChainOptions{
		Bucket:  "uploads",
		Methods: []auth.Authenticator{missing(auth.MethodJWT), ok(auth.MethodSigV4, "secret-subject")},
		JWT:     true,
		Tracer:  tp.Tracer("test"),
	})
	if _, err := c.Authenticate(context.Background(), httptest.NewRequest(http.MethodPut, "/uploads/a", nil)); err != nil {
		t.Fatal(err)
	}
	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	want := []struct{ name, result string }{{"auth.jwt", "missing"}, {"auth.sigv4", "success"}}
	for i, s := range spans {
		attrs := map[string]string{}
		for _, kv := range s.Attributes() {
			attrs[string(kv.Key)] = kv.Value.String()
			if strings.Contains(kv.Value.String(), "secret-subject") {
				t.Fatalf("span %s records the subject", s.Name())
			}
		}
		if s.Name() != want[i].name || attrs["auth.result"] != want[i].result {
			t.Fatalf("span %d = %s %v, want %s result=%s", i, s.Name(), attrs, want[i].name, want[i].result)
		}
	}
}

func TestChainWithoutNamer(t *testing.T) {
	tests := []struct {
		name       string
		a          unnamed
		wantMethod string
		wantResult string
	}{
		{name: "principal names the method", a: unnamed{p: &auth.Principal{Subject: "x", Method: auth.MethodSigV4}}, wantMethod: "sigv4", wantResult: "success"},
		{name: "principal without method", a: unnamed{p: &auth.Principal{Subject: "x"}}, wantMethod: "unknown", wantResult: "success"},
		{name: "denied", a: unnamed{err: s3err.ErrSignatureDoesNotMatch}, wantMethod: "unknown", wantResult: "denied"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m := telemetry.NewMetrics(reg, telemetry.BuildInfo{})
			c := auth.NewChain(auth.ChainOptions{Bucket: "b", Methods: []auth.Authenticator{tc.a}, Metrics: m})
			_, _ = c.Authenticate(context.Background(), httptest.NewRequest(http.MethodPut, "/b/a", nil))
			if got := testutil.ToFloat64(m.AuthRequests.WithLabelValues("b", tc.wantMethod, tc.wantResult)); got != 1 {
				t.Fatalf("count{%s,%s} = %v", tc.wantMethod, tc.wantResult, got)
			}
		})
	}
}

type unnamed struct {
	p   *auth.Principal
	err error
}

func (u unnamed) Authenticate(context.Context, *http.Request) (*auth.Principal, error) {
	return u.p, u.err
}
