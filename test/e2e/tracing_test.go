package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/auth/jwt"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/faultproxy"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/jaeger"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/opaserver"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/testproc"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/versitygw"
)

// trcHex returns n random bytes in hex.
func trcHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// trcConfig is a mizuchi configuration with tracing, one s3 bucket
// "trc" behind JWT (HS256) and remote OPA.
const trcConfig = `server:
  address: 127.0.0.1:{{S3_PORT}}
metrics:
  address: 127.0.0.1:{{METRICS_PORT}}
logging:
  level: debug
  format: json
tracing:
  enabled: true
  service_name: %[1]s
  record_object_keys: false
  otlp:
    endpoint: %[2]s
    protocol: %[3]s
  sampling:
    strategy: always
  batch:
    scheduled_delay_millis: 100
buckets:
  - name: trc
    path_prefix: /trc
    s3:
      bucket: trc-store
      region: us-east-1
      endpoint: %[4]s
      force_path_style: true
      access_key: %[5]s
      secret_key: %[6]s
    auth:
      enabled: true
      jwt:
        algorithm: HS256
        secret: %[7]s
    authz:
      enabled: true
      opa:
        url: %[8]s
        policy_path: mizuchi/allow
    upload:
      multipart_threshold: 5MiB
      part_size: 5MiB
      concurrent_parts: 2
`

// trcSpanByName returns the spans named name.
func trcSpansNamed(spans []jaeger.Span, name string) []jaeger.Span {
	var out []jaeger.Span
	for _, s := range spans {
		if s.OperationName == name {
			out = append(out, s)
		}
	}
	return out
}

func trcKind(s jaeger.Span) string {
	v, _ := s.Tag("span.kind")
	k, _ := v.(string)
	return k
}

// trcHasAncestor reports whether span descends from ancestor (by span id)
// within spans.
func trcHasAncestor(spans []jaeger.Span, s jaeger.Span, ancestor string) bool {
	byID := make(map[string]jaeger.Span, len(spans))
	for _, sp := range spans {
		byID[sp.SpanID] = sp
	}
	for range len(spans) {
		p := s.ParentSpanID()
		if p == "" {
			return false
		}
		if p == ancestor {
			return true
		}
		next, ok := byID[p]
		if !ok {
			return false
		}
		s = next
	}
	return false
}

// trcWait polls jaeger until the trace satisfies ok, returning its spans
// and the raw JSON the query API served.
func trcWait(t *testing.T, jg *jaeger.Server, traceID string, what string, ok func([]jaeger.Span) bool) ([]jaeger.Span, []byte) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var spans []jaeger.Span
	for {
		spans = jg.Trace(t, traceID)
		if ok(spans) {
			return spans, trcRawTrace(t, jg, traceID)
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace %s: %s not seen in jaeger after 30s; spans:\n%s", traceID, what, trcDescribe(spans))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func trcRawTrace(t *testing.T, jg *jaeger.Server, traceID string) []byte {
	t.Helper()
	resp, body := rawRequest(t, http.MethodGet, jg.QueryURL+"/api/traces/"+traceID, nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("jaeger query: %s: %s", resp.Status, body)
	}
	return []byte(body)
}

func trcDescribe(spans []jaeger.Span) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "  %s %s (%s) parent=%s\n", s.SpanID, s.OperationName, trcKind(s), s.ParentSpanID())
	}
	return b.String()
}

// trcNoSecrets fails if any of the secrets appears in text.
func trcNoSecrets(t *testing.T, where, text string, secrets map[string]string) {
	t.Helper()
	for name, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s contains the %s", where, name)
		}
	}
}

