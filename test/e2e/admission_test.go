package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/testproc"
)

// adConfig is one anonymous filesystem bucket "open"; limits is added
// under server (indented two spaces).
func adConfig(limits string) string {
	return `server:
  address: "127.0.0.1:{{S3_PORT}}"
  read_header_timeout_seconds: 30
  body_idle_timeout_seconds: 60
  shutdown_grace_seconds: 1
` + limits + `metrics:
  address: "127.0.0.1:{{METRICS_PORT}}"
buckets:
  - name: open
    path_prefix: /open
    filesystem: { root: "{{DIR}}/open" }
`
}

// adDial opens a connection from the loopback address from (all of
// 127.0.0.0/8 reaches the loopback interface on Linux).
func adDial(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", from, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// adOutcome is what became of a request on a raw connection.
type adOutcome struct {
	held       bool // no answer within the wait
	dropped    bool // closed without an answer
	status     int
	code       string
	retryAfter string
	close      bool
	err        error
}

func (o adOutcome) String() string {
	switch {
	case o.held:
		return "held"
	case o.dropped:
		return fmt.Sprintf("dropped (%v)", o.err)
	}
	return fmt.Sprintf("%d %s (Retry-After %q)", o.status, o.code, o.retryAfter)
}

// slowDown reports whether o is an admission refusal as SPEC.md has it.
func (o adOutcome) slowDown() bool {
	n, err := strconv.Atoi(o.retryAfter)
	return !o.held && !o.dropped && o.status == 503 && o.code == "SlowDown" && err == nil && n > 0
}

// adRead reads one answer on c, waiting at most wait.
func adRead(c net.Conn, method string, wait time.Duration) adOutcome {
	_ = c.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return adOutcome{held: true}
		}
		return adOutcome{dropped: true, err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	r := azParse(resp, string(b))
	return adOutcome{status: r.Status, code: r.Code, retryAfter: resp.Header.Get("Retry-After"), close: resp.Close}
}

// adSlowPut starts an upload of 1 MiB from address from, sends its head
// (with "Expect: 100-continue" when expect) and, unless expect, the first
// KiB of the body; then it stalls.
func adSlowPut(t *testing.T, from, addr, key string, expect bool) net.Conn {
	t.Helper()
	c := adDial(t, from, addr)
	head := fmt.Sprintf("PUT /open/%s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", key, addr, 1<<20)
	if expect {
		head += "Expect: 100-continue\r\n"
	}
	head += "\r\n"
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatalf("%s: writing the head: %v", from, err)
	}
	if !expect {
		// Refused connections may already be closed: errors do not matter.
		_, _ = c.Write(bytes.Repeat([]byte("x"), 1<<10))
	}
	return c
}

// adClient sends requests from one loopback address, one connection per
// request (no idle connection stays behind to count against the address).
func adClient(from string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

func adPut(t *testing.T, from, url string, body []byte) azResult {
	t.Helper()
	r, err := adTryPut(from, url, body)
	if err != nil {
		t.Fatalf("PUT %s from %s: %v", url, from, err)
	}
	return r
}

func adTryPut(from, url string, body []byte) (azResult, error) {
	req, err := http.NewRequestWithContext(context.Background(), "PUT", url, bytes.NewReader(body))
	if err != nil {
		return azResult{}, err
	}
	resp, err := adClient(from).Do(req)
	if err != nil {
		return azResult{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return azParse(resp, string(b)), nil
}

// adFDs counts the process's open descriptors.
func adFDs(t *testing.T, p *testproc.Proc) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.Cmd.Process.Pid))
	if err != nil {
		t.Fatalf("reading the server's descriptors: %v", err)
	}
	return len(ents)
}

