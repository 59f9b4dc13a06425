package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/testproc"
)

// TestJaegerDemoPrintsTheTraceOfItsUpload runs
// examples/observability/jaeger-demo.sh with the pinned Jaeger and the
// built binary: the URL it prints names a trace that Jaeger really holds,
// with Mizuchi's server span of the upload (named after the route).
func TestJaegerDemoPrintsTheTraceOfItsUpload(t *testing.T) {
	jaegerBin := testproc.LookPath(t, "jaeger")
	for _, proto := range []string{"grpc", "http"} {
		t.Run(proto, func(t *testing.T) {
			ports := map[string]int{}
			for _, name := range []string{"MIZUCHI_PORT", "MIZUCHI_METRICS_PORT", "JAEGER_UI_PORT", "JAEGER_OTLP_GRPC_PORT",
				"JAEGER_OTLP_HTTP_PORT", "JAEGER_QUERY_GRPC_PORT", "JAEGER_HEALTH_PORT"} {
				ports[name] = testproc.FreePort(t)
			}
			cmd := exec.Command("bash", filepath.Join("..", "..", "examples", "observability", "jaeger-demo.sh"))
			cmd.Env = append(os.Environ(), "MIZUCHI="+mizuchiBin, "JAEGER="+jaegerBin, "PROTOCOL="+proto)
			for k, v := range ports {
				cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%d", k, v))
			}
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			t.Cleanup(func() {
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
				select {
				case <-exited:
				case <-time.After(15 * time.Second):
					_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
					<-exited
				}
			})
			lines := make(chan string)
			go func() {
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
				exited <- cmd.Wait()
			}()
			var url string
			timeout := time.After(3 * time.Minute)
		wait:
			for {
				select {
				case l, ok := <-lines:
					if !ok {
						t.Fatalf("the script ended without printing a trace URL:\n%s", stderr.String())
					}
					if strings.HasPrefix(l, "Trace: ") {
						url = strings.TrimPrefix(l, "Trace: ")
						break wait
					}
				case <-timeout:
					t.Fatalf("no trace URL after 3 minutes:\n%s", stderr.String())
				}
			}
			m := regexp.MustCompile(`^http://127\.0\.0\.1:(\d+)/trace/([0-9a-f]{32})$`).FindStringSubmatch(url)
			if m == nil || m[1] != fmt.Sprint(ports["JAEGER_UI_PORT"]) {
				t.Fatalf("printed %q, want the Jaeger UI's /trace/<32 hex> on port %d", url, ports["JAEGER_UI_PORT"])
			}
			// The UI page itself answers, and the query API holds the trace.
			if resp, body := rawRequest(t, "GET", url, nil, nil); resp.StatusCode != 200 || !strings.Contains(strings.ToLower(body), "<html") {
				t.Errorf("GET %s: %d", url, resp.StatusCode)
			}
			spans := demoTrace(t, fmt.Sprintf("http://127.0.0.1:%d/api/traces/%s", ports["JAEGER_UI_PORT"], m[2]))
			if !strings.Contains(spans, "PUT /demo@mizuchi-uploadr") {
				t.Errorf("the trace has no server span PUT /demo of service mizuchi-uploadr: %s", spans)
			}
		})
	}
}

// demoTrace returns the operation and service names of a trace's spans.
func demoTrace(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var tr struct {
		Data []struct {
			Spans []struct {
				OperationName string `json:"operationName"`
				ProcessID     string `json:"processID"`
			} `json:"spans"`
			Processes map[string]struct {
				ServiceName string `json:"serviceName"`
			} `json:"processes"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || len(tr.Data) == 0 {
		t.Fatalf("query API %s: %d %v %s", url, resp.StatusCode, err, body)
	}
	var out []string
	for _, d := range tr.Data {
		for _, s := range d.Spans {
			out = append(out, s.OperationName+"@"+d.Processes[s.ProcessID].ServiceName)
		}
	}
	return strings.Join(out, " ")
}