// trcTraceparentRE parses a W3C traceparent.
var trcTraceparentRE = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$`)

// trcBackendRequests returns the requests the backend received carrying
// traceID, with the parent span id of each.
func trcBackendRequests(hop *faultproxy.HTTP, traceID string) (reqs []faultproxy.Recorded, parents []string) {
	for _, r := range hop.Requests() {
		m := trcTraceparentRE.FindStringSubmatch(r.Header.Get("Traceparent"))
		if m != nil && m[1] == traceID {
			reqs = append(reqs, r)
			parents = append(parents, m[2])
		}
	}
	return reqs, parents
}

// trcPut uploads body to url with a bearer token and extra headers.
func trcPut(t *testing.T, url, token string, body []byte, extra map[string]string) {
	t.Helper()
	h := http.Header{}
	h.Set("Authorization", "Bearer "+token)
	h.Set("Content-Type", "application/octet-stream")
	for k, v := range extra {
		h.Set(k, v)
	}
	resp, out := rawRequest(t, http.MethodPut, url, bytes.NewReader(body), h)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT %s: %s: %s", url, resp.Status, out)
	}
	if want := `"` + md5hex(body) + `"`; len(body) < 5<<20 && resp.Header.Get("ETag") != want {
		t.Fatalf("ETag %s, want %s", resp.Header.Get("ETag"), want)
	}
}

// TestTracingEndToEnd runs the built binary against a real Jaeger, a real
// versitygw (behind a hop that records what it receives) and a real OPA,
// over both OTLP protocols, and checks the trace of real uploads.
func TestTracingEndToEnd(t *testing.T) {
	t.Parallel()
	jg := jaeger.Start(t)
	gw := versitygw.Start(t)
	gw.CreateBucket(t, "trc-store")

	subject := "trc-subject-" + trcHex(t, 8)
	jwtSecret := "trc-jwt-secret-" + trcHex(t, 16)
	opa := opaserver.Start(t, fmt.Sprintf(`package mizuchi

default allow := false

