package app

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

func stateConfig(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml+`buckets:
  - name: a
    path_prefix: /a
    filesystem: { root: "`+t.TempDir()+`" }
`), "t.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// With the memory backend the SigV4 authenticators keep their own replay
// stores; with redis they share one, and readiness follows the store.
func TestStateWiring(t *testing.T) {
	a, err := New(context.Background(), stateConfig(t, ""), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.ReplayStore() != nil {
		t.Fatal("the memory backend is handed to the authenticators")
	}
	if ids, _ := a.uploadIDsFor(a.cfg); ids != a.uploadIDs || !ids.Ephemeral {
		t.Fatal("without keys the upload id key is not the process's generated one")
	}
	if ok, details := a.gen.Load().ready(context.Background()); !ok || details["state"] != "ok (memory)" {
		t.Fatalf("ready %v %v", ok, details)
	}

	// A port nothing listens on.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	b, err := New(context.Background(), stateConfig(t, `server:
  upload_id_keys: ["0123456789abcdef0123456789abcdef-app"]
state:
  backend: redis
  redis: { address: "`+addr+`", password: "hunter2-secret", timeout_seconds: 1 }
`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.ReplayStore() == nil || b.ReplayStore().Name() != "redis" {
		t.Fatal("the shared store is not handed to the authenticators")
	}
	if ids, _ := b.uploadIDsFor(b.cfg); ids.Ephemeral {
		t.Fatal("configured upload id keys are not used")
	}
	ok, details := b.gen.Load().ready(context.Background())
	if ok || !strings.Contains(details["state"], "redis") || strings.Contains(details["state"], "hunter2") {
		t.Fatalf("ready with the store down: %v %v", ok, details)
	}
}
