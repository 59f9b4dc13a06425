package e2e

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/loadbalancer"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/redisserver"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/versitygw"
)

// Scale-out: three built binaries behind a real HAProxy (round-robin per
// request), one real redis-server as the shared state, versitygw behind.
// Every replica has the same upload id keys and the same store; no
// replica knows anything the others do not.

const (
	soStore      = "scale-store" // the versitygw bucket
	soBobKey     = "AKIASCALEOUTBOB00001"
	soBobSecret  = "scaleOutBobSecret/For+SigV4/000000000001"
	soUploadKey1 = "scale-out-upload-id-key-one-0123456789abcdef"
	soRedisPass  = "redis-password-for-scale-out-tests"
)

// soConfig: %[1]s versitygw endpoint, %[2]s/%[3]s its keys, %[4]s the
// redis address, %[5]s the embedded policy file.
const soConfig = `server:
  address: 127.0.0.1:{{S3_PORT}}
  upload_id_keys: ["` + soUploadKey1 + `"]
metrics:
  address: 127.0.0.1:{{METRICS_PORT}}
logging:
  level: warn
state:
  backend: redis
  redis:
    address: %[4]s
    password: "` + soRedisPass + `"
    key_prefix: "e2e:"
    timeout_seconds: 1
buckets:
  - name: open
    path_prefix: /open
    s3:
      bucket: ` + soStore + `
      region: us-east-1
      endpoint: %[1]s
      force_path_style: true
      access_key: %[2]s
      secret_key: %[3]s
      key_prefix: open/
    auth: &auth
      enabled: true
      sigv4:
        region: us-east-1
        max_clock_skew_seconds: 900
        replay_protection: true
        credentials:
          - access_key: ` + cliAccessKey + `
            secret_key: "` + cliSecretKey + `"
            subject: ` + cliSubject + `
          - access_key: ` + soBobKey + `
            secret_key: "` + soBobSecret + `"
            subject: bob
  - name: policed
    path_prefix: /policed
    s3:
      bucket: ` + soStore + `
      region: us-east-1
      endpoint: %[1]s
      force_path_style: true
      access_key: %[2]s
      secret_key: %[3]s
      key_prefix: policed/
    auth: *auth
    authz:
      enabled: true
      opa: { policy_file: "%[5]s" }
`

// soPolicy allows every authenticated request: ownership of a multipart
// upload must hold even where the policy would let anyone in.
const soPolicy = "package mizuchi\n\nallow := true\n"

type soFleet struct {
	vgw      *versitygw.Server
	redis    *redisserver.Server
	replicas []*Mizuchi
	lb       *loadbalancer.LB
}

