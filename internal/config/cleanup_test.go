package config

import (
	"strings"
	"testing"
)

const cleanupS3 = `buckets:
  - name: a
    path_prefix: /a
    s3: { bucket: store, region: us-east-1, key_prefix: "a/" }
`

func TestCleanupDefaults(t *testing.T) {
	tests := []struct {
		name          string
		yml           string
		on            bool
		age, interval int
	}{
		{"filesystem without section: on, a day, hourly", minimal, true, 86400, 3600},
		{"filesystem with deprecated alias", strings.Replace(minimal, "{ root: /tmp/a }", "{ root: /tmp/a, stale_upload_seconds: 5 }", 1), true, 5, 3600},
		{"filesystem alias 0 turns it off", strings.Replace(minimal, "{ root: /tmp/a }", "{ root: /tmp/a, stale_upload_seconds: 0 }", 1), false, 0, 3600},
		{"filesystem section", minimal + "    cleanup: { abort_incomplete_after_seconds: 2, interval_seconds: 1 }\n", true, 2, 1},
		{"s3 without section: off", cleanupS3, false, 0, 0},
		{"s3 empty section: defaults", cleanupS3 + "    cleanup: {}\n", true, 86400, 3600},
		{"s3 seconds", cleanupS3 + "    cleanup: { abort_incomplete_after_seconds: 3, interval_seconds: 1 }\n", true, 3, 1},
		{"s3 explicit 0: off", cleanupS3 + "    cleanup: { abort_incomplete_after_seconds: 0 }\n", false, 0, 3600},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, tc.yml, nil)
			c.ApplyDefaults() // twice is harmless
			cl := c.Buckets[0].Cleanup
			if cl.On() != tc.on {
				t.Fatalf("On() = %v, want %v (%+v)", cl.On(), tc.on, cl)
			}
			if cl == nil {
				return
			}
			if cl.AbortIncompleteAfterSeconds != tc.age || cl.IntervalSeconds != tc.interval {
				t.Errorf("cleanup = %+v, want age %d interval %d", *cl, tc.age, tc.interval)
			}
		})
	}
}

func TestCleanupValidation(t *testing.T) {
	tests := []struct{ name, yml, want string }{
		{"negative age", cleanupS3 + "    cleanup: { abort_incomplete_after_seconds: -1 }\n", "cleanup.abort_incomplete_after_seconds"},
		{"zero interval", cleanupS3 + "    cleanup: { interval_seconds: 0 }\n", "cleanup.interval_seconds"},
		{"alias and new key", strings.Replace(minimal, "{ root: /tmp/a }", "{ root: /tmp/a, stale_upload_seconds: 5 }", 1) +
			"    cleanup: { abort_incomplete_after_seconds: 2 }\n", "set only that one"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseErr(t, tc.yml, nil); !strings.Contains(got, tc.want) {
				t.Errorf("error %q does not mention %q", got, tc.want)
			}
		})
	}
}

func TestCleanupWarnings(t *testing.T) {
	warned := func(c *Config, path, text string) bool {
		for _, w := range c.Warnings() {
			if w.Path == path && strings.Contains(w.Message, text) {
				return true
			}
		}
		return false
	}
	c := mustParse(t, strings.Replace(minimal, "{ root: /tmp/a }", "{ root: /tmp/a, stale_upload_seconds: 5 }", 1), nil)
	if !warned(c, "buckets[0].filesystem.stale_upload_seconds", "deprecated") {
		t.Errorf("no deprecation warning: %v", c.Warnings())
	}
	c = mustParse(t, strings.Replace(cleanupS3, `key_prefix: "a/"`, `key_prefix: ""`, 1)+"    cleanup: {}\n", nil)
	if !warned(c, "buckets[0].cleanup", "other writers") {
		t.Errorf("no warning for a cleanup of a whole store bucket: %v", c.Warnings())
	}
	c = mustParse(t, cleanupS3+"    cleanup: {}\n", nil)
	if warned(c, "buckets[0].cleanup", "other writers") {
		t.Errorf("warning despite a key prefix: %v", c.Warnings())
	}
}

func TestCleanupSkipsTheLongerPrefixesOfOtherBuckets(t *testing.T) {
	c := mustParse(t, `buckets:
  - { name: all, path_prefix: /all, s3: { bucket: store, region: r }, cleanup: {} }
  - { name: a, path_prefix: /a, s3: { bucket: store, region: r, key_prefix: "a/" }, cleanup: {} }
  - { name: ab, path_prefix: /ab, s3: { bucket: store, region: r, key_prefix: "ab/" } }
  - { name: a-deep, path_prefix: /ad, s3: { bucket: store, region: r, key_prefix: "a/deep/" } }
  - { name: other-store, path_prefix: /o, s3: { bucket: other, region: r, key_prefix: "a/x/" } }
`, nil)
	got := map[string]string{}
	for i := range c.Buckets {
		got[c.Buckets[i].Name] = strings.Join(c.CleanupSkipPrefixes(&c.Buckets[i]), ",")
	}
	want := map[string]string{"all": "a/,ab/,a/deep/", "a": "a/deep/", "ab": "", "a-deep": "", "other-store": ""}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s skips %q, want %q", name, got[name], w)
		}
	}
	overlaps := 0
	for _, w := range c.Warnings() {
		if strings.Contains(w.Message, "also covers") {
			overlaps++
		}
	}
	if overlaps != 4 { // all covers a/, ab/, a/deep/; a covers a/deep/
		t.Errorf("%d overlap warnings, want 4: %v", overlaps, c.Warnings())
	}
}
