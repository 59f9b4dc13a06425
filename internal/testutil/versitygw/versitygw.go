// Package versitygw runs the real versitygw S3 gateway (posix backend on
// a test temp dir) on a free loopback port for tests, and offers direct
// access to it so tests can check what was really stored.
package versitygw

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/testproc"
)

// Server is a running versitygw.
type Server struct {
	// Endpoint is http://127.0.0.1:PORT.
	Endpoint  string
	Addr      string
	AccessKey string
	SecretKey string
	Region    string
	// Dir is the posix root: one directory per bucket.
	Dir  string
	Proc *testproc.Proc
}

// Start runs versitygw until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := testproc.LookPath(t, "versitygw")
	s := &Server{
		AccessKey: "AK" + randHex(9),
		SecretKey: randHex(20),
		Region:    "us-east-1",
		Dir:       t.TempDir(),
	}
	port := testproc.FreePort(t)
	s.Addr = "127.0.0.1:" + strconv.Itoa(port)
	s.Endpoint = "http://" + s.Addr
	args := []string{
		"--port", s.Addr,
		"--access", s.AccessKey,
		"--secret", s.SecretKey,
		"--region", s.Region,
		"--keep-alive",
		"--quiet",
		"posix", s.Dir,
	}
	s.Proc = testproc.Start(t, bin, args)
	testproc.WaitHTTP(t, s.Proc, s.Endpoint+"/", 20*time.Second)
	return s
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Client returns an SDK client talking straight to the gateway.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		HTTPClient:   awshttp.NewBuildableClient(),
		// Direct inspection only: never add checksums of our own.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

func ctx(t testing.TB) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// CreateBucket creates a bucket on the gateway.
func (s *Server) CreateBucket(t testing.TB, name string) {
	t.Helper()
	c, cancel := ctx(t)
	defer cancel()
	if _, err := s.Client().CreateBucket(c, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
}

// OpenUploads counts the multipart uploads in progress in bucket.
func (s *Server) OpenUploads(t testing.TB, bucket string) int {
	t.Helper()
	n, err := s.CountUploads(context.Background(), bucket)
	if err != nil {
		t.Fatalf("list multipart uploads: %v", err)
	}
	return n
}

// CountUploads is OpenUploads for callers that want the error.
func (s *Server) CountUploads(ctx context.Context, bucket string) (int, error) {
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	n := 0
	in := &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)}
	for {
		out, err := s.Client().ListMultipartUploads(c, in)
		if err != nil {
			return 0, err
		}
		n += len(out.Uploads)
		if !aws.ToBool(out.IsTruncated) {
			return n, nil
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}

// Object returns the stored bytes of key, failing the test if it is absent.
func (s *Server) Object(t testing.TB, bucket, key string) []byte {
	t.Helper()
	b, ok, err := s.Get(context.Background(), bucket, key)
	if err != nil {
		t.Fatalf("get %s/%s: %v", bucket, key, err)
	}
	if !ok {
		t.Fatalf("object %s/%s does not exist", bucket, key)
	}
	return b
}

// Get returns the stored bytes of key and whether it exists.
func (s *Server) Get(ctx context.Context, bucket, key string) ([]byte, bool, error) {
	rc, ok, err := s.Open(ctx, bucket, key)
	if err != nil || !ok {
		return nil, ok, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return b, true, err
}

// Open streams the stored bytes of key (for objects too big to hold).
func (s *Server) Open(ctx context.Context, bucket, key string) (io.ReadCloser, bool, error) {
	out, err := s.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		var nk *types.NoSuchKey
		if errors.As(err, &nk) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("get object: %w", err)
	}
	return out.Body, true, nil
}

// Head returns the stored object's metadata, or nil if it does not exist.
func (s *Server) Head(t testing.TB, bucket, key string) *s3.HeadObjectOutput {
	t.Helper()
	c, cancel := ctx(t)
	defer cancel()
	out, err := s.Client().HeadObject(c, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		var nf *types.NotFound
		if errors.As(err, &nf) {
			return nil
		}
		t.Fatalf("head %s/%s: %v", bucket, key, err)
	}
	return out
}
