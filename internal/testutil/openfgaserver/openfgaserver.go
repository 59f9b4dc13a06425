// Package openfgaserver runs a real OpenFGA server (openfga run, memory
// datastore) for tests, and creates a store, the Mizuchi sample
// authorization model and tuples through its API.
package openfgaserver

import (
	"context"
	"encoding/json"
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

// Server is a running OpenFGA server with a store and a model.
type Server struct {
	GRPCAddr string // host:port
	HTTPURL  string // http://host:port
	StoreID  string
	ModelID  string
	Proc     *testproc.Proc
}

// Start runs openfga on free loopback ports, creates a store with Model and
// writes tuples. The server stops when the test ends.
func Start(t testing.TB, tuples ...Tuple) *Server {
	t.Helper()
	bin := testproc.LookPath(t, "openfga")
	grpcAddr := "127.0.0.1:" + strconv.Itoa(testproc.FreePort(t))
	httpAddr := "127.0.0.1:" + strconv.Itoa(testproc.FreePort(t))
	p := testproc.Start(t, bin, []string{
		"run",
		"--datastore-engine", "memory",
		"--grpc-addr", grpcAddr,
		"--http-addr", httpAddr,
		"--playground-enabled=false",
		"--metrics-enabled=false",
		"--log-level", "warn",
	})
	s := &Server{GRPCAddr: grpcAddr, HTTPURL: "http://" + httpAddr, Proc: p}
	testproc.WaitHTTP(t, p, s.HTTPURL+"/healthz", 60*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := fgaclient.NewSdkClient(&fgaclient.ClientConfiguration{ApiUrl: s.HTTPURL})
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
