package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"hash"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/testproc"
)

// pkiCA is a certificate authority made by a test.
type pkiCA struct {
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	pem    []byte
	serial atomic.Int64
}

func newCA(t *testing.T, name string) *pkiCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &pkiCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	ca.serial.Store(100)
	return ca
}

func (ca *pkiCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// issued is a certificate with its key, in PEM and ready for crypto/tls.
type issued struct {
	serial          int64
	certPEM, keyPEM []byte
	tls             tls.Certificate
	commonName      string
}

func (ca *pkiCA) issue(t *testing.T, cn string, usage x509.ExtKeyUsage, uris ...string) *issued {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial := ca.serial.Add(1)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	if usage == x509.ExtKeyUsageServerAuth {
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	for _, u := range uris {
		pu, err := neturl.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	is := &issued{
		serial:     serial,
		certPEM:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:     pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		commonName: cn,
	}
	if is.tls, err = tls.X509KeyPair(is.certPEM, is.keyPEM); err != nil {
		t.Fatal(err)
	}
	return is
}

// install writes the certificate and key the way a certificate manager
// does: each to a temp file renamed over the old one.
func (is *issued) install(t *testing.T, certFile, keyFile string) {
	t.Helper()
	writeAtomic(t, certFile, is.certPEM)
	writeAtomic(t, keyFile, is.keyPEM)
}

func writeAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// httpsClient trusts roots and presents cert (none when nil). One
// connection per client, HTTP/1.1, so a test knows which connection a
// request used.
func httpsClient(roots *x509.CertPool, cert *tls.Certificate) *http.Client {
	cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if cert != nil {
		// Presented whatever CAs the server asks for: a client with a
		// certificate of another CA must be refused by the server, not
		// spared by its own library.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{TLSClientConfig: cfg, MaxConnsPerHost: 1}}
}

// servedSerial makes a new TLS handshake and returns the serial number of
// the certificate the server presented.
func servedSerial(t *testing.T, addr string, roots *x509.CertPool) int64 {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// gatedBody is a request body of n pseudo-random bytes that stops after
// `at` bytes until open is closed, so a test can act while an upload is
// in flight. It hashes what it sent.
type gatedBody struct {
	n, at, sent int64
	rng         *mrand.ChaCha8
	reached     chan struct{}
	open        chan struct{}
	sum         hash.Hash
}

func newGatedBody(n, at int64, seed byte) *gatedBody {
	var s [32]byte
	s[0] = seed
	return &gatedBody{n: n, at: at, rng: mrand.NewChaCha8(s), reached: make(chan struct{}), open: make(chan struct{}), sum: sha256.New()}
}

func (b *gatedBody) Read(p []byte) (int, error) {
	if b.sent == b.n {
		return 0, io.EOF
	}
	if b.sent == b.at {
		close(b.reached)
		<-b.open
	}
	limit := b.n - b.sent
	if b.sent < b.at {
		limit = b.at - b.sent
	}
	if int64(len(p)) > limit {
		p = p[:limit]
	}
	_, _ = b.rng.Read(p)
	b.sum.Write(p)
	b.sent += int64(len(p))
	return len(p), nil
}

func (b *gatedBody) sha256() string { return hex.EncodeToString(b.sum.Sum(nil)) }

// waitGate waits until the body reached its gate, failing after a while.
func (b *gatedBody) waitGate(t *testing.T, errc <-chan error) {
	t.Helper()
	select {
	case <-b.reached:
	case err := <-errc:
		t.Fatalf("the upload ended before the gate: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("the upload did not reach the gate")
	}
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// waitReloads waits until mizuchi_config_reloads_total{result} reaches n.
func waitReloads(t *testing.T, m *Mizuchi, result string, n float64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := azMetric(t, m.MetricsURL, "mizuchi_config_reloads_total", `result="`+result+`"`)
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("mizuchi_config_reloads_total{result=%q} = %v after 20s, want %v\n%s", result, got, n, m.Proc.Output())
		}
		if m.Proc.Exited() {
			t.Fatalf("mizuchi exited:\n%s", m.Proc.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startMizuchiPID is startMizuchi with a pid file, for mizuchi reload.
func startMizuchiPID(t *testing.T, config string) (*Mizuchi, string) {
	t.Helper()
	m := startMizuchiWith(t, config, "--pid-file", "mizuchi.pid")
	return m, filepath.Join(m.Dir, "mizuchi.pid")
}

// startMizuchiWith is startMizuchi with more serve flags.
func startMizuchiWith(t *testing.T, config string, flags ...string) *Mizuchi {
	t.Helper()
	dir := t.TempDir()
	port, mport := testproc.FreePort(t), testproc.FreePort(t)
	r := strings.NewReplacer("{{S3_PORT}}", fmt.Sprint(port), "{{METRICS_PORT}}", fmt.Sprint(mport), "{{DIR}}", dir)
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(r.Replace(config)), 0o600); err != nil {
		t.Fatal(err)
	}
	return runMizuchi(t, dir, fmt.Sprintf("http://127.0.0.1:%d", port), fmt.Sprintf("http://127.0.0.1:%d", mport),
		append([]string{"serve", "--config", path}, flags...))
}

// rewriteConfig replaces the configuration file of m, placeholders
// filled as startMizuchi does.
func rewriteConfig(t *testing.T, m *Mizuchi, config string) {
	t.Helper()
	port := m.URL[strings.LastIndexByte(m.URL, ':')+1:]
	mport := m.MetricsURL[strings.LastIndexByte(m.MetricsURL, ':')+1:]
	r := strings.NewReplacer("{{S3_PORT}}", port, "{{METRICS_PORT}}", mport, "{{DIR}}", m.Dir)
	writeAtomic(t, filepath.Join(m.Dir, "config.yaml"), []byte(r.Replace(config)))
}

// mizuchiReload runs `mizuchi reload --pid-file`.
func mizuchiReload(t *testing.T, pidFile string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, mizuchiBin, "reload", "--pid-file", pidFile).CombinedOutput()
	if err != nil {
		t.Fatalf("mizuchi reload: %v\n%s", err, out)
	}
}

const mtlsPolicy = `package mizuchi

default allow := false

# Only the holder of the certificate named alice may upload.
allow if {
	input.subject == "alice"
	input.context.auth_method == "tls_client"
}
`

// TestMTLSClientCertificatesReachThePolicy runs the built binary with
// client certificates required: a client without one, or with one from
// another CA, gets no TLS session; a certificate from the configured CA
// authenticates its common name, which the embedded OPA policy sees as
// the subject (alice may upload, bob may not).
func TestMTLSClientCertificatesReachThePolicy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	serverCA, clientCA, otherCA := newCA(t, "server CA"), newCA(t, "client CA"), newCA(t, "another CA")
	certFile, keyFile, caFile, policy := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"), filepath.Join(dir, "clients.pem"), filepath.Join(dir, "policy.rego")
	serverCA.issue(t, "127.0.0.1", x509.ExtKeyUsageServerAuth).install(t, certFile, keyFile)
	writeAtomic(t, caFile, clientCA.pem)
	writeAtomic(t, policy, []byte(mtlsPolicy))

	m := startMizuchi(t, fmt.Sprintf(`server:
  address: 127.0.0.1:{{S3_PORT}}
  tls:
    cert_file: %q
    key_file: %q
    client_ca: %q
    client_auth: require
metrics:
  address: 127.0.0.1:{{METRICS_PORT}}
buckets:
  - name: files
    path_prefix: /files
    filesystem: { root: "{{DIR}}/files" }
    auth:
      enabled: true
      tls_client: { subject_from: cn }
    authz:
      enabled: true
      opa:
        policy_file: %q
        query: data.mizuchi.allow
        cache_ttl_seconds: 0
`, certFile, keyFile, caFile, policy))
	url := strings.Replace(m.URL, "http://", "https://", 1)
	roots := serverCA.pool()

	put := func(c *http.Client, key string) (*http.Response, error) {
		req, err := http.NewRequest(http.MethodPut, url+"/files/"+key, strings.NewReader("hello "+key))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return resp, err
	}
	stored := func(key string) bool {
		_, err := os.Stat(filepath.Join(m.Dir, "files", key))
		return err == nil
	}

	t.Run("no certificate", func(t *testing.T) {
		resp, err := put(httpsClient(roots, nil), "anon.txt")
		if err == nil {
			t.Fatalf("answered %s without a client certificate", resp.Status)
		}
		if !strings.Contains(err.Error(), "certificate required") {
			t.Fatalf("error %v, want the server's certificate required alert", err)
		}
		if stored("anon.txt") {
			t.Fatal("stored")
		}
	})
	t.Run("certificate from another CA", func(t *testing.T) {
		mallory := otherCA.issue(t, "alice", x509.ExtKeyUsageClientAuth)
		resp, err := put(httpsClient(roots, &mallory.tls), "forged.txt")
		if err == nil {
			t.Fatalf("answered %s to a certificate of another CA", resp.Status)
		}
		if !strings.Contains(err.Error(), "unknown certificate authority") && !strings.Contains(err.Error(), "bad certificate") {
			t.Fatalf("error %v, want the server's unknown CA alert", err)
		}
		if stored("forged.txt") {
			t.Fatal("stored")
		}
	})
	t.Run("alice is allowed", func(t *testing.T) {
		alice := clientCA.issue(t, "alice", x509.ExtKeyUsageClientAuth)
		resp, err := put(httpsClient(roots, &alice.tls), "alice.txt")
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %s, want 200", resp.Status)
		}
		if b, err := os.ReadFile(filepath.Join(m.Dir, "files", "alice.txt")); err != nil || string(b) != "hello alice.txt" {
			t.Fatalf("stored %q, %v", b, err)
		}
	})
	t.Run("bob is denied by the policy", func(t *testing.T) {
		bob := clientCA.issue(t, "bob", x509.ExtKeyUsageClientAuth)
		resp, err := put(httpsClient(roots, &bob.tls), "bob.txt")
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %s, want 403", resp.Status)
		}
		if stored("bob.txt") {
			t.Fatal("stored")
		}
	})
	if got := azMetric(t, m.MetricsURL, "mizuchi_auth_requests_total", `method="tls_client"`, `result="success"`); got != 2 {
		t.Fatalf("tls_client successes %v, want 2 (alice and bob)", got)
	}
	if got := azMetric(t, m.MetricsURL, "mizuchi_authz_decisions_total", `decision="deny"`); got != 1 {
		t.Fatalf("denials %v, want 1 (bob)", got)
	}
}

// TestCertificatesReplacedOnReload replaces the server certificate and
// key files while an upload is in flight on a TLS connection, then reloads
// (mizuchi reload, and in a second server by watching the files): new
// handshakes present the new certificate, and the upload on the old
// connection completes.
func TestCertificatesReplacedOnReload(t *testing.T) {
	t.Parallel()
	for _, watch := range []bool{false, true} {
		t.Run(fmt.Sprintf("watch=%v", watch), func(t *testing.T) {
			dir := t.TempDir()
			ca := newCA(t, "server CA")
			certFile, keyFile := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
			first, second := ca.issue(t, "127.0.0.1", x509.ExtKeyUsageServerAuth), ca.issue(t, "127.0.0.1", x509.ExtKeyUsageServerAuth)
			first.install(t, certFile, keyFile)
			m, pidFile := startMizuchiPID(t, fmt.Sprintf(`server:
  address: 127.0.0.1:{{S3_PORT}}
  watch_config: %v
  tls: { cert_file: %q, key_file: %q }
metrics:
  address: 127.0.0.1:{{METRICS_PORT}}
buckets:
  - name: files
    path_prefix: /files
    filesystem: { root: "{{DIR}}/files" }
`, watch, certFile, keyFile))
			addr := strings.TrimPrefix(m.URL, "http://")
			url := "https://" + addr
			if got := servedSerial(t, addr, ca.pool()); got != first.serial {
				t.Fatalf("serves serial %d, want %d", got, first.serial)
			}

			// A 64 MiB upload, held after 16 MiB.
			body := newGatedBody(64<<20, 16<<20, 7)
			req, err := http.NewRequest(http.MethodPut, url+"/files/long.bin", body)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = body.n
			var connSerial atomic.Int64
			req = req.WithContext(withConnState(req.Context(), &connSerial))
			client := httpsClient(ca.pool(), nil)
			errc := make(chan error, 1)
			go func() {
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %s", resp.Status)
					}
				}
				errc <- err
			}()
			body.waitGate(t, errc)

			second.install(t, certFile, keyFile)
			if watch {
				deadline := time.Now().Add(20 * time.Second)
				for servedSerial(t, addr, ca.pool()) != second.serial {
					if time.Now().After(deadline) {
						t.Fatalf("the replaced certificate is not served 20s later:\n%s", m.Proc.Output())
					}
					time.Sleep(200 * time.Millisecond)
				}
			} else {
				mizuchiReload(t, pidFile)
				waitReloads(t, m, "success", 1)
			}
			if got := servedSerial(t, addr, ca.pool()); got != second.serial {
				t.Fatalf("a new handshake got serial %d, want the new certificate's %d", got, second.serial)
			}

			close(body.open)
			select {
			case err := <-errc:
				if err != nil {
					t.Fatalf("the upload over the old connection failed: %v", err)
				}
			case <-time.After(2 * time.Minute):
				t.Fatal("the upload over the old connection did not finish")
			}
			if got := connSerial.Load(); got != first.serial {
				t.Fatalf("the upload's connection had serial %d, want the first certificate's %d", got, first.serial)
			}
			if got := fileSHA256(t, filepath.Join(m.Dir, "files", "long.bin")); got != body.sha256() {
				t.Fatal("the stored object differs from what was sent")
			}
			if got := azMetric(t, m.MetricsURL, "mizuchi_config_reloads_total", `result="failure"`); got != 0 {
				t.Fatalf("%v failed reloads", got)
			}
		})
	}
}

// withConnState records the serial number of the server certificate of
// the connection a request gets.
func withConnState(ctx context.Context, serial *atomic.Int64) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			if c, ok := info.Conn.(*tls.Conn); ok {
				serial.Store(c.ConnectionState().PeerCertificates[0].SerialNumber.Int64())
			}
		},
	})
}

