// Package openfgaserver runs a real OpenFGA server (openfga run, memory
// datastore) for tests, and creates a store, the Mizuchi sample
// authorization model and tuples through its API.
package openfgaserver

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	fgaclient "github.com/openfga/go-sdk/client"

	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/testproc"
)

// Model is the sample authorization model (docs/AUTHZ.md):
//
//	model
//	  schema 1.1
//	type user
//	type bucket
//	  relations
//	    define writer: [user]
//	type prefix
//	  relations
//	    define writer: [user]
const Model = `{
  "schema_version": "1.1",
  "type_definitions": [
    {"type": "user"},
    {"type": "bucket",
     "relations": {"writer": {"this": {}}},
     "metadata": {"relations": {"writer": {"directly_related_user_types": [{"type": "user"}]}}}},
    {"type": "prefix",
     "relations": {"writer": {"this": {}}},
     "metadata": {"relations": {"writer": {"directly_related_user_types": [{"type": "user"}]}}}}
  ]
}`

// Tuple is a relationship tuple to write.
type Tuple struct{ User, Relation, Object string }

// Options select how the server is reached.
type Options struct {
	// PresharedKey turns on preshared-key authentication: every call must
	// carry "Authorization: Bearer <key>".
	PresharedKey string
	// TLS serves gRPC and HTTP over TLS with a certificate for 127.0.0.1
	// and localhost, issued by a fresh test CA (Server.CAFile).
	TLS bool
}

// Server is a running OpenFGA server with a store and a model.
type Server struct {
	GRPCAddr string // host:port
	HTTPURL  string // http://host:port, or https:// with TLS
	StoreID  string
	ModelID  string
	// CAFile is the PEM file of the CA that issued the server's
	// certificate (TLS only).
	CAFile string
	Proc   *testproc.Proc
}

// Start runs openfga on free loopback ports, creates a store with Model and
// writes tuples. The server stops when the test ends.
func Start(t testing.TB, tuples ...Tuple) *Server {
	t.Helper()
	return StartWith(t, Options{}, tuples...)
}

// StartWith is Start with authentication and TLS options.
func StartWith(t testing.TB, opts Options, tuples ...Tuple) *Server {
	t.Helper()
	bin := testproc.LookPath(t, "openfga")
	grpcAddr := "127.0.0.1:" + strconv.Itoa(testproc.FreePort(t))
	httpAddr := "127.0.0.1:" + strconv.Itoa(testproc.FreePort(t))
	args := []string{
		"run",
		"--datastore-engine", "memory",
		"--grpc-addr", grpcAddr,
		"--http-addr", httpAddr,
		"--playground-enabled=false",
		"--metrics-enabled=false",
		"--log-level", "warn",
	}
	s := &Server{GRPCAddr: grpcAddr, HTTPURL: "http://" + httpAddr}
	if opts.PresharedKey != "" {
		args = append(args, "--authn-method", "preshared", "--authn-preshared-keys", opts.PresharedKey)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: http.DefaultTransport}
	if opts.TLS {
		ca := NewCA(t)
		certFile, keyFile := ca.Issue(t, "127.0.0.1", "localhost")
		args = append(args,
			"--grpc-tls-enabled", "--grpc-tls-cert", certFile, "--grpc-tls-key", keyFile,
			"--http-tls-enabled", "--http-tls-cert", certFile, "--http-tls-key", keyFile)
		s.HTTPURL = "https://" + httpAddr
		s.CAFile = ca.CertFile
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}}
	}
	s.Proc = testproc.Start(t, bin, args)
	waitHealthy(t, s, client, 60*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The SDK ignores its Credentials when given an HTTPClient: the key
	// goes in through the transport.
	if opts.PresharedKey != "" {
		client.Transport = bearerTransport{base: client.Transport, header: "Bearer " + opts.PresharedKey}
	}
	c, err := fgaclient.NewSdkClient(&fgaclient.ClientConfiguration{ApiUrl: s.HTTPURL, HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	store, err := c.CreateStore(ctx).Body(fgaclient.ClientCreateStoreRequest{Name: "mizuchi-test"}).Execute()
	if err != nil {
		t.Fatalf("create store: %v", err)
	}
	s.StoreID = store.GetId()
	if err := c.SetStoreId(s.StoreID); err != nil {
		t.Fatal(err)
	}
	var model fgaclient.ClientWriteAuthorizationModelRequest
	if err := json.Unmarshal([]byte(Model), &model); err != nil {
		t.Fatal(err)
	}
	written, err := c.WriteAuthorizationModel(ctx).Body(model).Execute()
	if err != nil {
		t.Fatalf("write model: %v", err)
	}
	s.ModelID = written.GetAuthorizationModelId()
	if len(tuples) > 0 {
		body := make(fgaclient.ClientWriteTuplesBody, len(tuples))
		for i, tp := range tuples {
			body[i] = fgaclient.ClientTupleKey{User: tp.User, Relation: tp.Relation, Object: tp.Object}
		}
		opts := fgaclient.ClientWriteOptions{AuthorizationModelId: &s.ModelID}
		if _, err := c.WriteTuples(ctx).Body(body).Options(opts).Execute(); err != nil {
			t.Fatalf("write tuples: %v", err)
		}
	}
	return s
}

// Stop kills the server.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	_ = s.Proc.Cmd.Process.Kill()
	<-s.Proc.Done()
}

// waitHealthy waits until /healthz answers, over TLS when the server uses
// it.
func waitHealthy(t testing.TB, s *Server, client *http.Client, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if s.Proc.Exited() {
			t.Fatalf("openfga exited early:\n%s", s.Proc.Output())
		}
		resp, err := client.Get(s.HTTPURL + "/healthz")
		if err == nil {
			resp.Body.Close()
			return
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("openfga not ready after %v: %v\n%s", timeout, last, s.Proc.Output())
}

type bearerTransport struct {
	base   http.RoundTripper
	header string
}

func (b bearerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", b.header)
	return b.base.RoundTrip(req)
}
