package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	iofs "io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/testproc"
)

// hfsConfig is one anonymous filesystem bucket /b at {{DIR}}/b, without
// the periodic cleanup (so that nothing but requests touches the tree).
const hfsConfig = `server:
  address: "127.0.0.1:{{S3_PORT}}"
metrics:
  address: "127.0.0.1:{{METRICS_PORT}}"
buckets:
  - name: b
    path_prefix: /b
    filesystem: { root: "{{DIR}}/b", stale_upload_seconds: 0 }
`

// hfsTree lists every entry under dir but temp files, with a digest of
// each file's content.
func hfsTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case strings.HasPrefix(d.Name(), ".mizuchi-tmp-"):
		case d.IsDir():
			out[rel] = "dir"
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			out[rel] = hex.EncodeToString(sum[:8])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestHostileRefusedPutKeepsOthersMetadata replays the attack through the
// binary: a slow PUT of K is overtaken by a PUT of K/1.pdf; when its body
// ends, the slow PUT is refused with 409 ExistingObjectIsDirectory and the
// tree is exactly as the PUT of K/1.pdf left it, record included.
func TestHostileRefusedPutKeepsOthersMetadata(t *testing.T) {
	m := startMizuchi(t, hfsConfig)
	root := filepath.Join(m.Dir, "b")
	c, err := net.Dial("tcp", strings.TrimPrefix(m.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := []byte("0123456789")
	fmt.Fprintf(c, "PUT /b/K HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n\r\n", len(body))
	if _, err := c.Write(body[:5]); err != nil {
		t.Fatal(err)
	}
	// The slow upload is streaming once its temp file exists.
	deadline := time.Now().Add(10 * time.Second)
	for {
		matches, _ := filepath.Glob(filepath.Join(root, ".mizuchi-tmp-*"))
		if len(matches) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slow PUT never started writing")
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, b := rawRequest(t, "PUT", m.URL+"/b/K/1.pdf", strings.NewReader("%PDF-1.7"), http.Header{"Content-Type": {"application/pdf"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT K/1.pdf: %d %s", resp.StatusCode, b)
	}
	before := hfsTree(t, root)

	if _, err := c.Write(body[5:]); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
	r, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	var answer bytes.Buffer
	_, _ = answer.ReadFrom(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusConflict || !strings.Contains(answer.String(), "<Code>ExistingObjectIsDirectory</Code>") {
		t.Fatalf("slow PUT of K: %d %s, want 409 ExistingObjectIsDirectory", r.StatusCode, answer.String())
	}

	after := hfsTree(t, root)
	for p, v := range before {
		if after[p] != v {
			t.Errorf("the refused PUT removed or changed %s", p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("the refused PUT left %s", p)
		}
	}
	rec, err := os.ReadFile(filepath.Join(root, ".mizuchi", "meta", "K", "1.pdf"))
	if err != nil || !strings.Contains(string(rec), "application/pdf") {
		t.Fatalf("record of K/1.pdf: %q, %v", rec, err)
	}
	if matches, _ := filepath.Glob(filepath.Join(root, ".mizuchi-tmp-*")); len(matches) > 0 {
		t.Fatalf("temp file left: %v", matches)
	}
}

// hfsFileSyscalls runs the binary under `strace -f -c -e trace=%file`,
// uploads n anonymous objects whose keys have depth segments (each in a
// new directory chain) and returns the number of file system calls of
// the whole run.
func hfsFileSyscalls(t *testing.T, depth, n int) int {
	t.Helper()
	strace := testproc.LookPath(t, "strace")
	dir := t.TempDir()
	port, mport := testproc.FreePort(t), testproc.FreePort(t)
	cfg := strings.NewReplacer("{{S3_PORT}}", strconv.Itoa(port), "{{METRICS_PORT}}", strconv.Itoa(mport), "{{DIR}}", dir).Replace(hfsConfig)
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "strace.txt")
	p := testproc.StartDir(t, dir, strace, []string{"-f", "-c", "-o", out, "-e", "trace=%file", mizuchiBin, "serve", "--config", cfgPath})
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	testproc.WaitHTTP(t, p, url+"/healthz", 30*time.Second)
	for i := range n {
		key := fmt.Sprintf("r%d/", i) + strings.Repeat("n/", depth-2) + "leaf"
		resp, b := rawRequest(t, "PUT", url+"/b/"+key, strings.NewReader("x"), nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("PUT of depth %d: %d %s", depth, resp.StatusCode, b)
		}
	}
	// strace blocks fatal signals; the server in its process group ends
	// and strace writes the summary.
	_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("mizuchi under strace did not stop")
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && f[len(f)-1] == "total" {
			calls, err := strconv.Atoi(f[3])
			if err != nil {
				t.Fatalf("strace summary line %q: %v", line, err)
			}
			return calls
		}
	}
	t.Fatalf("no total in the strace summary:\n%s", data)
	return 0
}

// TestHostileDeepKeysCostLinearSyscalls counts (never times) the file
// system calls of anonymous uploads with deep keys, through the binary:
// the cost of one upload grows linearly with the key's depth, and a key
// deeper than the cap (128 segments) is refused with 400 before anything
// is written. Before directory chains were walked relative to the parent,
// a 505-segment key cost about 45,000 openat calls, and ten times the
// depth cost about a hundred times the calls.
func TestHostileDeepKeysCostLinearSyscalls(t *testing.T) {
	perUpload := func(depth int) int {
		one, three := hfsFileSyscalls(t, depth, 1), hfsFileSyscalls(t, depth, 3)
		return (three - one) / 2
	}
	shallow, deep := perUpload(12), perUpload(120)
	t.Logf("file system calls per upload: depth 12: %d, depth 120: %d", shallow, deep)
	if shallow <= 0 || deep <= 0 {
		t.Fatalf("implausible counts %d, %d", shallow, deep)
	}
	// Ten times the depth: linear is about 10x, quadratic about 100x.
	if ratio := float64(deep) / float64(shallow); ratio > 15 {
		t.Fatalf("depth 120 costs %.1f times depth 12 (%d vs %d calls): not linear", ratio, deep, shallow)
	}
	if deep > 30*120 {
		t.Fatalf("%d file system calls for one upload of depth 120, want under %d", deep, 30*120)
	}

	m := startMizuchi(t, hfsConfig)
	tooDeep := strings.Repeat("n/", 128) + "leaf"
	resp, b := rawRequest(t, "PUT", m.URL+"/b/"+tooDeep, strings.NewReader("x"), nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(b, "<Code>InvalidArgument</Code>") || !strings.Contains(b, "at most 128") {
		t.Fatalf("PUT of depth 129: %d %s, want 400 InvalidArgument", resp.StatusCode, b)
	}
	if _, err := os.Stat(filepath.Join(m.Dir, "b", "n")); !os.IsNotExist(err) {
		t.Fatalf("the refused deep key created directories: %v", err)
	}
	resp, b = rawRequest(t, "PUT", m.URL+"/b/"+strings.Repeat("n/", 127)+"leaf", strings.NewReader("x"), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT of depth 128: %d %s", resp.StatusCode, b)
	}
}
