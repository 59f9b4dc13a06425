// Package loadbalancer runs a real HAProxy (Debian's package, see
// scripts/install-tools.sh) for tests: HTTP mode, round-robin over the
// given backends, so consecutive requests of one client, even on one
// keep-alive connection, land on different backends.
package loadbalancer

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/testproc"
)

// LB is a running load balancer.
type LB struct {
	// Addr is 127.0.0.1:PORT; Endpoint is http://Addr.
	Addr     string
	Endpoint string
	Proc     *testproc.Proc
}

// Start runs HAProxy in front of backends (host:port each) until the test
// ends. Backends are checked with GET /healthz every 500ms, so a
// restarted backend rejoins by itself.
func Start(t testing.TB, backends ...string) *LB {
	t.Helper()
	bin := testproc.LookPath(t, "haproxy")
	lb := &LB{Addr: "127.0.0.1:" + strconv.Itoa(testproc.FreePort(t))}
	lb.Endpoint = "http://" + lb.Addr
	var b strings.Builder
	fmt.Fprintf(&b, `global
    maxconn 512
defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    timeout http-request 30s
    option http-server-close
    retries 2
    option redispatch
frontend s3
    bind %s
    default_backend mizuchi
backend mizuchi
    balance roundrobin
    option httpchk GET /healthz
`, lb.Addr)
	for i, be := range backends {
		fmt.Fprintf(&b, "    server m%d %s check inter 500ms fall 1 rise 1\n", i, be)
	}
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	lb.Proc = testproc.Start(t, bin, []string{"-db", "-f", cfg})
	testproc.WaitTCP(t, lb.Proc, lb.Addr, 10*time.Second)
	return lb
}
