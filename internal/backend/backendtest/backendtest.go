package backendtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
	"github.com/mizuchi-uploadr/mizuchi/internal/checksum"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

// Inspector reads the store behind a backend directly.
type Inspector interface {
	// Object returns the stored bytes of key; found is false when no
	// object exists under key.
	Object(ctx context.Context, key string) (data []byte, found bool, err error)
	// OpenUploads counts the multipart uploads currently open (under
	// Options.Prefix when the store is shared).
	OpenUploads(ctx context.Context) (int, error)
}

// MetadataInspector is implemented by Inspectors that can read an
// object's stored metadata. The metadata tests fail without it.
type MetadataInspector interface {
	Metadata(ctx context.Context, key string) (md backend.Metadata, found bool, err error)
}

// Options configures Run.
type Options struct {
	// MinPartSize is the backend's minimum size of every part but the
	// last; 0 means S3's 5 MiB.
	MinPartSize int64
	// Inspect is required.
	Inspect Inspector
	// Prefix is put before every key the suite uses; empty means a new
	// random "backendtest-<random>/" per Run.
	Prefix string
}

// Run runs the conformance suite. newBackend is called once per subtest.
func Run(t *testing.T, newBackend func(t *testing.T) backend.Backend, opts Options) {
	if opts.Inspect == nil {
		t.Fatal("backendtest: Options.Inspect is required")
	}
	if opts.MinPartSize == 0 {
		opts.MinPartSize = backend.DefaultMinPartSize
	}
	prefix := opts.Prefix
	if prefix == "" {
		prefix = randomPrefix()
	}
	tests := []struct {
		name string
		run  func(e *env)
	}{
		{"PutSmallObjectIsStoredByteForByte", testPutSmall},
		{"PutEmptyObjectHasEmptyMD5ETag", testPutEmpty},
		{"PutMultiMiBStreamedObject", testPutStreamed},
		{"PutReplacesExistingObject", testPutReplaces},
		{"PutKeepsMetadata", testPutMetadata},
		{"PutContentMD5", testPutContentMD5},
		{"PutChecksums", testPutChecksums},
		{"PutSHA256", testPutSHA256},
		{"PutShortBodyIsIncompleteAndStoresNothing", testPutShortBody},
		{"PutCancelledMidBodyStoresNothing", testPutCancelled},
		{"FailedPutKeepsPreviousObject", testFailedPutKeepsPrevious},
		{"MultipartThreePartsHasS3ETag", testMultipartHappy},
		{"MultipartKeepsMetadataFromCreate", testMultipartMetadata},
		{"MultipartCompositeChecksum", testMultipartChecksum},
		{"MultipartPartReuploadReplaces", testPartReupload},
		{"MultipartPartNumberOutOfRange", testPartNumberRange},
		{"MultipartPartChecksumMismatch", testPartBadChecksum},
		{"MultipartPartTooSmallIsEntityTooSmall", testPartTooSmall},
		{"MultipartWrongOrderIsInvalidPartOrder", testWrongOrder},
		{"MultipartForgedETagIsInvalidPart", testForgedETag},
		{"MultipartMissingPartIsInvalidPart", testMissingPart},
		{"MultipartFailedCompleteKeepsUploadOpen", testFailedCompleteKeepsOpen},
		{"MultipartOverMaxSizeIsEntityTooLargeAndStaysOpen", testCompleteOverMaxSize},
		{"MultipartMaxSizeStillChecksParts", testMaxSizeChecksParts},
		{"MultipartUnknownUploadIsNoSuchUpload", testUnknownUpload},
		{"MultipartUploadOfAnotherKeyIsNoSuchUpload", testOtherKey},
		{"MultipartCompleteThenAbortIsNoSuchUpload", testCompleteThenAbort},
		{"MultipartAbortLeavesNothing", testAbortLeavesNothing},
		{"MultipartListPartsPages", testListPartsPagination},
		{"MultipartConcurrentUploadPart", testConcurrentParts},
		{"CleanupAbortsOnlyOldIncompleteUploads", testCleanup},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(newEnv(t, newBackend, opts, prefix))
		})
	}
}

