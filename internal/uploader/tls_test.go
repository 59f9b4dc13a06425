package uploader

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

func TestHTTPSWithAndWithoutTheServersCA(t *testing.T) {
	f := &fakeS3{t: t, objects: map[string][]byte{}, headers: map[string]http.Header{},
		uploads: map[string]*fakeUpload{}, attempts: map[string]int{}}
	srv := httptest.NewUnstartedServer(f)
	var conns atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)

	untrusting := newTestUploader(t, Options{Retries: 3})
	_, err := untrusting.Upload(context.Background(), objectAt(t, srv.URL, "/uploads/x", payload(10)))
	if Classify(err) != KindFailed || conns.Load() != 1 {
		t.Fatalf("untrusted certificate: %v (kind %v) after %d connections; want one attempt, KindFailed", err, Classify(err), conns.Load())
	}

	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	trusting := newTestUploader(t, Options{Client: NewHTTPClient(TransportOptions{MaxConnsPerHost: 2, TLSConfig: &tls.Config{RootCAs: pool}}),
		MultipartThreshold: 100, PartSize: 100})
	if _, err := trusting.Upload(context.Background(), objectAt(t, srv.URL, "/uploads/y", payload(250))); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.object("/uploads/y"); len(got) != 250 {
		t.Fatalf("stored %d bytes over https", len(got))
	}
}
