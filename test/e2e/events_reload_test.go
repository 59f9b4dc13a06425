package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestEventsSinksFollowReloads: a bucket's event sinks are added, changed
// and removed by SIGHUP. Starting without any sink (no outbox opened), an
// upload gives no event; after a reload adding a webhook, exactly one
// event arrives; after a reload moving it to a second receiver, the next
// event arrives there only, and so does the one left pending for the
// first receiver while it was down; after a reload removing it, none.
func TestEventsSinksFollowReloads(t *testing.T) {
	t.Parallel()
	first, second := startHook(t), startHook(t)
	m := startMizuchi(t, evConfig(t, "", ""))
	c := s3Client(t, m.URL, cliAccessKey, cliSecretKey)
	put := func(key string) {
		t.Helper()
		if _, err := c.PutObject(evCtx(t), &s3.PutObjectInput{Bucket: aws.String("files"), Key: aws.String(key),
			Body: strings.NewReader("bytes of " + key)}); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}
	reloads := 0.0
	reload := func(sinks string) {
		t.Helper()
		rewriteConfig(t, m, evConfig(t, "", sinks))
		if err := m.Proc.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		reloads++
		waitReloads(t, m, "success", reloads)
	}
	// drained waits until nothing is pending, then lets a duplicate or
	// a stray event the time to show up.
	drained := func() {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for azMetric(t, m.MetricsURL, "mizuchi_events_pending") != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("events still pending:\n%s", m.Proc.Output())
			}
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(1500 * time.Millisecond)
	}
	keysOf := func(h *evHook) []string {
		var keys []string
		for _, e := range h.received() {
			for _, r := range e.Doc.Records {
				keys = append(keys, r.S3.Object.Key)
			}
			if !e.SigValid {
				t.Errorf("an event with a bad signature")
			}
		}
		return keys
	}
	expect := func(h *evHook, name string, want ...string) {
		t.Helper()
		if got := strings.Join(keysOf(h), ","); got != strings.Join(want, ",") {
			t.Fatalf("%s receiver got %q, want %q", name, got, strings.Join(want, ","))
		}
	}

	put("zero.txt")
	if _, err := os.Stat(filepath.Join(m.Dir, "outbox")); !os.IsNotExist(err) {
		t.Fatalf("the outbox was opened without any sink: %v", err)
	}

	reload(evWebhook(first))
	put("one.txt")
	first.waitKeys(t, 20*time.Second, "one.txt")
	drained()
	expect(first, "first", "one.txt")

	// The first receiver goes away with an event pending for it: the
	// sink's new URL gets that backlog too.
	first.down()
	put("stuck.txt")
	deadline := time.Now().Add(20 * time.Second)
	for azMetric(t, m.MetricsURL, "mizuchi_events_total", `result="retried"`) < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("no failed attempt at the first receiver:\n%s", m.Proc.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	reload(evWebhook(second))
	put("two.txt")
	second.waitKeys(t, 20*time.Second, "stuck.txt", "two.txt")
	drained()
	expect(first, "first", "one.txt")
	expect(second, "second", "stuck.txt", "two.txt")

	reload("")
	put("three.txt")
	drained()
	expect(first, "first", "one.txt")
	expect(second, "second", "stuck.txt", "two.txt")
	if got := azMetric(t, m.MetricsURL, "mizuchi_events_total", `result="queued"`); got != 3 {
		t.Fatalf("mizuchi_events_total{result=queued} = %v, want 3", got)
	}
	if out := m.Proc.Output(); strings.Contains(out, "ignored until restart") {
		t.Fatalf("a sink change was reported as needing a restart:\n%s", out)
	}
}
