package config

import (
	"strings"
	"testing"
)

func TestLimitsKeys(t *testing.T) {
	with := func(l string) string { return minimal + "    limits: " + l + "\n" }
	tests := []struct {
		name string
		yml  string
		want string // "" = valid
	}{
		{"none", minimal, ""},
		{"all", with(`{ per_subject: { requests_per_second: 5, burst: 5, concurrent_uploads: 2, bytes_per_second: 10MiB, bytes_per_day: 30MiB }, per_bucket: { concurrent_uploads: 20 } }`), ""},
		{"fractional rate", with(`{ per_subject: { requests_per_second: 0.5 } }`), ""},
		{"negative rate", with(`{ per_subject: { requests_per_second: -1 } }`), "buckets[0].limits.per_subject.requests_per_second: must be between 0"},
		{"burst without rate", with(`{ per_bucket: { burst: 3 } }`), "buckets[0].limits.per_bucket.burst: needs requests_per_second"},
		{"zero burst", with(`{ per_subject: { requests_per_second: 5, burst: 0 } }`), "buckets[0].limits.per_subject.burst: must be at least 1"},
		{"negative concurrency", with(`{ per_subject: { concurrent_uploads: -2 } }`), "concurrent_uploads: must not be negative"},
		{"tiny bandwidth", with(`{ per_subject: { bytes_per_second: 100B } }`), "bytes_per_second: must be 0 (no limit) or at least 1KiB"},
		{"bad size", with(`{ per_subject: { bytes_per_day: lots } }`), "bytes_per_day"},
		{"unknown key", with(`{ per_subject: { uploads_per_day: 3 } }`), "uploads_per_day"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yml), "t.yaml", func(string) (string, bool) { return "", false })
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
	c, err := Parse([]byte(with(`{ per_subject: { requests_per_second: 2.5, bytes_per_day: 1GiB } }`)), "t.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	l := c.Buckets[0].Limits
	if l.PerSubject.Burst != 3 || l.PerSubject.BytesPerDay != 1<<30 || !l.PerBucket.IsZero() {
		t.Fatalf("limits %+v", l)
	}
	if s := c.Summary(); !strings.Contains(s, "fair use: per subject 2.5 req/s (burst 3), 1GiB/day; per bucket none") {
		t.Fatalf("summary:\n%s", s)
	}
}