const mtlsChainPolicy = `package mizuchi

default allow := false

allow if {
	input.subject == "alice"
	input.context.auth_method == "tls_client"
}

allow if {
	input.subject == "carol"
	input.context.auth_method == "sigv4"
}
`

// TestMTLSVerifyIfGivenOrdersAfterSigV4: with client_auth
// verify_if_given, a client may connect without a certificate; on a
// bucket with sigv4 and tls_client, a signed request is identified by its
// signature even over a connection with a certificate, a bad signature is
// refused rather than replaced by the certificate, and an unsigned
// request is identified by the certificate.
func TestMTLSVerifyIfGivenOrdersAfterSigV4(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	serverCA, clientCA := newCA(t, "server CA"), newCA(t, "client CA")
	certFile, keyFile, caFile, policy := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"), filepath.Join(dir, "clients.pem"), filepath.Join(dir, "policy.rego")
	serverCA.issue(t, "127.0.0.1", x509.ExtKeyUsageServerAuth).install(t, certFile, keyFile)
	writeAtomic(t, caFile, clientCA.pem)
	writeAtomic(t, policy, []byte(mtlsChainPolicy))
	m := startMizuchi(t, fmt.Sprintf(`server:
  address: 127.0.0.1:{{S3_PORT}}
  tls: { cert_file: %q, key_file: %q, client_ca: %q, client_auth: verify_if_given }
metrics:
  address: 127.0.0.1:{{METRICS_PORT}}
buckets:
  - name: files
    path_prefix: /files
    filesystem: { root: "{{DIR}}/files" }
    auth:
      enabled: true
      sigv4:
        credentials: [{ access_key: AKIACAROL, secret_key: carol-secret, subject: carol }]
      tls_client: { subject_from: cn }
    authz:
      enabled: true
      opa: { policy_file: %q, cache_ttl_seconds: 0 }
`, certFile, keyFile, caFile, policy))
	url := strings.Replace(m.URL, "http://", "https://", 1)
	roots := serverCA.pool()
	alice, bob := clientCA.issue(t, "alice", x509.ExtKeyUsageClientAuth), clientCA.issue(t, "bob", x509.ExtKeyUsageClientAuth)

	do := func(cert *issued, key, secret string) (int, string) {
		t.Helper()
		var req *http.Request
		var err error
		if secret != "" {
			req, err = rlPut(t, url+"/files/"+key, "AKIACAROL", secret, strings.NewReader("hello"), 5)
		} else {
			req, err = http.NewRequest(http.MethodPut, url+"/files/"+key, strings.NewReader("hello"))
		}
		if err != nil {
			t.Fatal(err)
		}
		var c *http.Client
		if cert != nil {
			c = httpsClient(roots, &cert.tls)
		} else {
			c = httpsClient(roots, nil)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tt := range []struct {
		name        string
		cert        *issued
		key, secret string
		status      int
		code        string
	}{
		{"no certificate, signed by carol", nil, "a", "carol-secret", 200, ""},
		{"alice's certificate, unsigned", alice, "b", "", 200, ""},
		{"bob's certificate, signed by carol: the signature decides", bob, "c", "carol-secret", 200, ""},
		{"alice's certificate, bad signature: refused", alice, "d", "wrong-secret", 403, "SignatureDoesNotMatch"},
		{"bob's certificate, unsigned: denied by the policy", bob, "e", "", 403, "AccessDenied"},
		{"nothing at all", nil, "f", "", 403, "AccessDenied"},
	} {
		status, body := do(tt.cert, tt.key, tt.secret)
		if status != tt.status || !strings.Contains(body, tt.code) {
			t.Errorf("%s: %d %s, want %d %s", tt.name, status, body, tt.status, tt.code)
		}
		_, err := os.Stat(filepath.Join(m.Dir, "files", tt.key))
		if stored := err == nil; stored != (tt.status == 200) {
			t.Errorf("%s: stored=%v", tt.name, stored)
		}
	}
	if got := azMetric(t, m.MetricsURL, "mizuchi_auth_requests_total", `method="tls_client"`, `result="success"`); got != 2 {
		t.Errorf("tls_client successes %v, want 2", got)
	}
}
