package jaeger

import (
	"bytes"
	"net/http"
	"testing"
)

// TestStartServesQueryAndReceivers checks the harness itself: the query API
// answers and the OTLP/HTTP receiver accepts an (empty) export.
func TestStartServesQueryAndReceivers(t *testing.T) {
	s := Start(t)
	resp, err := http.Post("http://"+s.OTLPHTTP+"/v1/traces", "application/json", bytes.NewReader([]byte(`{"resourceSpans":[]}`)))
	if err != nil {
		t.Fatalf("otlp http: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("otlp http status = %s", resp.Status)
	}
	if _, err := s.fetch("4bf92f3577b34da6a3ce929d0e0e4736"); err == nil {
		t.Fatalf("unknown trace found")
	}
}