allow if input.subject == %q
`, subject))

	for _, proto := range []struct {
		name, protocol, endpoint string
	}{
		{name: "grpc", protocol: "grpc", endpoint: "http://" + jg.OTLPGRPC},
		{name: "http-protobuf", protocol: "http/protobuf", endpoint: "http://" + jg.OTLPHTTP},
	} {
		t.Run(proto.name, func(t *testing.T) {
			t.Parallel()
			// Each protocol has its own hop so the recorded headers are its own.
			hop := faultproxy.StartHTTP(t, gw.Addr)
			service := "mizuchi-trc-" + proto.name
			m := startMizuchi(t, fmt.Sprintf(trcConfig, service, proto.endpoint, proto.protocol,
				hop.URL, gw.AccessKey, gw.SecretKey, jwtSecret, opa.URL))
			token, err := jwt.Mint(jwt.MintOptions{Subject: subject, Secret: []byte(jwtSecret)})
			if err != nil {
				t.Fatal(err)
			}

			for _, up := range []struct {
				name  string
				size  int
				parts int // 0: a single PutObject
			}{
				{name: "single", size: 64 << 10},
				{name: "multipart", size: 2*5<<20 + 12345, parts: 3},
			} {
				t.Run(up.name, func(t *testing.T) {
					traceID, parentID := trcHex(t, 16), trcHex(t, 8)
					key := "trc-key-" + trcHex(t, 8) + "/object.bin"
					body := randomBytes(t, up.size)
					trcPut(t, m.URL+"/trc/"+key, token, body, map[string]string{
						"Traceparent": "00-" + traceID + "-" + parentID + "-01",
						"Tracestate":  "trc=1",
					})
					if got := gw.Object(t, "trc-store", key); !bytes.Equal(got, body) {
						t.Fatalf("stored %d bytes, want the %d uploaded", len(got), len(body))
					}

					backendOps := []string{"S3.PutObject"}
					if up.parts > 0 {
						backendOps = []string{"S3.CreateMultipartUpload", "S3.UploadPart", "S3.CompleteMultipartUpload"}
					}
					var server jaeger.Span
					spans, raw := trcWait(t, jg, traceID, "server, auth, authz and backend spans", func(spans []jaeger.Span) bool {
						ss := trcSpansNamed(spans, "PUT /trc")
						if len(ss) != 1 {
							return false
						}
						server = ss[0]
						need := map[string]int{"auth.jwt": 1, "authz.opa": 1}
						for _, op := range backendOps {
							need[op] = 1
						}
						if up.parts > 0 {
							need["S3.UploadPart"] = up.parts
						}
						for name, n := range need {
							if len(trcSpansNamed(spans, name)) < n {
								return false
							}
						}
						// An HTTP client span for the OPA call and each backend call.
						calls := 1
						if up.parts > 0 {
							calls = 2 + up.parts
						}
						return len(trcSpansNamed(spans, "PUT"))+len(trcSpansNamed(spans, "POST")) >= 1+calls
					})

					// The server span continues the caller's trace.
					if server.ParentSpanID() != parentID {
						t.Errorf("server span's parent %q, want the traceparent's %s", server.ParentSpanID(), parentID)
					}
					if k := trcKind(server); k != "server" {
						t.Errorf("server span kind %q", k)
					}
					if server.Service != service {
						t.Errorf("service %q, want %q", server.Service, service)
					}
					for key, want := range map[string]any{
						"http.route":                "/trc/{key}",
						"http.request.method":       "PUT",
						"http.response.status_code": float64(200),
						"mizuchi.bucket":            "trc",
					} {
						if v, ok := server.Tag(key); !ok || v != want {
							t.Errorf("server span %s = %v (present %v), want %v", key, v, ok, want)
						}
					}
					hash, ok := server.Tag("enduser.hash")
					if s, _ := hash.(string); !ok || len(s) < 16 {
						t.Errorf("server span enduser.hash = %v (present %v)", hash, ok)
					}
					for _, k := range []string{"mizuchi.upload.client_wait_seconds", "mizuchi.upload.backend_wait_seconds"} {
						if _, ok := server.Tag(k); !ok {
							t.Errorf("server span has no %s", k)
						}
					}
					for _, k := range []string{"url.path", "url.full", "aws.s3.key"} {
						if v, ok := server.Tag(k); ok {
							t.Errorf("server span records %s = %v with record_object_keys false", k, v)
						}
					}

					// Auth, authz and backend calls are the server span's children.
					for _, name := range append([]string{"auth.jwt", "authz.opa"}, backendOps...) {
						for _, s := range trcSpansNamed(spans, name) {
							if s.ParentSpanID() != server.SpanID {
								t.Errorf("%s's parent is %s, want the server span %s", name, s.ParentSpanID(), server.SpanID)
							}
						}
					}
					if got := len(trcSpansNamed(spans, "S3.UploadPart")); got != up.parts {
						t.Errorf("%d S3.UploadPart spans, want one per part (%d)", got, up.parts)
					}
					authz := trcSpansNamed(spans, "authz.opa")[0]
					if v, _ := authz.Tag("authz.decision"); v != "allow" {
						t.Errorf("authz.opa authz.decision = %v, want allow", v)
					}
					if v, ok := authz.Tag("authz.cache_hit"); !ok || v != false {
						t.Errorf("authz.opa authz.cache_hit = %v (present %v), want false for a new key", v, ok)
					}
					authn := trcSpansNamed(spans, "auth.jwt")[0]
					if v, _ := authn.Tag("auth.method"); v != "jwt" {
						t.Errorf("auth.jwt auth.method = %v, want jwt", v)
					}
					if v, _ := authn.Tag("auth.result"); v != "success" {
						t.Errorf("auth.jwt auth.result = %v, want success", v)
					}
					// The OPA call and every backend HTTP call have client spans
					// under the server span.
					var clients []jaeger.Span
					for _, s := range spans {
						if trcKind(s) == "client" && (s.OperationName == "PUT" || s.OperationName == "POST") {
							if !trcHasAncestor(spans, s, server.SpanID) {
								t.Errorf("client span %s %s is not under the server span", s.OperationName, s.SpanID)
							}
							clients = append(clients, s)
						}
					}

					// versitygw saw the same trace id, on every call of the upload,
					// each parented by a span Jaeger holds.
					reqs, parents := trcBackendRequests(hop, traceID)
					wantCalls := 1
					if up.parts > 0 {
						wantCalls = 2 + up.parts
					}
					if len(reqs) != wantCalls {
						t.Errorf("versitygw received %d requests with trace id %s, want %d", len(reqs), traceID, wantCalls)
					}
					parts := 0
					for i, r := range reqs {
						if strings.Contains(r.URL, "partNumber=") {
							parts++
						}
						found := false
						for _, c := range clients {
							found = found || c.SpanID == parents[i]
						}
						if !found {
							t.Errorf("versitygw's traceparent names parent %s, not one of the client spans", parents[i])
						}
					}
					if parts != up.parts {
						t.Errorf("versitygw received %d part uploads with the trace id, want %d", parts, up.parts)
					}

					// Nothing secret or identifying anywhere in the trace.
					trcNoSecrets(t, "the trace", string(raw), map[string]string{
						"raw subject":        subject,
						"token":              token,
						"JWT secret":         jwtSecret,
						"object key":         key,
						"backend secret key": gw.SecretKey,
					})
				})
			}

			t.Run("refused uploads", func(t *testing.T) {
				// A denied subject and a forged token: the failures must not
				// leak the subject or the token either.
				other := "trc-denied-" + trcHex(t, 8)
				denied, err := jwt.Mint(jwt.MintOptions{Subject: other, Secret: []byte(jwtSecret)})
				if err != nil {
					t.Fatal(err)
				}
				forgedSubject := "trc-forged-" + trcHex(t, 8)
				forged, err := jwt.Mint(jwt.MintOptions{Subject: forgedSubject, Secret: []byte("trc-wrong-" + trcHex(t, 16))})
				if err != nil {
					t.Fatal(err)
				}
				for _, tc := range []struct {
					name, token, span string
					status            int
				}{
					{name: "denied by OPA", token: denied, span: "authz.opa", status: http.StatusForbidden},
					{name: "forged token", token: forged, span: "auth.jwt", status: http.StatusUnauthorized},
				} {
					traceID := trcHex(t, 16)
					h := http.Header{
						"Authorization": {"Bearer " + tc.token},
						"Traceparent":   {"00-" + traceID + "-" + trcHex(t, 8) + "-01"},
					}
					resp, out := rawRequest(t, http.MethodPut, m.URL+"/trc/trc-refused-"+trcHex(t, 8), strings.NewReader("no"), h)
					if resp.StatusCode != tc.status {
						t.Fatalf("%s: %s, want %d: %s", tc.name, resp.Status, tc.status, out)
					}
					_, raw := trcWait(t, jg, traceID, "the server span and "+tc.span, func(spans []jaeger.Span) bool {
						ss := trcSpansNamed(spans, "PUT /trc")
						if len(ss) != 1 || len(trcSpansNamed(spans, tc.span)) != 1 {
							return false
						}
						v, _ := ss[0].Tag("http.response.status_code")
						return v == float64(tc.status)
					})
					trcNoSecrets(t, tc.name+" trace", string(raw), map[string]string{
						"denied subject": other,
						"forged subject": forgedSubject,
						"token":          tc.token,
						"JWT secret":     jwtSecret,
					})
				}
				trcNoSecrets(t, "the log", m.Proc.Output(), map[string]string{
					"denied subject": other,
					"forged subject": forgedSubject,
					"denied token":   denied,
					"forged token":   forged,
				})
			})

			t.Run("invalid traceparent", func(t *testing.T) {
				for _, tc := range []struct {
					name, header string
				}{
					{name: "garbage", header: "not-a-trace-context"},
					{name: "zero trace id", header: "00-00000000000000000000000000000000-00f067aa0ba902b7-01"},
					{name: "zero span id", header: "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"},
					{name: "version ff", header: "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
					{name: "bad hex", header: "00-4bf92f3577b34da6a3ce929d0e0e473G-00f067aa0ba902b7-01"},
				} {
					t.Run(tc.name, func(t *testing.T) {
						agent := "trc-agent-" + trcHex(t, 8)
						key := "trc-invalid-" + trcHex(t, 8)
						before := len(hop.Requests())
						trcPut(t, m.URL+"/trc/"+key, token, []byte("tiny"), map[string]string{
							"Traceparent": tc.header,
							"User-Agent":  agent,
						})
						// The backend got a fresh, valid trace context.
						var traceID string
						for _, r := range hop.Requests()[before:] {
							if mm := trcTraceparentRE.FindStringSubmatch(r.Header.Get("Traceparent")); mm != nil && r.Method == http.MethodPut {
								traceID = mm[1]
							}
						}
						if traceID == "" {
							t.Fatalf("versitygw received no valid traceparent for the upload")
						}
						if strings.Contains(tc.header, traceID) {
							t.Fatalf("the invalid header's trace id %s was continued", traceID)
						}
						spans, _ := trcWait(t, jg, traceID, "the server span", func(spans []jaeger.Span) bool {
							return len(trcSpansNamed(spans, "PUT /trc")) == 1
						})
						server := trcSpansNamed(spans, "PUT /trc")[0]
						if p := server.ParentSpanID(); p != "" {
							t.Errorf("server span has parent %s, want a new root", p)
						}
						if ua, _ := server.Tag("user_agent.original"); ua != agent {
							t.Errorf("the trace of %s is not this upload's (user agent %v)", traceID, ua)
						}
					})
				}
			})

			// Nothing secret in the log either (debug level).
			trcNoSecrets(t, "the log", m.Proc.Output(), map[string]string{
				"raw subject":        subject,
				"token":              token,
				"JWT secret":         jwtSecret,
				"backend secret key": gw.SecretKey,
			})
		})
	}
}

// trcRefused returns a loopback address where nothing listens.
func trcRefused(t *testing.T) string {
	t.Helper()
	return "127.0.0.1:" + strconv.Itoa(testproc.FreePort(t))
}

// trcMetric sums the samples of a metric (any labels) on a Prometheus
// text endpoint.
func trcMetric(t *testing.T, metricsURL, name string) (float64, bool) {
	t.Helper()
	resp, body := rawRequest(t, http.MethodGet, metricsURL+"/metrics", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("metrics: %s", resp.Status)
	}
	var sum float64
	found := false
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
		found = true
	}
	return sum, found
}

// trcExporterState returns the state whose mizuchi_tracing_exporter_state
// sample is 1.
func trcExporterState(t *testing.T, metricsURL string) string {
	t.Helper()
	_, body := rawRequest(t, http.MethodGet, metricsURL+"/metrics", nil, nil)
	re := regexp.MustCompile(`(?m)^mizuchi_tracing_exporter_state\{[^}]*state="([a-z_]+)"[^}]*\} 1$`)
	if m := re.FindStringSubmatch(body); m != nil {
		return m[1]
	}
	return ""
}

// TestTracingCollectorDownNeverFailsUploads points tracing at a port that
// refuses connections and at one that accepts and never answers: every
// upload succeeds, the lost spans are counted and readiness only reports
// the exporter's state.
func TestTracingCollectorDownNeverFailsUploads(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, protocol, addr string
	}{
		{name: "refused grpc", protocol: "grpc", addr: trcRefused(t)},
		{name: "refused http", protocol: "http/protobuf", addr: trcRefused(t)},
		{name: "black hole grpc", protocol: "grpc", addr: testproc.BlackHole(t).Addr},
		{name: "black hole http", protocol: "http/protobuf", addr: testproc.BlackHole(t).Addr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := startMizuchi(t, fmt.Sprintf(`server:
  address: 127.0.0.1:{{S3_PORT}}
