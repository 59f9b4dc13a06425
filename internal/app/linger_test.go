package app

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// A handler that answers after reading part of a large body (a backend
// failure mid-upload) must not have its answer lost to a connection reset
// while the client, like the AWS SDKs, is still writing the body; with and
// without Expect: 100-continue.
func TestEarlyAnswerReachesAnHTTPClient(t *testing.T) {
	a := &App{}
	srv := httptest.NewServer(a.track(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.CopyN(io.Discard, r.Body, 1<<20)
		http.Error(w, "backend unavailable", http.StatusServiceUnavailable)
	})))
	defer srv.Close()
	for _, expect := range []bool{true, false} {
		for i := 0; i < 5; i++ {
			req, _ := http.NewRequest(http.MethodPut, srv.URL+"/k", io.LimitReader(zeros{}, 64<<20))
			req.ContentLength = 64 << 20
			if expect {
				req.Header.Set("Expect", "100-continue")
			}
			tr := &http.Transport{ExpectContinueTimeout: 5 * time.Second}
			resp, err := (&http.Client{Transport: tr}).Do(req)
			tr.CloseIdleConnections()
			if err != nil {
				t.Fatalf("expect=%v round %d: the answer was lost: %v", expect, i, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("status %d", resp.StatusCode)
			}
		}
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// A client whose wait for 100 Continue runs out sends its body anyway; a
// refusal answered without reading it must still reach the client.
func TestRefusalReachesAClientThatStoppedWaitingForContinue(t *testing.T) {
	a := &App{}
	srv := httptest.NewServer(a.track(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(100 * time.Millisecond) // the client's wait runs out first
		http.Error(w, "slow down", http.StatusServiceUnavailable)
	})))
	defer srv.Close()
	for i := 0; i < 5; i++ {
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/k", io.LimitReader(zeros{}, 64<<20))
		req.ContentLength = 64 << 20
		req.Header.Set("Expect", "100-continue")
		tr := &http.Transport{ExpectContinueTimeout: 10 * time.Millisecond}
		resp, err := (&http.Client{Transport: tr}).Do(req)
		tr.CloseIdleConnections()
		if err != nil {
			t.Fatalf("round %d: the answer was lost: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
}
