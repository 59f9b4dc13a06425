package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/jaeger"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/versitygw"
)

// clConfig has two buckets on one store bucket: "cl" (key prefix a/,
// cleanup after 2 s, every second) and "young" (key prefix y/, cleanup
// after an hour).
const clConfig = `server:
  address: 127.0.0.1:{{S3_PORT}}
metrics:
  address: 127.0.0.1:{{METRICS_PORT}}
buckets:
  - name: cl
    path_prefix: /cl
    s3: { bucket: shared, region: us-east-1, endpoint: %[1]s, force_path_style: true, access_key: %[2]s, secret_key: %[3]s, key_prefix: "a/" }
    cleanup: { abort_incomplete_after_seconds: 2, interval_seconds: 1 }
  - name: young
    path_prefix: /young
    s3: { bucket: shared, region: us-east-1, endpoint: %[1]s, force_path_style: true, access_key: %[2]s, secret_key: %[3]s, key_prefix: "y/" }
    cleanup: { abort_incomplete_after_seconds: 3600, interval_seconds: 1 }
`

// clOpenKeys lists the keys of the multipart uploads open on the store.
func clOpenKeys(t *testing.T, gw *versitygw.Server) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := gw.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("shared")})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, u := range out.Uploads {
		keys = append(keys, aws.ToString(u.Key))
	}
	slices.Sort(keys)
	return keys
}

// TestCleanupAbortsOrphanedUploadsUnderTheBucketPrefixOnly leaves
// incomplete multipart uploads on versitygw (as crashed clients do): the
// one under the bucket's key prefix is aborted once older than the age;
// those in a sibling prefix (ab/), outside any prefix, and under another
// bucket whose age is not reached stay.
func TestCleanupAbortsOrphanedUploadsUnderTheBucketPrefixOnly(t *testing.T) {
	gw := versitygw.Start(t)
	gw.CreateBucket(t, "shared")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, k := range []string{"a/orphan.bin", "ab/sibling.bin", "b/outside.bin", "y/young.bin"} {
		out, err := gw.Client().CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("shared"), Key: aws.String(k)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := gw.Client().UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("shared"), Key: aws.String(k),
			UploadId: out.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("dropped"), ContentLength: aws.Int64(7)}); err != nil {
			t.Fatal(err)
		}
	}
	m := startMizuchi(t, fmt.Sprintf(clConfig, gw.Endpoint, gw.AccessKey, gw.SecretKey))

	waitFor(t, "the orphan to be aborted", func() bool {
		return azMetric(t, m.MetricsURL, "mizuchi_multipart_cleanup_aborted_total", `bucket="cl"`) >= 1
	})
	// More runs of both buckets, which must not touch anything else.
	waitFor(t, "two more cleanup runs", func() bool {
		return azMetric(t, m.MetricsURL, "mizuchi_multipart_cleanup_runs_total", `bucket="cl"`, `result="ok"`) >= 3 &&
			azMetric(t, m.MetricsURL, "mizuchi_multipart_cleanup_runs_total", `bucket="young"`, `result="ok"`) >= 3
	})
	if got, want := clOpenKeys(t, gw), []string{"ab/sibling.bin", "b/outside.bin", "y/young.bin"}; !slices.Equal(got, want) {
		t.Errorf("open uploads on the store: %q, want %q", got, want)
	}
	if n := azMetric(t, m.MetricsURL, "mizuchi_multipart_cleanup_aborted_total", `bucket="cl"`); n != 1 {
		t.Errorf(`mizuchi_multipart_cleanup_aborted_total{bucket="cl"} = %v, want 1`, n)
	}
	if n := azMetric(t, m.MetricsURL, "mizuchi_multipart_cleanup_aborted_total", `bucket="young"`); n != 0 {
		t.Errorf(`mizuchi_multipart_cleanup_aborted_total{bucket="young"} = %v, want 0`, n)
	}
	if n := azMetric(t, m.MetricsURL, "mizuchi_multipart_cleanup_runs_total", `result="failed"`); n != 0 {
		t.Errorf("failed cleanup runs: %v\n%s", n, m.Proc.Output())
	}
	out := m.Proc.Output()
	if !strings.Contains(out, `"msg":"multipart cleanup","bucket":"cl","aborted":1`) {
		t.Errorf("no log line of the run that aborted the orphan:\n%s", out)
	}
	if strings.Contains(out, "a/orphan.bin") || strings.Contains(out, "orphan.bin") {
		t.Errorf("the log names an object key:\n%s", out)
	}
}