metrics:
  address: 127.0.0.1:{{METRICS_PORT}}
tracing:
  enabled: true
  otlp:
    endpoint: http://%s
    protocol: %s
    timeout_seconds: 1
  sampling:
    strategy: always
  batch:
    scheduled_delay_millis: 100
    max_export_batch_size: 8
buckets:
  - name: trc
    path_prefix: /trc
    filesystem:
      root: {{DIR}}/data
`, tc.addr, tc.protocol))

			const uploads = 40
			var took []time.Duration
			for i := range uploads {
				body := []byte(fmt.Sprintf("upload %d while the collector is down\n", i))
				start := time.Now()
				resp, out := rawRequest(t, http.MethodPut, fmt.Sprintf("%s/trc/down/%d.txt", m.URL, i), bytes.NewReader(body),
					http.Header{"Traceparent": {"00-" + trcHex(t, 16) + "-" + trcHex(t, 8) + "-01"}})
				took = append(took, time.Since(start))
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("upload %d: %s: %s", i, resp.Status, out)
				}
				assertFile(t, fmt.Sprintf("%s/data/down/%d.txt", m.Dir, i), body)
				if i%8 == 7 {
					// Give the exporter batches to fail on while uploads go on.
					time.Sleep(150 * time.Millisecond)
				}
			}
			// Export runs in the background: were it on the request path,
			// every upload would wait out the one-second collector timeout.
			slices.Sort(took)
			if med := took[len(took)/2]; med >= time.Second {
				t.Errorf("median upload took %v: export is on the request path", med)
			}

			deadline := time.Now().Add(30 * time.Second)
			for {
				n, ok := trcMetric(t, m.MetricsURL, "mizuchi_tracing_export_failures_total")
				if !ok {
					t.Fatal("mizuchi_tracing_export_failures_total is not exported")
				}
				if n > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("mizuchi_tracing_export_failures_total still 0 after 30s")
				}
				time.Sleep(200 * time.Millisecond)
			}
			state := trcExporterState(t, m.MetricsURL)
			if state != "failing" && state != "breaker_open" {
				t.Errorf("exporter state gauge %q, want failing or breaker_open", state)
			}

			resp, body := rawRequest(t, http.MethodGet, m.URL+"/readyz", nil, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("/readyz %s with the collector down: %s", resp.Status, body)
			}
			var ready struct {
				Ready   bool              `json:"ready"`
				Details map[string]string `json:"details"`
			}
			if err := json.Unmarshal([]byte(body), &ready); err != nil {
				t.Fatalf("/readyz: %v: %s", err, body)
			}
			if !ready.Ready {
				t.Errorf("/readyz not ready: %s", body)
			}
			if s := ready.Details["tracing"]; s != "failing" && s != "breaker_open" {
				t.Errorf("/readyz details tracing = %q, want failing or breaker_open: %s", s, body)
			}

			// Uploads still succeed in whatever state the breaker is now.
			resp, out := rawRequest(t, http.MethodPut, m.URL+"/trc/down/after.txt", strings.NewReader("after"), nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("upload after failures: %s: %s", resp.Status, out)
			}
		})
	}
}
