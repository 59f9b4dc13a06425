package s3api

import (
	"errors"
	"testing"

	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

func TestRouterMatchesWholeSegmentsLongestPrefixFirst(t *testing.T) {
	buckets := []*Bucket{
		{Name: "uploads", Prefix: "/uploads"},
		{Name: "private", Prefix: "/private"},
		{Name: "team", Prefix: "/uploads/team"},
		{Name: "deep", Prefix: "/a/b/c"},
	}
	rt := NewRouter(buckets)
	tests := []struct {
		name    string
		path    string
		bucket  string
		rawKey  string
		matched bool
	}{
		{"bucket itself", "/uploads", "uploads", "", true},
		{"bucket with slash", "/uploads/", "uploads", "", true},
		{"object", "/uploads/a.txt", "uploads", "a.txt", true},
		{"nested object", "/uploads/x/y/z.bin", "uploads", "x/y/z.bin", true},
		{"longest prefix wins", "/uploads/team/doc.txt", "team", "doc.txt", true},
		{"segment boundary not substring", "/uploads-evil/a.txt", "", "", false},
		{"prefix as substring of segment", "/uploadsx", "", "", false},
		{"encoded slash cannot cross segments", "/uploads%2Fteam/doc.txt", "", "", false},
		{"encoded slash inside key stays in key", "/uploads/a%2Fb", "uploads", "a%2Fb", true},
		{"dot-dot is not normalised", "/uploads/../private/x", "uploads", "../private/x", true},
		{"encoded dot-dot in prefix position", "/%2e%2e/private/x", "", "", false},
		{"encoded bucket name matches its segment", "/upl%6Fads/a", "uploads", "a", true},
		{"no bucket", "/other/a", "", "", false},
		{"root", "/", "", "", false},
		{"relative", "uploads/a", "", "", false},
		{"deep prefix", "/a/b/c/k", "deep", "k", true},
		{"deep prefix partial", "/a/b/k", "", "", false},
		{"team bucket itself", "/uploads/team", "team", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, rawKey, ok := rt.Match(tt.path)
			if ok != tt.matched {
				t.Fatalf("Match(%q) ok = %v, want %v", tt.path, ok, tt.matched)
			}
			if !ok {
				return
			}
			if b.Name != tt.bucket || rawKey != tt.rawKey {
				t.Fatalf("Match(%q) = %s, %q; want %s, %q", tt.path, b.Name, rawKey, tt.bucket, tt.rawKey)
			}
		})
	}
}

func TestDecodeKey(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		want    string
		wantErr *s3err.Error
	}{
		{"plain", "a.txt", "a.txt", nil},
		{"decoded once", "a%2520b", "a%20b", nil},
		{"space", "a%20b", "a b", nil},
		{"encoded slash", "dir%2Ffile", "dir/file", nil},
		{"unicode", "%E6%B0%B4/%E8%9B%87", "水/蛇", nil},
		{"empty", "", "", s3err.ErrInvalidArgument},
		{"dot-dot", "../x", "", s3err.ErrInvalidArgument},
		{"dot-dot middle", "a/../b", "", s3err.ErrInvalidArgument},
		{"encoded dot-dot", "%2e%2e/x", "", s3err.ErrInvalidArgument},
		{"encoded dot-dot with encoded slash", "a%2F..%2Fb", "", s3err.ErrInvalidArgument},
		{"backslash dot-dot", "..%5Cwindows", "", s3err.ErrInvalidArgument},
		{"single dot", "./a", "", s3err.ErrInvalidArgument},
		{"NUL", "a%00b", "", s3err.ErrInvalidArgument},
		{"bad escape", "a%zz", "", s3err.ErrInvalidArgument},
		{"invalid utf8", "%ff%fe", "", s3err.ErrInvalidArgument},
		{"dots inside a name are fine", "a..b/..c", "a..b/..c", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeKey(tt.raw)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("DecodeKey(%q) err = %v, want %s", tt.raw, err, tt.wantErr.Code)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("DecodeKey(%q) = %q, %v; want %q", tt.raw, got, err, tt.want)
			}
		})
	}
	long := make([]byte, 1025)
	for i := range long {
		long[i] = 'k'
	}
	if _, err := DecodeKey(string(long)); !errors.Is(err, s3err.ErrKeyTooLong) {
		t.Fatalf("1025-byte key: %v", err)
	}
}

func FuzzDecodeKey(f *testing.F) {
	for _, s := range []string{"a", "../x", "%2e%2e", "a%2Fb", "%00", "..\\x", "%ff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		key, err := DecodeKey(raw)
		if err != nil {
			return
		}
		if ValidateKey(key) != nil {
			t.Fatalf("DecodeKey accepted %q but ValidateKey refuses it", key)
		}
	})
}
