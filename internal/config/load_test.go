package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Size
		bad  bool
	}{
		{name: "bytes", in: "1048576", want: 1 << 20},
		{name: "zero", in: "0", want: 0},
		{name: "KiB", in: "4KiB", want: 4 << 10},
		{name: "MiB", in: "64MiB", want: 64 << 20},
		{name: "GiB", in: "5GiB", want: 5 << 30},
		{name: "TiB", in: "5TiB", want: 5 << 40},
		{name: "decimal KB", in: "512KB", want: 512_000},
		{name: "decimal MB", in: "10MB", want: 10_000_000},
		{name: "decimal GB", in: "1GB", want: 1_000_000_000},
		{name: "short K is binary", in: "8K", want: 8 << 10},
		{name: "B suffix", in: "100B", want: 100},
		{name: "space before unit", in: "64 MiB", want: 64 << 20},
		{name: "empty", in: "", bad: true},
		{name: "negative", in: "-1MiB", bad: true},
		{name: "fraction", in: "1.5GiB", bad: true},
		{name: "unknown unit", in: "3 parsecs", bad: true},
		{name: "lower case unit", in: "64mib", bad: true},
		{name: "unit only", in: "MiB", bad: true},
		{name: "overflow", in: "9999999999TiB", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if tt.bad {
				if err == nil {
					t.Fatalf("ParseSize(%q) = %d, want an error", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestSizeString(t *testing.T) {
	for in, want := range map[Size]string{0: "0", 5 << 20: "5MiB", 5 << 40: "5TiB", 1536: "1536", 1 << 10: "1KiB", 3 << 30: "3GiB"} {
		if got := in.String(); got != want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(in), got, want)
		}
	}
}

func TestSizeAcceptsIntegerAndString(t *testing.T) {
	c := mustParse(t, minimal+"    upload:\n      part_size: 8388608\n      max_object_size: \"1GiB\"\n", nil)
	if u := c.Buckets[0].Upload; u.PartSize != 8<<20 || u.MaxObjectSize != 1<<30 {
		t.Errorf("sizes %s %s", u.PartSize, u.MaxObjectSize)
	}
}

func TestDefault(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("built-in default is invalid: %v", err)
	}
	if c.Source != SourceBuiltin {
		t.Errorf("Source %q", c.Source)
	}
	if c.Server.Address != "127.0.0.1:8080" || c.Metrics.Address != "127.0.0.1:9090" || !c.Metrics.On() {
		t.Errorf("addresses %q %q metrics %v", c.Server.Address, c.Metrics.Address, c.Metrics.On())
	}
	if len(c.Buckets) != 1 {
		t.Fatalf("%d buckets", len(c.Buckets))
	}
	b := c.Buckets[0]
	if b.Name != "uploads" || b.PathPrefix != "/uploads" || b.Filesystem == nil || b.Filesystem.Root != "./data/uploads" || b.S3 != nil || b.Auth != nil || b.Authz != nil {
		t.Errorf("bucket %+v", b)
	}
	if b.Upload.PartSize != DefaultPartSize || c.Server.ReadHeaderTimeoutSeconds != 10 || c.Logging.Level != "info" {
		t.Errorf("defaults not applied: %+v %+v", b.Upload, c.Server)
	}
	w := c.Warnings()
	if len(w) != 1 || !strings.Contains(w[0].String(), "built-in default") || !strings.Contains(w[0].String(), "unauthenticated") || !strings.Contains(w[0].String(), "loopback only") {
		t.Errorf("warnings %v", w)
	}
	if !strings.Contains(c.Summary(), "configuration: built-in default") {
		t.Errorf("summary:\n%s", c.Summary())
	}
}

func TestApplyDefaultsIsIdempotent(t *testing.T) {
	c := mustParse(t, minimal, nil)
	before := c.Summary()
	c.ApplyDefaults()
	if after := c.Summary(); after != before {
		t.Errorf("second ApplyDefaults changed the config:\n%s\n%s", before, after)
	}
}

func writeConfig(t *testing.T, dir, name, bucket string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	body := "buckets:\n  - name: " + bucket + "\n    path_prefix: /" + bucket + "\n    filesystem: { root: ./d }\n"
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestResolveOrder(t *testing.T) {
	tests := []struct {
		name       string
		flag       bool
		env        bool
		cwdFile    bool
		wantBucket string
		wantSource string
	}{
		{name: "flag wins over everything", flag: true, env: true, cwdFile: true, wantBucket: "fromflag", wantSource: "flag.yaml"},
		{name: "env wins over ./config.yaml", env: true, cwdFile: true, wantBucket: "fromenv", wantSource: "env.yaml"},
		{name: "./config.yaml when present", cwdFile: true, wantBucket: "fromcwd", wantSource: "config.yaml"},
		{name: "built-in default otherwise", wantBucket: "uploads", wantSource: SourceBuiltin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir)
			other := t.TempDir()
			vars := map[string]string{}
			flag := ""
			if tt.flag {
				flag = writeConfig(t, other, "flag.yaml", "fromflag")
			}
			if tt.env {
				vars[EnvConfig] = writeConfig(t, other, "env.yaml", "fromenv")
			}
			if tt.cwdFile {
				writeConfig(t, dir, "config.yaml", "fromcwd")
			}
			c, err := Resolve(flag, env(vars))
			if err != nil {
				t.Fatal(err)
			}
			if c.Buckets[0].Name != tt.wantBucket {
				t.Errorf("bucket %q, want %q", c.Buckets[0].Name, tt.wantBucket)
			}
			if filepath.Base(c.Source) != tt.wantSource {
				t.Errorf("Source %q, want %q", c.Source, tt.wantSource)
			}
		})
	}
}

func TestResolveEmptyEnvIsUnset(t *testing.T) {
	t.Chdir(t.TempDir())
	c, err := Resolve("", env(map[string]string{EnvConfig: ""}))
	if err != nil || c.Source != SourceBuiltin {
		t.Fatalf("got %v, %v", c, err)
	}
}

func TestResolveMissingExplicitFileIsAnError(t *testing.T) {
	t.Chdir(t.TempDir())
	writeConfig(t, ".", "config.yaml", "fromcwd")
	if _, err := Resolve("missing.yaml", env(nil)); err == nil {
		t.Error("missing --config file: want an error, not a fallback")
	}
	if _, err := Resolve("", env(map[string]string{EnvConfig: "missing.yaml"})); err == nil {
		t.Error("missing $MIZUCHI_CONFIG file: want an error, not a fallback")
	}
}

func TestLoadReportsTheFileName(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(p, []byte(minimal+"logging:\n  level: ${UNSET_FOR_TEST}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p, env(nil))
	if err == nil || !strings.HasPrefix(err.Error(), p+":6: logging.level: environment variable UNSET_FOR_TEST is not set") {
		t.Errorf("got %v", err)
	}
}

func TestLoadExpandsFromTheGivenEnvironment(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(p, []byte(minimal+"logging:\n  level: ${LVL}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p, env(map[string]string{"LVL": "warn"}))
	if err != nil || c.Logging.Level != "warn" || c.Source != p {
		t.Fatalf("got %+v, %v", c, err)
	}
}