// TestFilesystemCleanupUsesTheCleanupKeys: a filesystem bucket's abandoned
// multipart upload is removed after cleanup.abort_incomplete_after_seconds
// and counted; a completed object stays.
func TestFilesystemCleanupUsesTheCleanupKeys(t *testing.T) {
	m := startMizuchi(t, `server:
  address: 127.0.0.1:{{S3_PORT}}
metrics:
  address: 127.0.0.1:{{METRICS_PORT}}
buckets:
  - name: fsb
    path_prefix: /fsb
    filesystem: { root: "{{DIR}}/root" }
    cleanup: { abort_incomplete_after_seconds: 1, interval_seconds: 1 }
`)
	c := s3Client(t, m.URL, "", "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("fsb"), Key: aws.String("kept.txt"), Body: strings.NewReader("kept")}); err != nil {
		t.Fatal(err)
	}
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("fsb"), Key: aws.String("abandoned.bin")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("fsb"), Key: aws.String("abandoned.bin"), UploadId: up.UploadId,
		PartNumber: aws.Int32(1), Body: strings.NewReader("a part"), ContentLength: aws.Int64(6)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the abandoned upload to be removed", func() bool {
		return azMetric(t, m.MetricsURL, "mizuchi_multipart_cleanup_aborted_total", `bucket="fsb"`) >= 1
	})
	_, err = c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("fsb"), Key: aws.String("abandoned.bin"), UploadId: up.UploadId})
	if err == nil || !strings.Contains(err.Error(), "NoSuchUpload") {
		t.Errorf("ListParts after the cleanup: %v, want NoSuchUpload", err)
	}
	if b, err := os.ReadFile(filepath.Join(m.Dir, "root", "kept.txt")); err != nil || string(b) != "kept" {
		t.Errorf("the completed object: %q, %v", b, err)
	}
}

// TestCleanupRunIsATrace: a cleanup run that aborts an orphan is one
// trace in Jaeger, MultipartCleanup with the store calls below it.
func TestCleanupRunIsATrace(t *testing.T) {
	jg := jaeger.Start(t)
	gw := versitygw.Start(t)
	gw.CreateBucket(t, "shared")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := gw.Client().CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("shared"), Key: aws.String("a/orphan")}); err != nil {
		t.Fatal(err)
	}
	m := startMizuchi(t, fmt.Sprintf(`server:
  address: 127.0.0.1:{{S3_PORT}}
metrics:
  address: 127.0.0.1:{{METRICS_PORT}}
tracing:
  enabled: true
  service_name: cleanup-trace
  otlp: { endpoint: "http://%[4]s", protocol: grpc }
  sampling: { strategy: always }
  batch: { scheduled_delay_millis: 100 }
buckets:
  - name: cl
    path_prefix: /cl
    s3: { bucket: shared, region: us-east-1, endpoint: %[1]s, force_path_style: true, access_key: %[2]s, secret_key: %[3]s, key_prefix: "a/" }
    cleanup: { abort_incomplete_after_seconds: 1, interval_seconds: 1 }
`, gw.Endpoint, gw.AccessKey, gw.SecretKey, jg.OTLPGRPC))
	waitFor(t, "the orphan to be aborted", func() bool {
		return azMetric(t, m.MetricsURL, "mizuchi_multipart_cleanup_aborted_total", `bucket="cl"`) >= 1
	})
	var found string
	deadline := time.Now().Add(30 * time.Second)
	for found == "" && time.Now().Before(deadline) {
		resp, body := rawRequest(t, "GET", jg.QueryURL+"/api/traces?service=cleanup-trace&operation=MultipartCleanup&limit=50", nil, nil)
		if resp.StatusCode == 200 {
			var tr struct {
				Data []struct {
					Spans []jaeger.Span `json:"spans"`
				} `json:"data"`
			}
			if err := json.Unmarshal([]byte(body), &tr); err != nil {
				t.Fatal(err)
			}
			for _, d := range tr.Data {
				var root *jaeger.Span
				ops := map[string]bool{}
				for i, s := range d.Spans {
					ops[s.OperationName] = true
					if s.OperationName == "MultipartCleanup" {
						root = &d.Spans[i]
					}
				}
				if root == nil || root.ParentSpanID() != "" {
					continue
				}
				if v, _ := root.Tag("mizuchi.cleanup.aborted"); fmt.Sprint(v) == "1" && ops["S3.ListMultipartUploads"] && ops["S3.AbortMultipartUpload"] {
					b, _ := root.Tag("mizuchi.bucket")
					found = fmt.Sprint(b)
				}
			}
		}
		if found == "" {
			time.Sleep(200 * time.Millisecond)
		}
	}
	if found != "cl" {
		t.Fatalf("no MultipartCleanup trace that aborted one upload with its S3 calls in jaeger (bucket %q)", found)
	}
}