func soStart(t *testing.T, n int) *soFleet {
	t.Helper()
	f := &soFleet{vgw: versitygw.Start(t), redis: redisserver.Start(t, soRedisPass)}
	f.vgw.CreateBucket(t, soStore)
	policy := filepath.Join(t.TempDir(), "allow.rego")
	if err := os.WriteFile(policy, []byte(soPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(soConfig, f.vgw.Endpoint, f.vgw.AccessKey, f.vgw.SecretKey, f.redis.Addr, policy)
	var addrs []string
	for range n {
		m := startMizuchi(t, cfg)
		f.replicas = append(f.replicas, m)
		addrs = append(addrs, strings.TrimPrefix(m.URL, "http://"))
	}
	f.lb = loadbalancer.Start(t, addrs...)
	for _, m := range f.replicas {
		soWaitReady(t, m)
	}
	return f
}

// soWaitReady waits until a replica's /readyz says ready.
func soWaitReady(t *testing.T, m *Mizuchi) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(m.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %s not ready: %v", m.URL, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// restartAll stops every replica (SIGTERM, drained) and starts it again
// on the same address with the same configuration.
func (f *soFleet) restartAll(t *testing.T) {
	t.Helper()
	for i, m := range f.replicas {
		_ = m.Proc.Signal(syscall.SIGTERM)
		<-m.Proc.Done()
		f.replicas[i] = runMizuchi(t, m.Dir, m.URL, m.MetricsURL, []string{"serve", "--config", filepath.Join(m.Dir, "config.yaml")})
	}
	for _, m := range f.replicas {
		soWaitReady(t, m)
	}
	f.lb.WaitAllUp(t)
}

// partsPerReplica is UploadPart requests answered 200 by each replica.
func (f *soFleet) partsPerReplica(t *testing.T) []float64 {
	var out []float64
	for _, m := range f.replicas {
		out = append(out, azMetric(t, m.MetricsURL, "mizuchi_uploads_total", `operation="UploadPart"`, `status="200"`))
	}
	return out
}

// TestScaleOutMultipartByCLIClients: the newest boto3 and AWS CLI upload
// multipart objects through the load balancer; the parts land on all
// three replicas and the objects are byte-exact in versitygw.
func TestScaleOutMultipartByCLIClients(t *testing.T) {
	f := soStart(t, 3)
	dir := t.TempDir()
	data := randomBytes(t, 4*cliPartSize+12345) // five parts of 5 MiB with both clients
	path := filepath.Join(dir, "big.bin")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	tg := cliTarget{Endpoint: f.lb.Endpoint, Bucket: "open"}
	ups := func(key string) []cliUpload { return []cliUpload{{Key: key, Path: path}} }
	t.Run("boto3", func(t *testing.T) {
		cliBoto3(t, "python3")(t, tg, ups("boto3/big.bin"))
		if got := f.vgw.Object(t, soStore, "open/boto3/big.bin"); !bytes.Equal(got, data) {
			t.Fatalf("stored %d bytes, md5 %s; want md5 %s", len(got), md5hex(got), md5hex(data))
		}
	})
	t.Run("awscli", func(t *testing.T) {
		cliAWSCLI(t, "aws")(t, tg, ups("awscli/big.bin"))
		if got := f.vgw.Object(t, soStore, "open/awscli/big.bin"); !bytes.Equal(got, data) {
			t.Fatalf("stored %d bytes, md5 %s; want md5 %s", len(got), md5hex(got), md5hex(data))
		}
	})
	parts := f.partsPerReplica(t)
	for i, n := range parts {
		if n == 0 {
			t.Errorf("replica %d answered no part (parts per replica %v): the load balancer did not spread the upload", i, parts)
		}
	}
	if n := f.vgw.OpenUploads(t, soStore); n != 0 {
		t.Errorf("%d multipart uploads left open", n)
	}
	t.Logf("parts per replica: %v", parts)
}

// TestScaleOutRestartMidMultipart: every replica restarts between two
// parts; the client continues and completes through the load balancer,
// and another subject still cannot touch the upload — on a bucket without
// authorization and on one whose policy allows everyone.
func TestScaleOutRestartMidMultipart(t *testing.T) {
	f := soStart(t, 3)
	ctx := context.Background()
	alice := s3Client(t, f.lb.Endpoint, cliAccessKey, cliSecretKey)
	bob := s3Client(t, f.lb.Endpoint, soBobKey, soBobSecret)
	part1, part2 := randomBytes(t, 5<<20), randomBytes(t, 1<<20+7)
	type upload struct {
		bucket, key string
		id          *string
		p1          *string // ETag of part 1
	}
	var ups []upload
	for _, bucket := range []string{"open", "policed"} {
		u := upload{bucket: bucket, key: "restart/" + bucket + ".bin"}
		created, err := alice.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(u.key)})
		if err != nil {
			t.Fatal(err)
		}
		u.id = created.UploadId
		if len(*u.id) > 512 || strings.ContainsAny(*u.id, "+/=%") {
			t.Fatalf("upload id %q is not a short URL-safe token", *u.id)
		}
		p1, err := alice.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(u.key), UploadId: u.id,
			PartNumber: aws.Int32(1), Body: bytes.NewReader(part1)})
		if err != nil {
			t.Fatal(err)
		}
		u.p1 = p1.ETag
		ups = append(ups, u)
	}

	f.restartAll(t)

	for _, u := range ups {
		bucket, key, id := aws.String(u.bucket), aws.String(u.key), u.id
		what := func(s string) string { return u.bucket + ": " + s }
		// Another subject, on every replica in turn (round-robin).
		for range len(f.replicas) {
			_, err := bob.UploadPart(ctx, &s3.UploadPartInput{Bucket: bucket, Key: key, UploadId: id,
				PartNumber: aws.Int32(3), Body: bytes.NewReader([]byte("bob was here"))})
			soWantCode(t, what("bob's UploadPart"), err, 403, "AccessDenied")
		}
		_, err := bob.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: bucket, Key: key, UploadId: id})
		soWantCode(t, what("bob's AbortMultipartUpload"), err, 403, "AccessDenied")
		_, err = bob.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: bucket, Key: key, UploadId: id,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: u.p1}}}})
		soWantCode(t, what("bob's CompleteMultipartUpload"), err, 403, "AccessDenied")
		_, err = bob.ListParts(ctx, &s3.ListPartsInput{Bucket: bucket, Key: key, UploadId: id})
		soWantCode(t, what("bob's ListParts"), err, 403, "AccessDenied")
		// The creator, with the id on another key, or an altered id.
		_, err = alice.UploadPart(ctx, &s3.UploadPartInput{Bucket: bucket, Key: aws.String(u.key + ".other"), UploadId: id,
			PartNumber: aws.Int32(2), Body: bytes.NewReader([]byte("x"))})
		soWantCode(t, what("UploadPart with the id on another key"), err, 404, "NoSuchUpload")
		forged := []byte(*id)
		forged[len(forged)-5] ^= 'A' ^ 'B'
		_, err = alice.UploadPart(ctx, &s3.UploadPartInput{Bucket: bucket, Key: key, UploadId: aws.String(string(forged)),
			PartNumber: aws.Int32(2), Body: bytes.NewReader([]byte("x"))})
		soWantCode(t, what("UploadPart with an altered id"), err, 404, "NoSuchUpload")

		// The creator continues.
		p2, err := alice.UploadPart(ctx, &s3.UploadPartInput{Bucket: bucket, Key: key, UploadId: id,
			PartNumber: aws.Int32(2), Body: bytes.NewReader(part2)})
		if err != nil {
			t.Fatal(what(err.Error()))
		}
		lp, err := alice.ListParts(ctx, &s3.ListPartsInput{Bucket: bucket, Key: key, UploadId: id})
		if err != nil || len(lp.Parts) != 2 || aws.ToString(lp.UploadId) != *id {
			t.Fatalf("%s: ListParts: %v %+v", u.bucket, err, lp)
		}
		_, err = alice.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: bucket, Key: key, UploadId: id,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{
				{PartNumber: aws.Int32(1), ETag: u.p1}, {PartNumber: aws.Int32(2), ETag: p2.ETag}}}})
		if err != nil {
			t.Fatal(what(err.Error()))
		}
		want := append(append([]byte(nil), part1...), part2...)
		if got := f.vgw.Object(t, soStore, u.bucket+"/"+u.key); !bytes.Equal(got, want) {
			t.Fatalf("%s: stored %d bytes, want %d", u.bucket, len(got), len(want))
		}
	}
	if n := f.vgw.OpenUploads(t, soStore); n != 0 {
		t.Errorf("%d multipart uploads left open", n)
	}
}

