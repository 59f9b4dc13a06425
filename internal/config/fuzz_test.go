package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that no input makes Parse panic, and that a config it
// accepts is valid and has a summary.
func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte(minimal + "logging:\n  level: ${X:-info}\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Add([]byte("x-a: &a { part_size: 8MiB }\nbuckets:\n  - { name: a, path_prefix: /a, filesystem: { root: r }, upload: { <<: *a } }\n"))
	f.Add([]byte("buckets: [{name: a, path_prefix: /a, s3: {bucket: b, region: r}, auth: {enabled: true, jwt: {algorithm: HS256, secret: \"$${x}\"}}}]\n"))
	if examples, err := filepath.Glob(filepath.Join("..", "..", "examples", "*.yaml")); err == nil {
		for _, p := range examples {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	lookup := env(map[string]string{"X": "1", "EMPTY": ""})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.yaml", lookup)
		if err != nil {
			if c != nil {
				t.Fatal("config returned with an error")
			}
			_ = err.Error()
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that Validate rejects: %v", err)
		}
		_ = c.Summary()
		_ = c.Warnings()
	})
}

func TestAliasBombsAreRefused(t *testing.T) {
	tests := []struct {
		name string
		yml  string
		want string
	}{
		{"wide merge keys", bomb(3, 100, "{<<: [%s]}", "{k: v}") + minimal + "    upload: {<<: *a3}\n", "document too large"},
		{"deep merge keys", bomb(7, 2, "{<<: [%s]}", "{k: v}") + minimal + "    upload: {<<: *a7}\n", "merge keys nested too deeply"},
		{"nested sequences stop at the first type mismatch", bomb(7, 10, "[%s]", "[{type: bearer}]") + jwtb("algorithm: HS256", "secret: s", "token_sources: *a7"), "expected a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseErr(t, tt.yml, nil)
			if !strings.Contains(got, tt.want) || strings.Count(got, "\n") > 20 {
				t.Errorf("got %s", got)
			}
		})
	}
}

// bomb builds x-0 … x-levels where each level lists the previous one
// fanout times.
func bomb(levels, fanout int, level, base string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "x-0: &a0 %s\n", base)
	for i := 1; i <= levels; i++ {
		refs := strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d,", i-1), fanout), ",")
		fmt.Fprintf(&b, "x-%d: &a%d %s\n", i, i, fmt.Sprintf(level, refs))
	}
	return b.String()
}
