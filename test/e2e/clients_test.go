package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend/fs"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/testproc"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/versitygw"
)

// The client matrix: every S3 client a user is likely to point at Mizuchi
// uploads a small object (PutObject) and a multipart object through the
// real binary, over HTTP and HTTPS, into a filesystem bucket and an S3
// bucket (real versitygw behind), all with SigV4. The bytes are checked
// where they were stored, never through Mizuchi.

const (
	cliAccessKey = "AKIAMATRIXCLIENTS001"
	cliSecretKey = "matrixSecretKey/For+SigV4/Clients0000001"
	cliSubject   = "matrix"
	cliStore     = "matrix-store" // the versitygw bucket behind matrix-s3
	cliPartSize  = 5 << 20
	// cliBigSize makes three parts of 5 MiB, 5 MiB and a little more than
	// 1 MiB with every client's 5 MiB part size.
	cliBigSize   = 2*cliPartSize + 1<<20 + 4321
	cliSmallSize = 1 << 10
)

// cliConfig serves two SigV4 buckets: matrix-fs (a directory) and
// matrix-s3 (versitygw). %[1]s is the server's tls block, %[2]s the
// versitygw endpoint, %[3]s/%[4]s its keys.
const cliConfig = `server:
  address: 127.0.0.1:{{S3_PORT}}
%[1]s
metrics:
  address: 127.0.0.1:{{METRICS_PORT}}
logging:
  level: info
buckets:
  - name: matrix-fs
    path_prefix: /matrix-fs
    filesystem: { root: "{{DIR}}/fs" }
    auth: &auth
      enabled: true
      sigv4:
        region: us-east-1
        max_clock_skew_seconds: 900
        credentials:
          - access_key: ` + cliAccessKey + `
            secret_key: "` + cliSecretKey + `"
            subject: ` + cliSubject + `
    upload: &upload
      part_size: 5MiB
      multipart_threshold: 5MiB
      concurrent_parts: 2
  - name: matrix-s3
    path_prefix: /matrix-s3
    s3:
      bucket: ` + cliStore + `
      region: us-east-1
      endpoint: %[2]s
      force_path_style: true
      access_key: %[3]s
      secret_key: %[4]s
    auth: *auth
    upload: *upload
`

// cliEnv is the shared world of the matrix.
type cliEnv struct {
	vgw          *versitygw.Server
	plain, tls   *Mizuchi
	caFile       string
	caPool       *x509.CertPool
	small, big   []byte
	smallF, bigF string // the same bytes in files, for command-line clients
}

// cliTarget is one Mizuchi bucket over one transport.
type cliTarget struct {
	Endpoint string // http(s)://127.0.0.1:PORT
	HTTPS    bool
	CAFile   string // PEM, HTTPS only
	CAPool   *x509.CertPool
	Bucket   string
}

// Host is the endpoint's host:port.
func (tg cliTarget) Host() string {
	u, _ := url.Parse(tg.Endpoint)
	return u.Host
}

// cliUpload is one object a client uploads.
type cliUpload struct {
	Key  string
	Path string
	Data []byte
}

// cliClient uploads every object to the target, failing the test on any
// error.
type cliClient struct {
	name   string
	upload func(t *testing.T, tg cliTarget, ups []cliUpload)
}

func TestClientMatrix(t *testing.T) {
	e := cliSetup(t)

	clients := []cliClient{
		{"aws-sdk-go-v2", cliGoSDK},
		{"minio-go", cliMinio},
		{"awscli-newest", cliAWSCLI(t, "aws")},
		{"awscli-debian", cliAWSCLI(t, "/usr/bin/aws")},
		{"boto3-newest", cliBoto3(t, "python3")},
		{"boto3-debian", cliBoto3(t, "/usr/bin/python3")},
		{"rclone", cliRclone(t)},
		{"s3cmd", cliS3cmd(t)},
	}
	t.Run("clients", func(t *testing.T) {
		for _, c := range clients {
			for _, transport := range []string{"http", "https"} {
				t.Run(c.name+"/"+transport, func(t *testing.T) {
					t.Parallel()
					for _, bucket := range []string{"matrix-fs", "matrix-s3"} {
						t.Run(bucket, func(t *testing.T) {
							tg := e.target(transport, bucket)
							prefix := c.name + "/" + transport + "/"
							ups := []cliUpload{
								// A space, a plus and a non-ASCII letter
								// exercise each client's path encoding
								// against the canonical request Mizuchi
								// rebuilds.
								{Key: prefix + "small file+1 ü.txt", Path: e.smallF, Data: e.small},
								{Key: prefix + "big.bin", Path: e.bigF, Data: e.big},
							}
							c.upload(t, tg, ups)
							for _, u := range ups {
								e.assertStored(t, transport, bucket, u.Key, u.Data)
							}
						})
					}
				})
			}
		}
	})
	e.assertNothingOpen(t)
	t.Run("refused", func(t *testing.T) { cliRefusals(t, e) })
	e.assertNothingOpen(t)
}

