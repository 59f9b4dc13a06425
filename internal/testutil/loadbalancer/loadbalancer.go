// Package loadbalancer runs a real HAProxy (Debian's package, see
// scripts/install-tools.sh) for tests: HTTP mode, round-robin over the
// given backends, so consecutive requests of one client, even on one
// keep-alive connection, land on different backends.
package loadbalancer

import (
	"fmt"
	"io"
	"net/http"
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

	statsURL string
	servers  int
}

// Start runs HAProxy in front of backends (host:port each) until the test
// ends. Backends are checked with GET /healthz every 500ms, so a
// restarted backend rejoins by itself.
func Start(t testing.TB, backends ...string) *LB {
	t.Helper()
	bin := testproc.LookPath(t, "haproxy")
	lb := &LB{Addr: "127.0.0.1:" + strconv.Itoa(testproc.FreePort(t)), servers: len(backends)}
	lb.Endpoint = "http://" + lb.Addr
	statsAddr := "127.0.0.1:" + strconv.Itoa(testproc.FreePort(t))
	lb.statsURL = "http://" + statsAddr + "/stats;csv"
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
frontend stats
    bind %s
    stats enable
    stats uri /stats
frontend s3
    bind %s
    default_backend mizuchi
backend mizuchi
    balance roundrobin
    option httpchk GET /healthz
`, statsAddr, lb.Addr)
	for i, be := range backends {
		fmt.Fprintf(&b, "    server m%d %s check inter 500ms fall 1 rise 1\n", i, be)
	}
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	lb.Proc = testproc.Start(t, bin, []string{"-db", "-f", cfg})
	testproc.WaitTCP(t, lb.Proc, lb.Addr, 10*time.Second)
	lb.WaitAllUp(t)
	return lb
}

// WaitAllUp waits until HAProxy's health checks see every backend up.
func (lb *LB) WaitAllUp(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		up := lb.up()
		if up == lb.servers {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("load balancer: %d of %d backends up", up, lb.servers)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// up counts the backends HAProxy reports UP (its CSV statistics: column
// 18 is the status).
func (lb *LB) up() int {
	resp, err := http.Get(lb.statsURL)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	n := 0
	for _, line := range strings.Split(string(body), "\n") {
		f := strings.Split(line, ",")
		if len(f) > 17 && f[0] == "mizuchi" && f[1] != "BACKEND" && f[17] == "UP" {
			n++
		}
	}
	return n
}