// adSettle waits until the server's descriptors are back to at most base
// and nothing is in flight.
func adSettle(t *testing.T, m *Mizuchi, base int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		n := adFDs(t, m.Proc)
		if n <= base && azMetric(t, m.MetricsURL, "mizuchi_inflight_uploads") == 0 {
			t.Logf("descriptors back to %d (baseline %d)", n, base)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("descriptors %d, baseline %d: a refused or finished connection leaked", n, base)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAdmissionLimits: with max_connections 20 and max_inflight_uploads
// 8 (so at most 5 connections and 2 uploads per client address), slow
// uploads from one address take their share and no more; everyone else is
// served; what is over a limit is refused at once with 503 SlowDown and
// Retry-After before any byte of a body is read; when the slow clients go,
// everything is served again and no descriptor is left behind.
func TestAdmissionLimits(t *testing.T) {
	t.Parallel()
	m := startMizuchi(t, adConfig("  max_connections: 20\n  max_inflight_uploads: 8\n"))
	http.DefaultClient.CloseIdleConnections()
	addr := strings.TrimPrefix(m.URL, "http://")
	adPut(t, "127.0.0.2", m.URL+"/open/warm.bin", []byte("warm")).want(t, "warm-up", 200, "")
	adSettle(t, m, 1<<30)
	base := adFDs(t, m.Proc)

	// 1. Thirty slow uploads from 127.0.0.1 at once.
	var mu sync.Mutex
	var slow []net.Conn
	outcomes := map[string]int{}
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := adSlowPut(t, "127.0.0.1", addr, fmt.Sprintf("slow-%d.bin", i), false)
			o := adRead(c, "PUT", 2*time.Second)
			mu.Lock()
			defer mu.Unlock()
			slow = append(slow, c)
			switch {
			case o.held:
				outcomes["held"]++
			case o.slowDown():
				outcomes["SlowDown"]++
			default:
				outcomes[o.String()]++
			}
		}()
	}
	wg.Wait()
	t.Logf("30 slow uploads from 127.0.0.1: %v", outcomes)
	if outcomes["held"] > 2 || outcomes["held"]+outcomes["SlowDown"] != 30 {
		t.Fatalf("one address's slow uploads: %v; want at most 2 held (its share of max_inflight_uploads), the rest 503 SlowDown with Retry-After", outcomes)
	}
	if n := azMetric(t, m.MetricsURL, "mizuchi_limit_refusals_total", `limit="connections"`); n == 0 {
		t.Error("no connection refused for 127.0.0.1's share of max_connections")
	}
	if n := azMetric(t, m.MetricsURL, "mizuchi_limit_refusals_total", `limit="inflight_uploads"`); n == 0 {
		t.Error("no upload refused for 127.0.0.1's share of max_inflight_uploads")
	}

	// 2. Another address is served meanwhile.
	adPut(t, "127.0.0.2", m.URL+"/open/other.bin", []byte("other")).want(t, "an upload from 127.0.0.2 during the flood", 200, "")

	// 3. In-flight uploads over the process limit: three more addresses
	// take their two each (8 with 127.0.0.1's); a ninth upload is refused
	// without being asked for its body (no 100 Continue), while a request
	// without a body is still served.
	var more []net.Conn
	for _, from := range []string{"127.0.0.3", "127.0.0.4", "127.0.0.5"} {
		for i := range 2 {
			c := adSlowPut(t, from, addr, fmt.Sprintf("held-%s-%d.bin", from, i), false)
			more = append(more, c)
		}
	}
	waitFor(t, "eight uploads in flight", func() bool {
		return azMetric(t, m.MetricsURL, "mizuchi_inflight_uploads") == 8
	})
	c := adSlowPut(t, "127.0.0.6", addr, "ninth.bin", true)
	o := adRead(c, "PUT", 5*time.Second)
	if !o.slowDown() {
		t.Fatalf("a ninth upload: %v, want 503 SlowDown with Retry-After (and no 100 Continue)", o)
	}
	resp, err := adClient("127.0.0.6").Post(m.URL+"/open/mp.bin?uploads", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("CreateMultipartUpload while uploads are at their limit: %d", resp.StatusCode)
	}
	for _, c := range more {
		c.Close()
	}
	waitFor(t, "the extra uploads gone", func() bool {
		return azMetric(t, m.MetricsURL, "mizuchi_inflight_uploads") <= 2
	})

	// 4. The slow clients go: no descriptor is left.
	for _, c := range slow {
		c.Close()
	}
	adSettle(t, m, base)

	// 5. Connections over the process limit: idle connections from five
	// addresses (5 each) fill max_connections; the ones over it, and the
	// next connection, are answered 503 SlowDown at once, with
	// Connection: close, before their request is read.
	var idle []net.Conn
	for _, from := range []string{"127.0.0.7", "127.0.0.8", "127.0.0.9", "127.0.0.10", "127.0.0.12"} {
		for range 5 {
			idle = append(idle, adDial(t, from, addr))
		}
	}
	refused := 0
	for _, c := range idle {
		if o := adRead(c, "PUT", 300*time.Millisecond); !o.held {
			if !o.slowDown() || !o.close {
				t.Fatalf("an idle connection over the limit: %v (close %v)", o, o.close)
			}
			refused++
		}
	}
	if refused != 5 {
		t.Fatalf("%d of 25 connections refused with max_connections 20", refused)
	}
	c = adSlowPut(t, "127.0.0.11", addr, "over.bin", true)
	if o := adRead(c, "PUT", 5*time.Second); !o.slowDown() || !o.close {
		t.Fatalf("a connection over max_connections: %v (close %v)", o, o.close)
	}
	for _, c := range idle {
		c.Close()
	}

	adSettle(t, m, base)

	// 6. Everything is served again, from every address.
	for i := range 6 {
		adPut(t, "127.0.0.1", m.URL+fmt.Sprintf("/open/after-%d.bin", i), []byte("after")).want(t, "an upload from 127.0.0.1 after the flood", 200, "")
	}
	assertFile(t, filepath.Join(m.Dir, "open/after-5.bin"), []byte("after"))
	for _, f := range visibleFiles(t, filepath.Join(m.Dir, "open")) {
		if strings.HasPrefix(f, "slow-") || strings.HasPrefix(f, "held-") || strings.Contains(f, "ninth") || strings.Contains(f, "over") {
			t.Errorf("a refused or abandoned upload left %s", f)
		}
	}
	adSettle(t, m, base)
}

