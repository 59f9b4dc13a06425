package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestHealthcheckExitCodes(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }))
	defer ok.Close()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	defer down.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"healthy", []string{"--url", ok.URL}, 0},
		{"unhealthy", []string{"--url", down.URL}, 1},
		{"unreachable", []string{"--url", closed.URL}, 1},
		{"bad flag", []string{"--nope"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if got := run(append([]string{"healthcheck"}, tt.args...), &out, &errOut); got != tt.want {
				t.Fatalf("exit %d, want %d (%s)", got, tt.want, errOut.String())
			}
		})
	}
}
