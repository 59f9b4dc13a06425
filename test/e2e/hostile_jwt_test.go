package e2e

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

// TestHostileEveryJWTAlgorithmEndToEnd pins every algorithm of the
// configuration's table on its own bucket: `mizuchi validate` accepts the
// file, `mizuchi serve` starts with it, `mizuchi token --alg` mints a token
// for each, and each token uploads through the binary (and fails on a
// bucket pinned to another algorithm of the same key). Before the table
// was shared, validate accepted PS384, PS512 and ES512 and serve exited.
func TestHostileEveryJWTAlgorithmEndToEnd(t *testing.T) {
	dir := t.TempDir()
	writePEM := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signers := map[string]crypto.Signer{"RS": rsaKey, "PS": rsaKey, "EdDSA": edKey}
	for name, c := range map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()} {
		if signers[name], err = ecdsa.GenerateKey(c, rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	const secret = "an-hmac-secret-of-more-than-32-bytes-for-tests"

	type bucket struct{ alg, name, keyFile string }
	var buckets []bucket
	var cfg strings.Builder
	cfg.WriteString(`server:
  address: "127.0.0.1:{{S3_PORT}}"
metrics:
  address: "127.0.0.1:{{METRICS_PORT}}"
buckets:
`)
	for _, alg := range config.JWTAlgorithms() {
		b := bucket{alg: alg.Name, name: strings.ToLower(alg.Name)}
		keyLine := `secret: "` + secret + `"`
		if alg.Family != "HS" {
			id := alg.Curve
			if id == "" {
				id = alg.Family
			}
			s := signers[id]
			priv, err := x509.MarshalPKCS8PrivateKey(s)
			if err != nil {
				t.Fatal(err)
			}
			pub, err := x509.MarshalPKIXPublicKey(s.Public())
			if err != nil {
				t.Fatal(err)
			}
			b.keyFile = writePEM(b.name+".key", "PRIVATE KEY", priv)
			keyLine = `public_key_file: "` + writePEM(b.name+".pub", "PUBLIC KEY", pub) + `"`
		}
		buckets = append(buckets, b)
		fmt.Fprintf(&cfg, `  - name: %[1]s
    path_prefix: /%[1]s
    filesystem: { root: "{{DIR}}/%[1]s" }
    auth:
      enabled: true
      jwt:
        algorithm: %[2]s
        %[3]s
`, b.name, alg.Name, keyLine)
	}

	m := startMizuchi(t, cfg.String())
	validate := exec.Command(mizuchiBin, "validate", "--config", filepath.Join(m.Dir, "config.yaml"))
	if out, err := validate.CombinedOutput(); err != nil {
		t.Fatalf("mizuchi validate: %v\n%s", err, out)
	}

	mint := func(b bucket, alg string) string {
		t.Helper()
		args := []string{"token", "--sub", "alice", "--alg", alg}
		cmd := exec.Command(mizuchiBin, args...)
		if b.keyFile != "" {
			cmd.Args = append(cmd.Args, "--key-file", b.keyFile)
		} else {
			cmd.Env = append(os.Environ(), "JWT_SECRET="+secret)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("mizuchi token --alg %s: %v\n%s", alg, err, stderr.String())
		}
		return strings.TrimSpace(string(out))
	}
	for _, b := range buckets {
		t.Run(b.alg, func(t *testing.T) {
			body := []byte("signed with " + b.alg)
			tok := mint(b, b.alg)
			url := m.URL + "/" + b.name + "/a/" + b.alg + ".txt"
			azDo(t, "PUT", url, tok, body).want(t, "upload with "+b.alg, http.StatusOK, "")
			got, err := os.ReadFile(filepath.Join(m.Dir, b.name, "a", b.alg+".txt"))
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("stored %q, %v; want %q", got, err, body)
			}
			// The same key under another algorithm of its family is refused:
			// the bucket's algorithm is pinned.
			if other := sibling(b.alg); other != "" {
				jwWantChallenge(t, b.alg+" bucket, "+other+" token", azDo(t, "PUT", url, mint(b, other), body), "invalid_token")
			}
		})
	}
}

// sibling names another algorithm that a key of alg's family also signs.
func sibling(alg string) string {
	switch {
	case strings.HasPrefix(alg, "HS") && alg != "HS256":
		return "HS256"
	case strings.HasPrefix(alg, "HS"):
		return "HS512"
	case strings.HasPrefix(alg, "RS"):
		return "PS" + alg[2:]
	case strings.HasPrefix(alg, "PS"):
		return "RS" + alg[2:]
	}
	return ""
}