// TestAdmissionUnderLowFDLimit starts the server with RLIMIT_NOFILE 256
// (soft and hard: it cannot raise it) and the derived default limits,
// then floods it with slow uploads from eight addresses: no request is
// ever answered InternalError ("too many open files"), refusals are 503
// SlowDown, the server never runs out of descriptors, and it serves
// normally once the flood is gone.
func TestAdmissionUnderLowFDLimit(t *testing.T) {
	t.Parallel()
	prlimit := cliLook(t, "/usr/bin/prlimit")
	dir := t.TempDir()
	port, mport := testproc.FreePort(t), testproc.FreePort(t)
	cfg := strings.NewReplacer("{{S3_PORT}}", fmt.Sprint(port), "{{METRICS_PORT}}", fmt.Sprint(mport), "{{DIR}}", dir).Replace(adConfig(""))
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	const limit = 256
	proc := testproc.StartDir(t, dir, prlimit, []string{fmt.Sprintf("--nofile=%d:%d", limit, limit), "--", mizuchiBin, "serve", "--config", path})
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	testproc.WaitHTTP(t, proc, url+"/healthz", 15*time.Second)
	http.DefaultClient.CloseIdleConnections()
	m := &Mizuchi{URL: url, MetricsURL: fmt.Sprintf("http://127.0.0.1:%d", mport), Dir: dir, Proc: proc}
	addr := strings.TrimPrefix(url, "http://")
	adPut(t, "127.0.0.2", url+"/open/warm.bin", []byte("warm")).want(t, "warm-up", 200, "")
	adSettle(t, m, 1<<30)
	base := adFDs(t, proc)

	// The flood: 8 addresses × 50 slow uploads, more connections than
	// the process has descriptors, while a ninth address keeps uploading.
	var mu sync.Mutex
	outcomes := map[string]int{}
	var conns []net.Conn
	var wg sync.WaitGroup
	maxFDs := 0
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", proc.Cmd.Process.Pid))
			if err == nil {
				mu.Lock()
				maxFDs = max(maxFDs, len(ents))
				mu.Unlock()
			}
		}
	}()
	for a := 1; a <= 8; a++ {
		from := fmt.Sprintf("127.0.0.%d", 20+a)
		for i := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
				c, err := d.Dial("tcp", addr)
				if err != nil {
					mu.Lock()
					outcomes["dial failed"]++
					mu.Unlock()
					return
				}
				fmt.Fprintf(c, "PUT /open/flood-%s-%d.bin HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n", from, i, addr, 1<<20)
				_, _ = c.Write(bytes.Repeat([]byte("x"), 1<<10))
				o := adRead(c, "PUT", 3*time.Second)
				mu.Lock()
				defer mu.Unlock()
				conns = append(conns, c)
				switch {
				case o.held:
					outcomes["held"]++
				case o.slowDown():
					outcomes["SlowDown"]++
				case o.dropped:
					outcomes["no answer"]++
				default:
					outcomes[o.String()]++
				}
			}()
		}
	}
	served := map[string]int{}
	for i := range 10 {
		r, err := adTryPut("127.0.0.40", url+fmt.Sprintf("/open/during-%d.bin", i), []byte("during"))
		switch {
		case err != nil:
			// Over the limit while too many refusals are in progress:
			// closed with a best-effort answer.
			served["no answer"]++
		case r.Status == 503 && r.Code == "SlowDown" && r.Header.Get("Retry-After") == "":
			served["SlowDown without Retry-After"]++
		default:
			served[fmt.Sprintf("%d %s", r.Status, r.Code)]++
		}
	}
	wg.Wait()
	close(stop)
	<-watched
	t.Logf("flood of 400 slow uploads under RLIMIT_NOFILE %d: %v; uploads from another address meanwhile: %v; at most %d descriptors open (baseline %d)",
		limit, outcomes, served, maxFDs, base)
	for o, n := range outcomes {
		if o != "held" && o != "SlowDown" && o != "no answer" {
			t.Errorf("%d flood requests: %s", n, o)
		}
	}
	for o, n := range served {
		if o != "200 " && o != "503 SlowDown" && o != "no answer" {
			t.Errorf("%d uploads from another address during the flood: %s", n, o)
		}
	}
	if outcomes["SlowDown"] == 0 {
		t.Error("nothing was refused: the derived limits did not apply")
	}
	if maxFDs >= limit {
		t.Errorf("the server reached its descriptor limit (%d)", maxFDs)
	}
	if strings.Contains(proc.Output(), "too many open files") {
		t.Error("the server ran out of descriptors (\"too many open files\" in its log)")
	}
	for _, c := range conns {
		c.Close()
	}
	adSettle(t, m, base)
	adPut(t, "127.0.0.21", url+"/open/after.bin", []byte("after")).want(t, "an upload after the flood", 200, "")
	if n := azMetric(t, m.MetricsURL, "mizuchi_errors_total", `code="InternalError"`); n != 0 {
		t.Errorf("%v InternalError answers", n)
	}
}
