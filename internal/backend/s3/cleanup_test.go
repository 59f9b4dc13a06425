package s3

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/faultproxy"
)

// openKeys lists the keys of the uploads open on the gateway.
func openKeys(t *testing.T, e *env) []string {
	t.Helper()
	out, err := e.gw.Client().ListMultipartUploads(ctxT(t), &s3.ListMultipartUploadsInput{Bucket: aws.String(testBucket)})
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

func TestCleanupAbortsOnlyTheUploadsOfItsPrefixWithRetries(t *testing.T) {
	e := startEnv(t)
	hp := faultproxy.StartHTTP(t, e.gw.Addr)
	gw := e.gw.Client()
	// Uploads left by crashed clients, straight on the store: under the
	// bucket's prefix, under a sibling prefix, under another bucket's
	// deeper prefix and outside any prefix.
	mine := []string{"a/one", "a/two", "a/x/three", "a/four", "a/five"}
	others := []string{"ab/sibling", "a/deep/other-bucket", "other/outside", "a"}
	for _, k := range append(slices.Clone(mine), others...) {
		out, err := gw.CreateMultipartUpload(ctxT(t), &s3.CreateMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String(k)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := gw.UploadPart(ctxT(t), &s3.UploadPartInput{Bucket: aws.String(testBucket), Key: aws.String(k),
			UploadId: out.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("a dropped part"), ContentLength: aws.Int64(14)}); err != nil {
			t.Fatal(err)
		}
	}
	st := e.store(t, hp.URL, func(o *Options) {
		o.Config.KeyPrefix = "a/"
		o.CleanupSkipPrefixes = []string{"a/deep/"}
	})
	st.cleanupPageSize = 2 // five uploads of ours over several pages

	res, err := st.Cleanup(ctxT(t), time.Hour)
	if err != nil || res.Aborted != 0 || res.Kept != len(mine) {
		t.Fatalf("Cleanup(1h) = %+v, %v; want all %d young uploads kept", res, err, len(mine))
	}

	// Some stores answer the first Abort after a dropped part with 500.
	hp.Inject(faultproxy.Injection{Match: func(r *http.Request) bool { return r.Method == http.MethodDelete }, Times: 1, Status: 500, Code: "InternalError"})
	res, err = st.Cleanup(ctxT(t), 0)
	if err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if res.Aborted != len(mine) {
		t.Errorf("aborted %d, want %d", res.Aborted, len(mine))
	}
	if hp.Injected() != 1 {
		t.Errorf("the injected 500 was not hit (%d)", hp.Injected())
	}
	want := slices.Clone(others)
	slices.Sort(want)
	if got := openKeys(t, e); !slices.Equal(got, want) {
		t.Errorf("open uploads after the cleanup: %q, want %q", got, want)
	}
	if n := testutil.ToFloat64(e.metrics.BackendRequests.WithLabelValues("uploads", "AbortMultipartUpload", "500")); n != 1 {
		t.Errorf("backend requests AbortMultipartUpload 500 = %v, want 1", n)
	}
	pages := 0
	for _, r := range hp.Requests() {
		if r.Method == http.MethodGet && !r.Injected {
			pages++
		}
	}
	if pages < 6 { // two runs of three pages each
		t.Errorf("%d list requests, want the uploads paged by 2", pages)
	}
}

// ignoringPrefix is a store that ignores ListMultipartUploads' Prefix.
type ignoringPrefix struct {
	API
	keys    []string
	aborted []string
}

func (f *ignoringPrefix) ListMultipartUploads(ctx context.Context, in *s3.ListMultipartUploadsInput, _ ...func(*s3.Options)) (*s3.ListMultipartUploadsOutput, error) {
	out := &s3.ListMultipartUploadsOutput{}
	for _, k := range f.keys {
		out.Uploads = append(out.Uploads, types.MultipartUpload{Key: aws.String(k), UploadId: aws.String("id-" + k), Initiated: aws.Time(time.Unix(0, 0))})
	}
	return out, nil
}

func (f *ignoringPrefix) AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, _ ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error) {
	f.aborted = append(f.aborted, aws.ToString(in.Key))
	return &s3.AbortMultipartUploadOutput{}, nil
}

func TestCleanupFiltersWhatAStoreIgnoringThePrefixLists(t *testing.T) {
	f := &ignoringPrefix{keys: []string{"a/mine", "ab/sibling", "b/other", "a"}}
	st, err := New(context.Background(), Options{Config: config.S3Backend{Bucket: testBucket, Region: "us-east-1", KeyPrefix: "a/"}, API: f})
	if err != nil {
		t.Fatal(err)
	}
	res, err := st.Cleanup(t.Context(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if res.Aborted != 1 || !slices.Equal(f.aborted, []string{"a/mine"}) {
		t.Errorf("aborted %q (%+v), want only a/mine", f.aborted, res)
	}
}