func testPutSmall(e *env) {
	key := e.key("small.txt")
	data := []byte("hello, mizuchi\n")
	out := e.mustPut(key, data)
	if want := `"` + md5Hex(data) + `"`; out.ETag != want {
		e.t.Fatalf("ETag = %s, want quoted hex MD5 %s", out.ETag, want)
	}
	e.wantObject(key, data)
}

func testPutEmpty(e *env) {
	key := e.key("empty")
	out, err := e.b.PutObject(e.ctx(), &backend.PutObjectInput{Key: key, Body: opaque{bytes.NewReader(nil)}, Size: 0})
	if err != nil {
		e.t.Fatal(err)
	}
	if out.ETag != `"d41d8cd98f00b204e9800998ecf8427e"` {
		e.t.Fatalf("ETag = %s, want the MD5 of nothing", out.ETag)
	}
	e.wantObject(key, []byte{})
}

func testPutStreamed(e *env) {
	key := e.key("dir/sub/streamed.bin")
	const size = 8<<20 + 12345
	out, err := e.b.PutObject(e.ctx(), &backend.PutObjectInput{Key: key, Body: newPattern(1, size), Size: size})
	if err != nil {
		e.t.Fatal(err)
	}
	want := pattern(1, size)
	if out.ETag != `"`+md5Hex(want)+`"` {
		e.t.Fatalf("ETag = %s, want %s", out.ETag, md5Hex(want))
	}
	e.wantObject(key, want)
}

func testPutReplaces(e *env) {
	key := e.key("replaced")
	e.mustPut(key, []byte("first version"))
	e.mustPut(key, []byte("second"))
	e.wantObject(key, []byte("second"))
}

func testMetadata() backend.Metadata {
	return backend.Metadata{
		ContentType:        "text/plain; charset=utf-8",
		ContentDisposition: `attachment; filename="report.txt"`,
		ContentEncoding:    "gzip",
		ContentLanguage:    "de-CH",
		CacheControl:       "max-age=60",
		User:               map[string]string{"owner": "team-a", "purpose": "conformance"},
	}
}

