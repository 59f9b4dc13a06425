package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

// hookRecorder is a webhook receiver that records the keys announced.
type hookRecorder struct {
	mu   sync.Mutex
	keys []string
}

func (h *hookRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var doc struct {
		Records []struct {
			S3 struct {
				Object struct {
					Key string `json:"key"`
				} `json:"object"`
			} `json:"s3"`
		} `json:"Records"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	for _, rec := range doc.Records {
		h.keys = append(h.keys, rec.S3.Object.Key)
	}
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookRecorder) got() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.keys...)
}

func bucketAWithHook(url string) string {
	return bucketA + `    events:
      - type: webhook
        url: "` + url + `"
        secret: "0123456789abcdef0123456789abcdef"
`
}

// waitEventsDrained waits until the outbox holds nothing (a generous
// bound, not a speed check).
func waitEventsDrained(t *testing.T, a *App) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		mfs, err := a.registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "mizuchi_events_pending" && mf.GetMetric()[0].GetGauge().GetValue() == 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("events still pending")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// writeEventsConfig is writeConfig with the outbox in dir.
func writeEventsConfig(t *testing.T, path, dir, buckets string) {
	t.Helper()
	yml := "server: { address: \"127.0.0.1:0\" }\nmetrics: { enabled: false }\n" +
		"events: { outbox_dir: \"" + filepath.Join(dir, "outbox") + "\" }\nbuckets:\n" +
		strings.ReplaceAll(buckets, "{{DIR}}", dir)
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Sinks added, changed and removed by reloads take effect, starting from
// a configuration without any: the outbox opens with the first sink.
func TestReloadEventSinks(t *testing.T) {
	one, two := &hookRecorder{}, &hookRecorder{}
	s1, s2 := httptest.NewServer(one), httptest.NewServer(two)
	defer s1.Close()
	defer s2.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	writeEventsConfig(t, path, dir, bucketA)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if code := put(t, a.gen.Load().handler, "/a/none.txt"); code != http.StatusOK {
		t.Fatalf("put: %d", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "outbox")); !os.IsNotExist(err) {
		t.Fatalf("the outbox was opened without sinks: %v", err)
	}

	step := func(buckets, key string) {
		t.Helper()
		writeEventsConfig(t, path, dir, buckets)
		if err := a.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
		if code := put(t, a.gen.Load().handler, "/a/"+key); code != http.StatusOK {
			t.Fatalf("put %s: %d", key, code)
		}
		waitEventsDrained(t, a)
	}
	step(bucketAWithHook(s1.URL), "first.txt")
	step(bucketAWithHook(s2.URL), "second.txt")
	step(bucketA, "third.txt")
	if got := strings.Join(one.got(), ","); got != "first.txt" {
		t.Errorf("first receiver got %q, want first.txt", got)
	}
	if got := strings.Join(two.got(), ","); got != "second.txt" {
		t.Errorf("second receiver got %q, want second.txt", got)
	}
}

func TestEventsOutboxIsRestartOnly(t *testing.T) {
	parse := func(yml string) *config.Config {
		c, err := config.Parse([]byte(yml), "t.yaml", func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	b := "buckets: [{ name: a, path_prefix: /a, filesystem: { root: /tmp/a } }]\n"
	running := parse(b)
	next := parse("events: { outbox_dir: /tmp/elsewhere, max_pending: 5, on_full: drop_oldest, hash_subjects: true, max_retry_interval_seconds: 3 }\n" + b)
	got := strings.Join(restartOnlyChanges(running, next), ",")
	want := "events.outbox_dir,events.max_pending,events.on_full,events.hash_subjects,events.max_retry_interval_seconds"
	if got != want {
		t.Fatalf("restart-only changes %q, want %q", got, want)
	}
}
