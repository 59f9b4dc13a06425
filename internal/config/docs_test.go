package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// keyPaths lists every YAML key path of a type, lists written as [].
func keyPaths(t reflect.Type, prefix string, out *[]string) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		if t.Kind() == reflect.Slice {
			prefix += "[]"
		}
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == sizeType {
		return
	}
	for i := range t.NumField() {
		name, ok := yamlName(t.Field(i))
		if !ok {
			continue
		}
		p := joinPath(prefix, name)
		*out = append(*out, p)
		keyPaths(t.Field(i).Type, p, out)
	}
}

func TestDocsListEveryKey(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "CONFIG.md"))
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	keyPaths(reflect.TypeFor[Config](), "", &paths)
	known := map[string]bool{}
	for _, p := range paths {
		known[p] = true
		if !strings.Contains(string(doc), "| `"+p+"` |") {
			t.Errorf("docs/CONFIG.md has no table row for `%s`", p)
		}
	}
	// And the other way: every documented key exists.
	row := regexp.MustCompile("(?m)^\\| `([a-z_\\[\\].]+)` \\|")
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		if !known[m[1]] {
			t.Errorf("docs/CONFIG.md documents `%s`, which is not a configuration key", m[1])
		}
	}
}

var varRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)`)

func TestExamplesAreValid(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "examples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"filesystem.yaml": true, "s3-aws.yaml": true, "s3-compatible.yaml": true}
	for _, f := range files {
		delete(want, filepath.Base(f))
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			vars := map[string]string{}
			for _, m := range varRef.FindAllStringSubmatch(string(data), -1) {
				vars[m[1]] = "example-" + strings.ToLower(m[1]) + "-0123456789abcdef0123456789abcdef"
			}
			vars["IDP_HOST"] = "idp.example.com"
			delete(vars, "AWS_REGION")
			delete(vars, "MIZUCHI_ADDRESS")
			delete(vars, "OTEL_COLLECTOR")
			delete(vars, "S3_ENDPOINT")
			delete(vars, "OPENFGA_ADDR")
			c, err := Parse(data, f, env(vars))
			if err != nil {
				t.Fatalf("example does not validate:\n%v", err)
			}
			t.Logf("summary:\n%s", c.Summary())
			for _, w := range c.Warnings() {
				t.Logf("warning: %s", w)
			}
		})
	}
	for name := range want {
		t.Errorf("examples/%s is missing", name)
	}
}