func soWantCode(t *testing.T, what string, err error, status int, code string) {
	t.Helper()
	var re interface{ HTTPStatusCode() int }
	var ae smithy.APIError
	if err == nil || !errors.As(err, &re) || !errors.As(err, &ae) {
		t.Fatalf("%s: got %v, want %d %s", what, err, status, code)
	}
	if re.HTTPStatusCode() != status || ae.ErrorCode() != code {
		t.Fatalf("%s: got %d %s, want %d %s", what, re.HTTPStatusCode(), ae.ErrorCode(), status, code)
	}
}

// soSignedPut is one header-signed PutObject to the fleet's address (the
// Host it signs), to be sent as is to any replica.
type soSignedPut struct {
	host   string
	path   string
	header http.Header
	body   []byte
}

func soSign(t *testing.T, endpoint, path string, body []byte) soSignedPut {
	t.Helper()
	req := cliSignedPut(t, endpoint+path, body, cliSHA256(body), cliAccessKey, cliSecretKey, time.Now())
	return soSignedPut{host: req.Host, path: path, header: req.Header.Clone(), body: body}
}

// sendTo sends the signed request to a replica, Host unchanged.
func (s soSignedPut) sendTo(t *testing.T, m *Mizuchi) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, m.URL+s.path, bytes.NewReader(s.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = s.header.Clone()
	u, _ := url.Parse("http://" + s.host)
	req.Host = u.Host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct {
		Code string `xml:"Code"`
	}
	_ = xml.Unmarshal(b, &e)
	return resp.StatusCode, e.Code
}

