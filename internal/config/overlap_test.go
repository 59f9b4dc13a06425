package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOverlappingFilesystemRootsAreRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "real", "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "real"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	bucket := func(name, root string) string {
		return "  - name: " + name + "\n    path_prefix: /" + name + "\n    filesystem: { root: \"" + root + "\" }\n"
	}
	tests := []struct {
		name    string
		a, b    string
		wantErr string // substring naming both buckets; "" means valid
	}{
		{"same path", dir + "/real/a", dir + "/real/a", `real/a" is the same directory as the root of bucket "first"`},
		{"same after cleaning", dir + "/real/a", dir + "/real/./x/../a/", `is the same directory as the root of bucket "first"`},
		{"relative and absolute", dir + "/real/a", "real/a", `"real/a" is the same directory as the root of bucket "first"`},
		{"through a symlink", dir + "/real/a", dir + "/link/a", `is the same directory as the root of bucket "first"`},
		{"symlink then a missing directory", dir + "/real/new", "link/new", `is the same directory as the root of bucket "first"`},
		{"inside", dir + "/real", dir + "/real/a/sub", `is inside the root of bucket "first"`},
		{"inside through a symlink", dir + "/link", "real/a", `is inside the root of bucket "first"`},
		{"contains", dir + "/real/a/sub", "./real", `contains the root of bucket "first"`},
		{"siblings are fine", dir + "/real/a", dir + "/real/ab", ""},
		{"disjoint", dir + "/one", dir + "/two", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte("buckets:\n"+bucket("first", tc.a)+bucket("second", tc.b)), "t.yaml", nil)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("roots %q and %q accepted", tc.a, tc.b)
			}
			msg := err.Error()
			if !strings.Contains(msg, "buckets[1].filesystem.root") || !strings.Contains(msg, tc.wantErr) ||
				!strings.Contains(msg, `"second"`) || !strings.Contains(msg, `"first"`) {
				t.Fatalf("error %q does not name both buckets or does not contain %q", msg, tc.wantErr)
			}
		})
	}
}

func TestOverlappingS3PrefixesWarn(t *testing.T) {
	bucket := func(name, endpoint, store, prefix string) string {
		return "  - name: " + name + "\n    path_prefix: /" + name + "\n    s3: { bucket: " + store + ", region: r, endpoint: \"" + endpoint + "\", key_prefix: \"" + prefix + "\" }\n"
	}
	const ep = "http://127.0.0.1:9000"
	tests := []struct {
		name string
		a, b string
		warn bool
	}{
		{"same store, no prefixes", bucket("first", ep, "s", ""), bucket("second", ep+"/", "s", ""), true},
		{"same store, nested prefixes", bucket("first", ep, "s", "in/"), bucket("second", ep, "s", "in/public/"), true},
		{"same store, one prefix empty", bucket("first", ep, "s", "in/"), bucket("second", ep, "s", ""), true},
		{"same store, disjoint prefixes", bucket("first", ep, "s", "a/"), bucket("second", ep, "s", "b/"), false},
		{"other store bucket", bucket("first", ep, "s", ""), bucket("second", ep, "t", ""), false},
		{"other endpoint", bucket("first", ep, "s", ""), bucket("second", "http://127.0.0.1:9001", "s", ""), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte("buckets:\n"+tc.a+tc.b), "t.yaml", nil)
			if err != nil {
				t.Fatalf("S3 overlap must not be an error: %v", err)
			}
			var found string
			for _, w := range c.Warnings() {
				if strings.Contains(w.Message, "overlapping key prefixes") {
					found = w.String()
				}
			}
			switch {
			case tc.warn && (found == "" || !strings.Contains(found, `"first"`) || !strings.Contains(found, `"second"`)):
				t.Fatalf("want a warning naming both buckets, got %q", found)
			case !tc.warn && found != "":
				t.Fatalf("unexpected warning %q", found)
			}
		})
	}
}