func (e *env) wantMetadata(key string, want backend.Metadata) {
	e.t.Helper()
	mi, ok := e.ins.(MetadataInspector)
	if !ok {
		e.t.Fatalf("the Inspector %T does not implement MetadataInspector", e.ins)
	}
	got, found, err := mi.Metadata(context.Background(), key)
	if err != nil || !found {
		e.t.Fatalf("metadata of %q: found=%v err=%v", key, found, err)
	}
	check := func(name, got, want string) {
		if got != want {
			e.t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	check("Content-Type", got.ContentType, want.ContentType)
	check("Content-Disposition", got.ContentDisposition, want.ContentDisposition)
	check("Content-Encoding", got.ContentEncoding, want.ContentEncoding)
	check("Content-Language", got.ContentLanguage, want.ContentLanguage)
	check("Cache-Control", got.CacheControl, want.CacheControl)
	if !reflect.DeepEqual(got.User, want.User) {
		e.t.Errorf("user metadata = %v, want %v", got.User, want.User)
	}
}

func testPutMetadata(e *env) {
	key := e.key("with-metadata.txt")
	md := testMetadata()
	data := []byte("metadata test")
	if _, err := e.b.PutObject(e.ctx(), &backend.PutObjectInput{Key: key, Body: bytes.NewReader(data), Size: int64(len(data)), Metadata: md}); err != nil {
		e.t.Fatal(err)
	}
	e.wantObject(key, data)
	e.wantMetadata(key, md)
}

func testPutContentMD5(e *env) {
	data := []byte("content-md5 checked")
	tests := []struct {
		name string
		md5  string
		want error
	}{
		{name: "matching", md5: md5B64(data)},
		{name: "mismatch", md5: md5B64([]byte("other")), want: s3err.ErrBadDigest},
	}
	for _, tc := range tests {
		e.t.Run(tc.name, func(t *testing.T) {
			key := e.key("md5-" + tc.name)
			_, err := e.put(key, data, backend.Integrity{ContentMD5: tc.md5})
			if tc.want != nil {
				wantErr(t, err, tc.want)
				e.wantAbsentT(t, key)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			e.wantObjectT(t, key, data)
		})
	}
}

func testPutChecksums(e *env) {
	data := []byte("additional checksums are verified")
	for _, alg := range checksum.Algorithms {
		for _, good := range []bool{true, false} {
			name := alg + "/matching"
			value := sumB64(alg, data)
			if !good {
				name = alg + "/mismatch"
				value = sumB64(alg, []byte("something else"))
			}
			e.t.Run(name, func(t *testing.T) {
				key := e.key("checksum-" + slug(name))
				out, err := e.put(key, data, backend.Integrity{Checksum: backend.Checksum{Algorithm: alg, Value: value}})
				if !good {
					wantErr(t, err, s3err.ErrBadDigest)
					e.wantAbsentT(t, key)
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if out.Checksum.Value != value {
					t.Errorf("returned checksum %+v, want %s %s", out.Checksum, alg, value)
				}
				e.wantObjectT(t, key, data)
			})
		}
	}
}

func testPutSHA256(e *env) {
	data := []byte("signed payload")
	good := fmt.Sprintf("%x", sum(checksum.SHA256, data))
	bad := fmt.Sprintf("%x", sum(checksum.SHA256, []byte("tampered")))
	tests := []struct {
		name, sha string
		want      error
	}{
		{name: "matching", sha: good},
		{name: "mismatch", sha: bad, want: s3err.ErrXAmzContentSHA256Mismatch},
	}
	for _, tc := range tests {
		e.t.Run(tc.name, func(t *testing.T) {
			key := e.key("sha256-" + tc.name)
			_, err := e.put(key, data, backend.Integrity{SHA256: tc.sha})
			if tc.want != nil {
				wantErr(t, err, tc.want)
				e.wantAbsentT(t, key)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			e.wantObjectT(t, key, data)
		})
	}
}

func testPutShortBody(e *env) {
	key := e.key("short")
	_, err := e.b.PutObject(e.ctx(), &backend.PutObjectInput{Key: key, Body: newPattern(2, 1000), Size: 5000})
	wantErr(e.t, err, s3err.ErrIncompleteBody)
	e.wantAbsent(key)
}

// cancellingReader yields half of its bytes, then cancels the upload's
// context and blocks until the cancellation arrives, as a request body
// does when the client goes away.
type cancellingReader struct {
	ctx    context.Context
	cancel context.CancelFunc
	r      io.Reader
	left   int64
}

func (c *cancellingReader) Read(b []byte) (int, error) {
	if c.left <= 0 {
		c.cancel()
		<-c.ctx.Done()
		return 0, c.ctx.Err()
	}
	if int64(len(b)) > c.left {
		b = b[:c.left]
	}
	n, err := c.r.Read(b)
	c.left -= int64(n)
	return n, err
}

func testPutCancelled(e *env) {
	key := e.key("cancelled")
	const size = 2 << 20
	ctx, cancel := context.WithCancel(e.ctx())
	defer cancel()
	body := &cancellingReader{ctx: ctx, cancel: cancel, r: newPattern(3, size), left: size / 2}
	_, err := e.b.PutObject(ctx, &backend.PutObjectInput{Key: key, Body: body, Size: size})
	if err == nil {
		e.t.Fatal("PutObject succeeded although its context was cancelled mid-body")
	}
	e.wantAbsent(key)
}

func testFailedPutKeepsPrevious(e *env) {
	key := e.key("kept")
	e.mustPut(key, []byte("good version"))
	_, err := e.put(key, []byte("bad version"), backend.Integrity{ContentMD5: md5B64([]byte("x"))})
	wantErr(e.t, err, s3err.ErrBadDigest)
	e.wantObject(key, []byte("good version"))
}

func (e *env) wantAbsentT(t *testing.T, key string) {
	t.Helper()
	saved := e.t
	e.t = t
	defer func() { e.t = saved }()
	e.wantAbsent(key)
}

func (e *env) wantObjectT(t *testing.T, key string, data []byte) {
	t.Helper()
	saved := e.t
	e.t = t
	defer func() { e.t = saved }()
	e.wantObject(key, data)
}

// threeParts returns two parts of the minimum size and a short last one.
func (e *env) threeParts() [][]byte {
	return [][]byte{pattern(10, e.minPart), pattern(11, e.minPart), pattern(12, 1234)}
}

func testMultipartHappy(e *env) {
	key := e.key("multi/three-parts.bin")
	id := e.create(key, nil)
	parts := e.threeParts()
	var done []backend.CompletedPart
	for i, p := range parts {
		done = append(done, e.mustPart(key, id, int32(i+1), p))
	}
	e.wantAbsent(key)
	out, err := e.complete(key, id, done...)
	if err != nil {
		e.t.Fatal(err)
	}
	if want := multipartETag(parts...); out.ETag != want {
		e.t.Fatalf("ETag = %s, want %s", out.ETag, want)
	}
	e.wantObject(key, bytes.Join(parts, nil))
}

func testMultipartMetadata(e *env) {
	key := e.key("multi/metadata.txt")
	md := testMetadata()
	id := e.create(key, &backend.CreateMultipartUploadInput{Metadata: md})
	p := e.mustPart(key, id, 1, []byte("only part"))
	if _, err := e.complete(key, id, p); err != nil {
		e.t.Fatal(err)
	}
	e.wantObject(key, []byte("only part"))
	e.wantMetadata(key, md)
}

func testMultipartChecksum(e *env) {
	for _, alg := range []string{checksum.CRC32, checksum.SHA256} {
		e.t.Run(alg, func(t *testing.T) {
			key := e.key("multi/checksum-" + alg)
			id := e.create(key, &backend.CreateMultipartUploadInput{ChecksumAlgorithm: alg, ChecksumType: "COMPOSITE"})
			parts := e.threeParts()
			var done []backend.CompletedPart
			for i, p := range parts {
				cs := backend.Checksum{Algorithm: alg, Value: sumB64(alg, p)}
				out, err := e.part(key, id, int32(i+1), p, backend.Integrity{Checksum: cs})
				if err != nil {
					t.Fatalf("UploadPart %d: %v", i+1, err)
				}
				if out.Checksum.Value != cs.Value {
					t.Fatalf("part %d checksum = %+v, want %s", i+1, out.Checksum, cs.Value)
				}
				done = append(done, backend.CompletedPart{PartNumber: int32(i + 1), ETag: out.ETag, Checksum: cs})
			}
			out, err := e.complete(key, id, done...)
			if err != nil {
				t.Fatal(err)
			}
			if want := compositeChecksum(alg, parts...); out.Checksum.Value != want {
				t.Fatalf("checksum = %+v, want %s", out.Checksum, want)
			}
			e.wantObjectT(t, key, bytes.Join(parts, nil))
		})
	}
}

func testPartReupload(e *env) {
	key := e.key("multi/reupload")
	id := e.create(key, nil)
	e.mustPart(key, id, 1, []byte("first attempt of part one"))
	p := e.mustPart(key, id, 1, []byte("second"))
	lp, err := e.b.ListParts(e.ctx(), &backend.ListPartsInput{Key: key, UploadID: id})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(lp.Parts) != 1 || lp.Parts[0].ETag != p.ETag || lp.Parts[0].Size != 6 {
		e.t.Fatalf("parts after re-upload = %+v, want only the second upload", lp.Parts)
	}
	if _, err := e.complete(key, id, p); err != nil {
		e.t.Fatal(err)
	}
	e.wantObject(key, []byte("second"))
}

func testPartNumberRange(e *env) {
	key := e.key("multi/part-range")
	id := e.create(key, nil)
	for _, n := range []int32{0, 10001, -1} {
		e.t.Run(fmt.Sprint("part", n), func(t *testing.T) {
			_, err := e.part(key, id, n, []byte("x"), backend.Integrity{})
			wantErr(t, err, s3err.ErrInvalidArgument)
		})
	}
	e.mustPart(key, id, 10000, []byte("the last allowed part number"))
	if err := e.abort(key, id); err != nil {
		e.t.Fatal(err)
	}
}

func testPartBadChecksum(e *env) {
	key := e.key("multi/part-bad-digest")
	id := e.create(key, nil)
	_, err := e.part(key, id, 1, []byte("part"), backend.Integrity{ContentMD5: md5B64([]byte("other"))})
	wantErr(e.t, err, s3err.ErrBadDigest)
	lp, err := e.b.ListParts(e.ctx(), &backend.ListPartsInput{Key: key, UploadID: id})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(lp.Parts) != 0 {
		e.t.Fatalf("a part with a bad digest was stored: %+v", lp.Parts)
	}
	if err := e.abort(key, id); err != nil {
		e.t.Fatal(err)
	}
}

func testPartTooSmall(e *env) {
	key := e.key("multi/too-small")
	id := e.create(key, nil)
	p1 := e.mustPart(key, id, 1, pattern(20, e.minPart-1))
	p2 := e.mustPart(key, id, 2, []byte("last"))
	_, err := e.complete(key, id, p1, p2)
	wantErr(e.t, err, s3err.ErrEntityTooSmall)
	e.wantAbsent(key)
	if err := e.abort(key, id); err != nil {
		e.t.Fatal(err)
	}
}

func testWrongOrder(e *env) {
	key := e.key("multi/order")
	id := e.create(key, nil)
	parts := e.threeParts()
	p1 := e.mustPart(key, id, 1, parts[0])
	p2 := e.mustPart(key, id, 2, parts[2])
	_, err := e.complete(key, id, p2, p1)
	wantErr(e.t, err, s3err.ErrInvalidPartOrder)
	e.wantAbsent(key)
	if err := e.abort(key, id); err != nil {
		e.t.Fatal(err)
	}
}

func testForgedETag(e *env) {
	key := e.key("multi/forged")
	id := e.create(key, nil)
	e.mustPart(key, id, 1, []byte("real part"))
	tests := []struct{ name, etag string }{
		{"quoted", `"` + md5Hex([]byte("forged part")) + `"`},
		{"unquoted", md5Hex([]byte("forged part"))},
	}
	for _, tc := range tests {
		e.t.Run(tc.name, func(t *testing.T) {
			_, err := e.complete(key, id, backend.CompletedPart{PartNumber: 1, ETag: tc.etag})
			wantErr(t, err, s3err.ErrInvalidPart)
		})
	}
	e.wantAbsent(key)
	if err := e.abort(key, id); err != nil {
		e.t.Fatal(err)
	}
}

func testMissingPart(e *env) {
	key := e.key("multi/missing")
	id := e.create(key, nil)
	p1 := e.mustPart(key, id, 1, pattern(21, e.minPart))
	_, err := e.complete(key, id, p1, backend.CompletedPart{PartNumber: 2, ETag: `"` + md5Hex([]byte("never sent")) + `"`})
	wantErr(e.t, err, s3err.ErrInvalidPart)
	if err := e.abort(key, id); err != nil {
		e.t.Fatal(err)
	}
}

func testFailedCompleteKeepsOpen(e *env) {
	key := e.key("multi/retry")
	id := e.create(key, nil)
	p := e.mustPart(key, id, 1, []byte("retried"))
	_, err := e.complete(key, id, backend.CompletedPart{PartNumber: 1, ETag: `"` + md5Hex([]byte("wrong")) + `"`})
	wantErr(e.t, err, s3err.ErrInvalidPart)
	// ETags are accepted with or without quotes.
	unquoted := p
	unquoted.ETag = md5Hex([]byte("retried"))
	if _, err := e.complete(key, id, unquoted); err != nil {
		e.t.Fatalf("complete after a failed complete: %v", err)
	}
	e.wantObject(key, []byte("retried"))
}

func testUnknownUpload(e *env) {
	key := e.key("multi/unknown")
	aborted := e.create(key, nil)
	if err := e.abort(key, aborted); err != nil {
		e.t.Fatal(err)
	}
	ids := []struct{ name, id string }{
		{"made-up", "no-such-upload-id"},
		{"aborted", aborted},
	}
	for _, tc := range ids {
		ops := []struct {
			name string
			call func() error
		}{
			{"UploadPart", func() error { _, err := e.part(key, tc.id, 1, []byte("x"), backend.Integrity{}); return err }},
			{"Complete", func() error {
				_, err := e.complete(key, tc.id, backend.CompletedPart{PartNumber: 1, ETag: md5Hex([]byte("x"))})
				return err
			}},
			{"Abort", func() error { return e.abort(key, tc.id) }},
			{"ListParts", func() error {
				_, err := e.b.ListParts(e.ctx(), &backend.ListPartsInput{Key: key, UploadID: tc.id})
				return err
			}},
		}
		for _, op := range ops {
			e.t.Run(tc.name+"/"+op.name, func(t *testing.T) {
				wantErr(t, op.call(), s3err.ErrNoSuchUpload)
			})
		}
	}
	e.wantAbsent(key)
}

func testOtherKey(e *env) {
	key := e.key("multi/owner")
	other := e.key("multi/intruder")
	id := e.create(key, nil)
	_, err := e.part(other, id, 1, []byte("x"), backend.Integrity{})
	wantErr(e.t, err, s3err.ErrNoSuchUpload)
	if err := e.abort(key, id); err != nil {
		e.t.Fatal(err)
	}
	e.wantAbsent(other)
}

func testCompleteThenAbort(e *env) {
	key := e.key("multi/complete-then-abort")
	id := e.create(key, nil)
	p := e.mustPart(key, id, 1, []byte("done"))
	if _, err := e.complete(key, id, p); err != nil {
		e.t.Fatal(err)
	}
	wantErr(e.t, e.abort(key, id), s3err.ErrNoSuchUpload)
	e.wantObject(key, []byte("done"))
}

func testAbortLeavesNothing(e *env) {
	key := e.key("multi/aborted")
	id := e.create(key, nil)
	e.mustPart(key, id, 1, pattern(30, e.minPart))
	e.mustPart(key, id, 2, []byte("tail"))
	if n, err := e.ins.OpenUploads(context.Background()); err != nil || n != e.baseline+1 {
		e.t.Fatalf("open uploads = %d (%v), want %d", n, err, e.baseline+1)
	}
	if err := e.abort(key, id); err != nil {
		e.t.Fatal(err)
	}
	if n, err := e.ins.OpenUploads(context.Background()); err != nil || n != e.baseline {
		e.t.Fatalf("open uploads after abort = %d (%v), want %d", n, err, e.baseline)
	}
	_, err := e.b.ListParts(e.ctx(), &backend.ListPartsInput{Key: key, UploadID: id})
	wantErr(e.t, err, s3err.ErrNoSuchUpload)
	e.wantAbsent(key)
}

func testListPartsPagination(e *env) {
	key := e.key("multi/list")
	id := e.create(key, nil)
	// Uploaded out of order: the listing is sorted by part number.
	for _, n := range []int32{5, 1, 3, 2, 4} {
		e.mustPart(key, id, n, []byte(fmt.Sprint("part ", n)))
	}
	pages := []struct {
		marker    int32
		want      []int32
		truncated bool
		next      int32
	}{
		{0, []int32{1, 2}, true, 2},
		{2, []int32{3, 4}, true, 4},
		{4, []int32{5}, false, 5},
	}
	for _, pg := range pages {
		out, err := e.b.ListParts(e.ctx(), &backend.ListPartsInput{Key: key, UploadID: id, PartNumberMarker: pg.marker, MaxParts: 2})
		if err != nil {
			e.t.Fatal(err)
		}
		var got []int32
		for _, p := range out.Parts {
			got = append(got, p.PartNumber)
			if want := `"` + md5Hex([]byte(fmt.Sprint("part ", p.PartNumber))) + `"`; p.ETag != want {
				e.t.Errorf("part %d ETag = %s, want %s", p.PartNumber, p.ETag, want)
			}
		}
		if !reflect.DeepEqual(got, pg.want) || out.IsTruncated != pg.truncated || (pg.truncated && out.NextPartNumberMarker != pg.next) {
			e.t.Fatalf("page after %d: parts %v truncated=%v next=%d, want %v %v %d",
				pg.marker, got, out.IsTruncated, out.NextPartNumberMarker, pg.want, pg.truncated, pg.next)
		}
	}
	all, err := e.b.ListParts(e.ctx(), &backend.ListPartsInput{Key: key, UploadID: id})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(all.Parts) != 5 || all.IsTruncated {
		e.t.Fatalf("default page: %d parts truncated=%v, want 5 parts", len(all.Parts), all.IsTruncated)
	}
	if err := e.abort(key, id); err != nil {
		e.t.Fatal(err)
	}
}

func testConcurrentParts(e *env) {
	key := e.key("multi/concurrent")
	id := e.create(key, nil)
	const n = 6
	parts := make([][]byte, n)
	for i := range parts {
		size := e.minPart
		if i == n-1 {
			size = 777
		}
		parts[i] = pattern(byte(40+i), size)
	}
	done := make([]backend.CompletedPart, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range parts {
		wg.Go(func() {
			out, err := e.part(key, id, int32(i+1), parts[i], backend.Integrity{})
			if err == nil {
				done[i] = backend.CompletedPart{PartNumber: int32(i + 1), ETag: out.ETag}
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		e.t.Fatal(err)
	}
	out, err := e.complete(key, id, done...)
	if err != nil {
		e.t.Fatal(err)
	}
	if want := multipartETag(parts...); out.ETag != want {
		e.t.Fatalf("ETag = %s, want %s", out.ETag, want)
	}
	e.wantObject(key, bytes.Join(parts, nil))
}

// testCompleteOverMaxSize: MaxSize limits the assembled object. A
// Complete whose listed parts add up to more is EntityTooLarge, stores
// nothing and leaves the upload open: its parts are still listed, it can
// be completed with fewer parts (a total of exactly MaxSize is allowed),
// or aborted.
func testCompleteOverMaxSize(e *env) {
	key := e.key("multi/over-max-size")
	id := e.create(key, nil)
	parts := e.threeParts()
	var done []backend.CompletedPart
	var total int64
	for i, p := range parts {
		done = append(done, e.mustPart(key, id, int32(i+1), p))
		total += int64(len(p))
	}
	complete := func(max int64, parts ...backend.CompletedPart) error {
		_, err := e.b.CompleteMultipartUpload(e.ctx(), &backend.CompleteMultipartUploadInput{
			Key: key, UploadID: id, Parts: parts, MaxSize: max,
		})
		return err
	}
	wantErr(e.t, complete(total-1, done...), s3err.ErrEntityTooLarge)
	wantErr(e.t, complete(e.minPart-1, done[0]), s3err.ErrEntityTooLarge)
	e.wantAbsent(key)
	lp, err := e.b.ListParts(e.ctx(), &backend.ListPartsInput{Key: key, UploadID: id})
	if err != nil {
		e.t.Fatalf("ListParts after a refused Complete: %v", err)
	}
	if len(lp.Parts) != 3 {
		e.t.Fatalf("%d parts listed after a refused Complete, want 3", len(lp.Parts))
	}
	// Only the parts named count: the first part alone fits exactly.
	if err := complete(e.minPart, done[0]); err != nil {
		e.t.Fatalf("Complete of one part of exactly MaxSize: %v", err)
	}
	e.wantObject(key, parts[0])

	other := e.key("multi/over-max-size-aborted")
	id = e.create(other, nil)
	p := e.mustPart(other, id, 1, []byte("twelve bytes"))
	_, err = e.b.CompleteMultipartUpload(e.ctx(), &backend.CompleteMultipartUploadInput{
		Key: other, UploadID: id, Parts: []backend.CompletedPart{p}, MaxSize: 11,
	})
	wantErr(e.t, err, s3err.ErrEntityTooLarge)
	if err := e.abort(other, id); err != nil {
		e.t.Fatalf("abort after a refused Complete: %v", err)
	}
	e.wantAbsent(other)
}

// testMaxSizeChecksParts: with MaxSize set, a forged ETag or a missing
// part is still InvalidPart, whatever the sizes.
func testMaxSizeChecksParts(e *env) {
	key := e.key("multi/max-size-parts")
	id := e.create(key, nil)
	p1 := e.mustPart(key, id, 1, pattern(50, e.minPart))
	p2 := e.mustPart(key, id, 2, []byte("tail"))
	forged := p2
	forged.ETag = `"` + md5Hex([]byte("forged")) + `"`
	missing := backend.CompletedPart{PartNumber: 3, ETag: p2.ETag}
	for name, parts := range map[string][]backend.CompletedPart{
		"forged ETag":          {p1, forged},
		"missing part":         {p1, missing},
		"only missing":         {missing},
		"ETag of another part": {{PartNumber: 1, ETag: p2.ETag}, p2},
	} {
		e.t.Run(name, func(t *testing.T) {
			_, err := e.b.CompleteMultipartUpload(e.ctx(), &backend.CompleteMultipartUploadInput{
				Key: key, UploadID: id, Parts: parts, MaxSize: 1 << 40,
			})
			wantErr(t, err, s3err.ErrInvalidPart)
		})
	}
	e.wantAbsent(key)
	if _, err := e.b.CompleteMultipartUpload(e.ctx(), &backend.CompleteMultipartUploadInput{
		Key: key, UploadID: id, Parts: []backend.CompletedPart{p1, p2}, MaxSize: e.minPart + 4,
	}); err != nil {
		e.t.Fatalf("Complete within MaxSize: %v", err)
	}
	e.wantObject(key, append(pattern(50, e.minPart), "tail"...))
}

// testCleanup: a backend.Cleaner leaves an incomplete upload younger than
// the age alone and aborts it once it is older (age 0: anything started
// before now).
func testCleanup(e *env) {
	c, ok := e.b.(backend.Cleaner)
	if !ok {
		e.t.Skip("not a backend.Cleaner")
	}
	key := e.key("orphan")
	id := e.create(key, nil)
	e.mustPart(key, id, 1, []byte("an abandoned part"))
	res, err := c.Cleanup(e.ctx(), time.Hour)
	if err != nil {
		e.t.Fatalf("Cleanup: %v", err)
	}
	if res.Aborted != 0 || res.Kept < 1 {
		e.t.Fatalf("Cleanup(1h) = %+v, want nothing aborted and the upload kept", res)
	}
	if _, err := e.b.ListParts(e.ctx(), &backend.ListPartsInput{Key: key, UploadID: id}); err != nil {
		e.t.Fatalf("a young upload was touched: ListParts: %v", err)
	}
	res, err = c.Cleanup(e.ctx(), 0)
	if err != nil {
		e.t.Fatalf("Cleanup: %v", err)
	}
	if res.Aborted < 1 {
		e.t.Fatalf("Cleanup(0) = %+v, want the upload aborted", res)
	}
	_, err = e.b.ListParts(e.ctx(), &backend.ListPartsInput{Key: key, UploadID: id})
	wantErr(e.t, err, s3err.ErrNoSuchUpload)
	e.wantAbsent(key)
}