// TestScaleOutReplayAcrossReplicas: a signed request accepted by replica A
// is refused as a replay by replica B.
func TestScaleOutReplayAcrossReplicas(t *testing.T) {
	f := soStart(t, 2)
	put := soSign(t, f.lb.Endpoint, "/open/replay/once.txt", []byte("once"))
	if st, code := put.sendTo(t, f.replicas[0]); st != 200 {
		t.Fatalf("first send to A: %d %s", st, code)
	}
	if st, code := put.sendTo(t, f.replicas[1]); st != 403 || code != "AccessDenied" {
		t.Fatalf("replay to B: %d %s, want 403 AccessDenied", st, code)
	}
	if st, code := put.sendTo(t, f.replicas[0]); st != 403 || code != "AccessDenied" {
		t.Fatalf("replay to A: %d %s, want 403 AccessDenied", st, code)
	}
}

// TestScaleOutStoreDown: with the store killed, signed writes get 503
// SlowDown and store nothing, /readyz says why and the error is counted;
// once the store is back, uploads work again without a restart.
func TestScaleOutStoreDown(t *testing.T) {
	f := soStart(t, 2)
	ctx := context.Background()
	alice := s3Client(t, f.lb.Endpoint, cliAccessKey, cliSecretKey)
	if _, err := alice.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("open"), Key: aws.String("down/before.txt"), Body: strings.NewReader("before")}); err != nil {
		t.Fatal(err)
	}
	f.redis.Stop()

	for i, m := range f.replicas {
		resp, body := rawRequest(t, "GET", m.URL+"/readyz", nil, nil)
		if resp.StatusCode != 503 || !strings.Contains(body, `"state"`) || !strings.Contains(body, "redis") {
			t.Fatalf("readyz on replica %d with the store down: %d %s", i, resp.StatusCode, body)
		}
		if strings.Contains(body, soRedisPass) {
			t.Fatal("readyz shows the store's password")
		}
		if n := azMetric(t, m.MetricsURL, "mizuchi_state_errors_total", `op="check"`); n < 1 {
			t.Fatalf("replica %d counted %v check errors", i, n)
		}
		put := soSign(t, m.URL, fmt.Sprintf("/open/down/during-%d.txt", i), []byte("during"))
		if st, code := put.sendTo(t, m); st != 503 || code != "SlowDown" {
			t.Fatalf("signed write on replica %d with the store down: %d %s, want 503 SlowDown", i, st, code)
		}
		if n := azMetric(t, m.MetricsURL, "mizuchi_state_errors_total", `op="claim"`); n < 1 {
			t.Fatalf("replica %d counted %v claim errors", i, n)
		}
		if _, ok, _ := f.vgw.Get(ctx, soStore, fmt.Sprintf("open/down/during-%d.txt", i)); ok {
			t.Fatalf("a write refused on replica %d was stored", i)
		}
	}

	f.redis.Restart()
	for _, m := range f.replicas {
		soWaitReady(t, m)
	}
	for i := range 4 {
		key := fmt.Sprintf("down/after-%d.txt", i)
		if _, err := alice.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("open"), Key: aws.String(key), Body: strings.NewReader("after")}); err != nil {
			t.Fatalf("upload %d after the store came back: %v", i, err)
		}
		if got := f.vgw.Object(t, soStore, "open/"+key); string(got) != "after" {
			t.Fatalf("stored %q", got)
		}
	}
}