// assertNothingOpen checks that no multipart upload is left open and no
// temp file left behind, on versitygw and in both filesystem roots.
func (e *cliEnv) assertNothingOpen(t *testing.T) {
	t.Helper()
	if n := e.vgw.OpenUploads(t, cliStore); n != 0 {
		t.Errorf("%d multipart uploads left open on versitygw", n)
	}
	for _, m := range []*Mizuchi{e.plain, e.tls} {
		root := filepath.Join(m.Dir, "fs")
		if open, _ := os.ReadDir(filepath.Join(root, filepath.FromSlash(fs.UploadsDir))); len(open) != 0 {
			t.Errorf("%d multipart uploads left open in %s", len(open), root)
		}
		for _, f := range visibleFiles(t, root) {
			if strings.HasPrefix(filepath.Base(f), fs.TempPrefix) {
				t.Errorf("temp file left behind: %s", f)
			}
		}
	}
}

func cliSetup(t *testing.T) *cliEnv {
	t.Helper()
	e := &cliEnv{vgw: versitygw.Start(t)}
	e.vgw.CreateBucket(t, cliStore)
	dir := t.TempDir()
	var certFile, keyFile string
	e.caFile, certFile, keyFile, e.caPool = cliCerts(t, dir)

	tlsBlock := fmt.Sprintf("  tls: { cert_file: %q, key_file: %q }", certFile, keyFile)
	cfg := func(tlsBlock string) string {
		return fmt.Sprintf(cliConfig, tlsBlock, e.vgw.Endpoint, e.vgw.AccessKey, e.vgw.SecretKey)
	}
	e.plain = startMizuchi(t, cfg(""))
	// startMizuchi waits for any HTTP answer: a TLS listener answers a
	// plain request with 400, so the wait works; then check HTTPS itself.
	e.tls = startMizuchi(t, cfg(tlsBlock))
	e.tls.URL = strings.Replace(e.tls.URL, "http://", "https://", 1)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.caPool}}}
	resp, err := hc.Get(e.tls.URL + "/healthz")
	if err != nil {
		t.Fatalf("HTTPS health check: %v", err)
	}
	resp.Body.Close()
	hc.CloseIdleConnections()

	e.small = randomBytes(t, cliSmallSize)
	e.big = randomBytes(t, cliBigSize)
	e.smallF, e.bigF = filepath.Join(dir, "small.txt"), filepath.Join(dir, "big.bin")
	for p, b := range map[string][]byte{e.smallF: e.small, e.bigF: e.big} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func (e *cliEnv) target(transport, bucket string) cliTarget {
	if transport == "https" {
		return cliTarget{Endpoint: e.tls.URL, HTTPS: true, CAFile: e.caFile, CAPool: e.caPool, Bucket: bucket}
	}
	return cliTarget{Endpoint: e.plain.URL, Bucket: bucket}
}

// assertStored checks the bytes where the backend keeps them.
func (e *cliEnv) assertStored(t *testing.T, transport, bucket, key string, want []byte) {
	t.Helper()
	if bucket == "matrix-fs" {
		m := e.plain
		if transport == "https" {
			m = e.tls
		}
		assertFile(t, filepath.Join(m.Dir, "fs", filepath.FromSlash(key)), want)
		return
	}
	if got := e.vgw.Object(t, cliStore, key); !bytes.Equal(got, want) {
		t.Fatalf("versitygw %s: %d bytes stored, want %d identical bytes", key, len(got), len(want))
	}
}

