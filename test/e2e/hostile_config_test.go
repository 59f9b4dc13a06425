package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/testproc"
)

// TestHostileOverlappingRootsAreRefused starts from the attack: an
// anonymous bucket whose root is (or holds) the root of an authenticated
// bucket lets anyone overwrite the authenticated bucket's objects. Both
// `mizuchi validate` and `mizuchi serve` refuse such a file and name both
// buckets, whether the overlap is spelled with the same path, a relative
// path, a path through a symlink or a directory inside the other.
func TestHostileOverlappingRootsAreRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "data", "private"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "data"), filepath.Join(dir, "alias")); err != nil {
		t.Fatal(err)
	}
	head := `server:
  address: "127.0.0.1:` + fmt.Sprint(testproc.FreePort(t)) + `"
metrics:
  address: "127.0.0.1:` + fmt.Sprint(testproc.FreePort(t)) + `"
buckets:
  - name: private
    path_prefix: /private
    filesystem: { root: "` + "{{DIR}}" + `/data/private" }
    auth:
      enabled: true
      jwt: { algorithm: HS256, secret: "0123456789abcdef0123456789abcdef" }
  - name: open
    path_prefix: /open
    filesystem: { root: "`
	write := func(name, root string) string {
		cfg := strings.ReplaceAll(head+root+"\" }\n", "{{DIR}}", dir)
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// The control: the same file with disjoint roots is valid.
	if out, err := exec.Command(mizuchiBin, "validate", "--config", write("disjoint", "{{DIR}}/data/public")).CombinedOutput(); err != nil {
		t.Fatalf("disjoint roots refused: %v\n%s", err, out)
	}
	cases := map[string]string{
		"same directory":   "data/private",
		"through symlink":  "{{DIR}}/alias/private/",
		"parent directory": "{{DIR}}/data",
		"inside":           "{{DIR}}/alias/private/public",
	}
	for name, root := range cases {
		t.Run(name, func(t *testing.T) {
			path := write(name, root)
			for _, sub := range []string{"validate", "serve"} {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				cmd := exec.CommandContext(ctx, mizuchiBin, sub, "--config", path)
				cmd.Dir = dir
				out, err := cmd.CombinedOutput()
				timedOut := ctx.Err() != nil
				cancel()
				if err == nil || timedOut {
					t.Fatalf("mizuchi %s accepted overlapping roots (%v):\n%s", sub, err, out)
				}
				if s := string(out); !strings.Contains(s, "buckets[1].filesystem.root") ||
					!strings.Contains(s, `bucket "private"`) || !strings.Contains(s, `bucket "open"`) {
					t.Fatalf("mizuchi %s: message does not name both buckets:\n%s", sub, s)
				}
			}
		})
	}
}
