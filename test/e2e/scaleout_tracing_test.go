package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/jaeger"
)

// soTraceConfig: two replicas export to one Jaeger with one subject hash
// key. %[1]s is the OTLP/gRPC endpoint, %[2]s the key.
const soTraceConfig = `server:
  address: 127.0.0.1:{{S3_PORT}}
metrics:
  address: 127.0.0.1:{{METRICS_PORT}}
tracing:
  enabled: true
  service_name: mizuchi-fleet
  otlp: { endpoint: "http://%[1]s", protocol: grpc }
  sampling: { strategy: always }
  batch: { scheduled_delay_millis: 100 }
  subject_hash_key: "%[2]s"
buckets:
  - name: drop
    path_prefix: /drop
    filesystem: { root: "{{DIR}}/files" }
`

// TestScaleOutSubjectHashAcrossReplicas: with tracing.subject_hash_key,
// one subject has the same enduser.hash on every replica, so its traces
// correlate fleet-wide; another key gives another hash.
func TestScaleOutSubjectHashAcrossReplicas(t *testing.T) {
	j := jaeger.Start(t)
	key := "fleet-subject-hash-key-0123456789abcdef0123"
	a := startMizuchi(t, fmt.Sprintf(soTraceConfig, j.OTLPGRPC, key))
	b := startMizuchi(t, fmt.Sprintf(soTraceConfig, j.OTLPGRPC, key))
	c := startMizuchi(t, fmt.Sprintf(soTraceConfig, j.OTLPGRPC, strings.Replace(key, "fleet", "other", 1)))
	hash := func(m *Mizuchi, name string) string {
		t.Helper()
		id := make([]byte, 16)
		_, _ = rand.Read(id)
		traceID := hex.EncodeToString(id)
		h := http.Header{"Traceparent": {"00-" + traceID + "-00f067aa0ba902b7-01"}}
		resp, body := rawRequest(t, "PUT", m.URL+"/drop/"+name, strings.NewReader("x"), h)
		if resp.StatusCode != 200 {
			t.Fatalf("upload: %d %s", resp.StatusCode, body)
		}
		for _, s := range j.TraceN(t, traceID, 1) {
			if trcKind(s) == "server" {
				v, _ := s.Tag("enduser.hash")
				if h, _ := v.(string); h != "" {
					return h
				}
			}
		}
		t.Fatalf("no server span with enduser.hash in trace %s", traceID)
		return ""
	}
	ha, hb, hc := hash(a, "a.txt"), hash(b, "b.txt"), hash(c, "c.txt")
	if ha != hb {
		t.Errorf("one subject, one key, two replicas: enduser.hash %s and %s", ha, hb)
	}
	if ha == hc {
		t.Errorf("another subject hash key gives the same enduser.hash %s", ha)
	}
}