// assertAbsent checks that nothing was stored under key.
func (e *cliEnv) assertAbsent(t *testing.T, m *Mizuchi, bucket, key string) {
	t.Helper()
	if bucket == "matrix-fs" {
		if _, err := os.Stat(filepath.Join(m.Dir, "fs", filepath.FromSlash(key))); err == nil {
			t.Fatalf("%s was stored in the filesystem bucket", key)
		}
		return
	}
	_, ok, err := e.vgw.Get(context.Background(), cliStore, key)
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		t.Fatalf("%s was stored on versitygw", key)
	}
}

// cliCerts writes a CA and a server certificate for 127.0.0.1 signed by
// it; it returns the CA file, the server cert and key files, and the CA
// as a pool.
func cliCerts(t *testing.T, dir string) (caFile, certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Mizuchi client matrix CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	write := func(path, typ string, der []byte) {
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(caFile, "CERTIFICATE", caDER)
	write(certFile, "CERTIFICATE", srvDER)
	write(keyFile, "PRIVATE KEY", keyDER)
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	return caFile, certFile, keyFile, pool
}

// cliRecorder remembers the x-amz-content-sha256 of every request, so the
// test can prove which payload mode a Go client really used.
type cliRecorder struct {
	next     http.RoundTripper
	mu       sync.Mutex
	modes    []string
	location int // GetBucketLocation probes
}

func (r *cliRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	mode := req.Header.Get("X-Amz-Content-Sha256")
	if len(mode) == 64 && !strings.Contains(mode, "-") {
		mode = "hex-sha256"
	}
	r.mu.Lock()
	if req.URL.Query().Has("location") {
		r.location++
	}
	if !slices.Contains(r.modes, mode) {
		r.modes = append(r.modes, mode)
	}
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

func (r *cliRecorder) Probes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.location
}

func (r *cliRecorder) Modes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.modes)
}

func cliContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// cliGoSDK uploads with aws-sdk-go-v2 in its default checksum mode
// (CRC32 when supported): signed hex SHA-256 payloads over HTTP,
// STREAMING-UNSIGNED-PAYLOAD-TRAILER (aws-chunked with a trailing
// checksum) over HTTPS.
func cliGoSDK(t *testing.T, tg cliTarget, ups []cliUpload) {
	ctx := cliContext(t)
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		if tg.HTTPS {
			tr.TLSClientConfig = &tls.Config{RootCAs: tg.CAPool}
		}
	})
	rec := &cliRecorder{next: cliRT{hc}}
	client := s3Client(t, tg.Endpoint, cliAccessKey, cliSecretKey, func(o *s3.Options) {
		o.HTTPClient = cliDoer{rec}
	})
	// Applications often check the bucket before uploading.
	if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(tg.Bucket)}); err != nil {
		t.Fatalf("HeadBucket: %v", err)
	}
	for _, u := range ups {
		if len(u.Data) < cliPartSize {
			if _, err := client.PutObject(ctx, &s3.PutObjectInput{
				Bucket: aws.String(tg.Bucket), Key: aws.String(u.Key), Body: bytes.NewReader(u.Data),
			}); err != nil {
				t.Fatalf("PutObject %s: %v", u.Key, err)
			}
			continue
		}
		//lint:ignore SA1019 the upload manager is what deployed Go programs use; transfermanager is still v0
		up := manager.NewUploader(client, func(u *manager.Uploader) { u.PartSize = cliPartSize; u.Concurrency = 2 })
		//lint:ignore SA1019 see above
		res, err := up.Upload(ctx, &s3.PutObjectInput{
			Bucket: aws.String(tg.Bucket), Key: aws.String(u.Key), Body: bytes.NewReader(u.Data),
		})
		if err != nil {
			t.Fatalf("upload manager %s: %v", u.Key, err)
		}
		parts := (len(u.Data) + cliPartSize - 1) / cliPartSize
		if !strings.HasSuffix(aws.ToString(res.ETag), fmt.Sprintf(`-%d"`, parts)) {
			t.Fatalf("multipart ETag %s does not name %d parts", aws.ToString(res.ETag), parts)
		}
	}
	want := "hex-sha256"
	if tg.HTTPS {
		want = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	}
	if modes := rec.Modes(); !slices.Contains(modes, want) {
		t.Fatalf("payload modes used %v, want %s among them", modes, want)
	}
}

