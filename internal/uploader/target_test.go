package uploader

import (
	"strings"
	"testing"
)

func TestTargets(t *testing.T) {
	tests := []struct {
		name    string
		files   []string
		dest    string
		want    []string // URL strings
		wantErr string
	}{
		{"one file to a key", []string{"/tmp/a.txt"}, "http://h:8080/uploads/docs/b.txt", []string{"http://h:8080/uploads/docs/b.txt"}, ""},
		{"one file to a directory", []string{"/tmp/a.txt"}, "http://h:8080/uploads/docs/", []string{"http://h:8080/uploads/docs/a.txt"}, ""},
		{"one file to the prefix", []string{"x/a.txt"}, "https://h/uploads", []string{"https://h/uploads/a.txt"}, ""},
		{"one file to the prefix with slash", []string{"a.txt"}, "https://h/uploads/", []string{"https://h/uploads/a.txt"}, ""},
		{"several files", []string{"a", "d/b"}, "http://h/uploads/in", []string{"http://h/uploads/in/a", "http://h/uploads/in/b"}, ""},
		{"encoded key", []string{"a"}, "http://h/uploads/x%20y", []string{"http://h/uploads/x%20y"}, ""},
		{"name needing escapes", []string{"/tmp/a b#c?.txt"}, "http://h/uploads/", []string{"http://h/uploads/a%20b%23c%3F.txt"}, ""},
		{"no prefix", []string{"a"}, "http://h/", nil, "names no bucket prefix"},
		{"bad scheme", []string{"a"}, "ftp://h/uploads/", nil, "scheme"},
		{"no host", []string{"a"}, "http:///uploads/", nil, "no host"},
		{"query", []string{"a"}, "http://h/uploads/?x=1", nil, "query"},
		{"credentials in URL", []string{"a"}, "http://u:p@h/uploads/", nil, "credentials"},
		{"same base name twice", []string{"a/x", "b/x"}, "http://h/uploads/", nil, "both"},
		{"no files", nil, "http://h/uploads/", nil, "no file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Targets(tt.files, tt.dest)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%d targets, want %d", len(got), len(tt.want))
			}
			for i, w := range tt.want {
				if got[i].URL.String() != w || got[i].File != tt.files[i] || "/"+got[i].Key != got[i].URL.Path {
					t.Errorf("target %d: %s (key %q), want %s", i, got[i].URL, got[i].Key, w)
				}
			}
		})
	}
}