// cliDoer adapts a RoundTripper to the SDK's HTTPClient.
type cliDoer struct{ rt http.RoundTripper }

func (d cliDoer) Do(req *http.Request) (*http.Response, error) { return d.rt.RoundTrip(req) }

// cliRT adapts the SDK's buildable client to a RoundTripper.
type cliRT struct{ c *awshttp.BuildableClient }

func (r cliRT) RoundTrip(req *http.Request) (*http.Response, error) { return r.c.Do(req) }

// cliMinio uploads with minio-go v7: streaming chunk signatures
// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) over HTTP. No region is given, so
// minio-go asks GetBucketLocation first, as it does out of the box.
func cliMinio(t *testing.T, tg cliTarget, ups []cliUpload) {
	ctx := cliContext(t)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if tg.HTTPS {
		tr.TLSClientConfig = &tls.Config{RootCAs: tg.CAPool}
	}
	rec := &cliRecorder{next: tr}
	client, err := minio.New(tg.Host(), &minio.Options{
		Creds:        miniocreds.NewStaticV4(cliAccessKey, cliSecretKey, ""),
		Secure:       tg.HTTPS,
		Transport:    rec,
		BucketLookup: minio.BucketLookupPath,
		MaxRetries:   1,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range ups {
		info, err := client.PutObject(ctx, tg.Bucket, u.Key, bytes.NewReader(u.Data), int64(len(u.Data)),
			minio.PutObjectOptions{PartSize: cliPartSize, ContentType: "application/octet-stream"})
		if err != nil {
			t.Fatalf("minio PutObject %s: %v", u.Key, err)
		}
		if info.Size != int64(len(u.Data)) {
			t.Fatalf("minio PutObject %s: size %d, want %d", u.Key, info.Size, len(u.Data))
		}
	}
	if rec.Probes() == 0 {
		t.Fatal("minio-go did not probe GetBucketLocation")
	}
	if !tg.HTTPS {
		if modes := rec.Modes(); !slices.Contains(modes, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD") {
			t.Fatalf("payload modes used %v, want streaming signatures", modes)
		}
	}
}

// cliRun runs a command-line client with exactly env (plus PATH and
// PYENV_ROOT so pyenv shims work) and fails the test with its output on
// error.
func cliRun(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8", "LC_ALL=C.UTF-8"}, env...)
	if v, ok := os.LookupEnv("PYENV_ROOT"); ok {
		cmd.Env = append(cmd.Env, "PYENV_ROOT="+v)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// cliLook resolves a client program, failing loudly when it is missing.
func cliLook(t *testing.T, name string) string {
	t.Helper()
	if filepath.IsAbs(name) {
		if _, err := os.Stat(name); err != nil {
			t.Fatalf("%s is not installed (run scripts/install-tools.sh): %v", name, err)
		}
		return name
	}
	return testproc.LookPath(t, name)
}

// cliAWSCLI uploads with `aws s3 cp` and a config file that sets 5 MiB
// multipart thresholds and path-style addressing.
func cliAWSCLI(t *testing.T, bin string) func(*testing.T, cliTarget, []cliUpload) {
	bin = cliLook(t, bin)
	return func(t *testing.T, tg cliTarget, ups []cliUpload) {
		home := t.TempDir()
		cfg := filepath.Join(home, "config")
		creds := filepath.Join(home, "credentials")
		cliWrite(t, cfg, "[default]\nregion = us-east-1\ns3 =\n  multipart_threshold = 5MB\n  multipart_chunksize = 5MB\n  max_concurrent_requests = 2\n  addressing_style = path\n")
		cliWrite(t, creds, "[default]\naws_access_key_id = "+cliAccessKey+"\naws_secret_access_key = "+cliSecretKey+"\n")
		env := []string{"HOME=" + home, "AWS_CONFIG_FILE=" + cfg, "AWS_SHARED_CREDENTIALS_FILE=" + creds,
			"AWS_MAX_ATTEMPTS=1", "AWS_PAGER="}
		args := []string{"--endpoint-url", tg.Endpoint}
		if tg.HTTPS {
			env = append(env, "AWS_CA_BUNDLE="+tg.CAFile)
		}
		for _, u := range ups {
			cliRun(t, env, bin, append([]string{"s3", "cp", "--only-show-errors", u.Path, "s3://" + tg.Bucket + "/" + u.Key}, args...)...)
		}
	}
}

// cliBoto3 runs testdata/clients_boto3.py with the given interpreter.
func cliBoto3(t *testing.T, python string) func(*testing.T, cliTarget, []cliUpload) {
	python = cliLook(t, python)
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "testdata", "clients_boto3.py")
	return func(t *testing.T, tg cliTarget, ups []cliUpload) {
		var pairs []string
		for _, u := range ups {
			pairs = append(pairs, u.Key+"="+u.Path)
		}
		env := []string{"HOME=" + t.TempDir(), "MZ_ENDPOINT=" + tg.Endpoint, "MZ_BUCKET=" + tg.Bucket,
			"MZ_ACCESS_KEY=" + cliAccessKey, "MZ_SECRET_KEY=" + cliSecretKey,
			"MZ_UPLOADS=" + strings.Join(pairs, ";"), "MZ_CA_BUNDLE=" + tg.CAFile,
			"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"}
		out := cliRun(t, env, python, script)
		t.Logf("%s", strings.SplitN(out, "\n", 2)[0])
	}
}

// cliRclone uploads with `rclone copyto` and a remote configured only by
// environment variables. Mizuchi refuses reads (HeadObject, GetObject,
// listings) by design, so rclone must upload without looking at the
// destination: --s3-no-check-bucket (no CreateBucket/HeadBucket),
// --s3-no-head (no HeadObject after the upload), --no-check-dest (no
// HeadObject/listing before it).
func cliRclone(t *testing.T) func(*testing.T, cliTarget, []cliUpload) {
	bin := cliLook(t, "rclone")
	return func(t *testing.T, tg cliTarget, ups []cliUpload) {
		home := t.TempDir()
		env := []string{"HOME=" + home, "RCLONE_CONFIG=" + filepath.Join(home, "rclone.conf"),
			"RCLONE_CONFIG_MZ_TYPE=s3", "RCLONE_CONFIG_MZ_PROVIDER=Other",
			"RCLONE_CONFIG_MZ_ENDPOINT=" + tg.Endpoint, "RCLONE_CONFIG_MZ_REGION=us-east-1",
			"RCLONE_CONFIG_MZ_ACCESS_KEY_ID=" + cliAccessKey, "RCLONE_CONFIG_MZ_SECRET_ACCESS_KEY=" + cliSecretKey,
			"RCLONE_CONFIG_MZ_FORCE_PATH_STYLE=true"}
		args := []string{"--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", "--s3-upload-concurrency", "2",
			"--s3-no-check-bucket", "--s3-no-head", "--no-check-dest", "--retries", "1", "--low-level-retries", "1"}
		if tg.HTTPS {
			args = append(args, "--ca-cert", tg.CAFile)
		}
		for _, u := range ups {
			cliRun(t, env, bin, append([]string{"copyto", u.Path, "mz:" + tg.Bucket + "/" + u.Key}, args...)...)
		}
	}
}

// cliS3cmd uploads with `s3cmd put` and a generated configuration:
// path-style (host_bucket without %(bucket)s), SigV4.
func cliS3cmd(t *testing.T) func(*testing.T, cliTarget, []cliUpload) {
	bin := cliLook(t, "s3cmd")
	return func(t *testing.T, tg cliTarget, ups []cliUpload) {
		home := t.TempDir()
		cfg := filepath.Join(home, "s3cfg")
		useHTTPS := "False"
		if tg.HTTPS {
			useHTTPS = "True"
		}
		cliWrite(t, cfg, "[default]\naccess_key = "+cliAccessKey+"\nsecret_key = "+cliSecretKey+
			"\nhost_base = "+tg.Host()+"\nhost_bucket = "+tg.Host()+"\nuse_https = "+useHTTPS+
			"\nsignature_v2 = False\nbucket_location = us-east-1\ncheck_ssl_certificate = True\nca_certs_file = "+tg.CAFile+
			"\nmultipart_chunk_size_mb = 5\n")
		for _, u := range ups {
			cliRun(t, []string{"HOME=" + home}, bin, "-c", cfg, "--no-progress", "--multipart-chunk-size-mb=5",
				"put", u.Path, "s3://"+tg.Bucket+"/"+u.Key)
		}
	}
}

func cliWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
