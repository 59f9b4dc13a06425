package fs_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
	"github.com/mizuchi-uploadr/mizuchi/internal/backend/backendtest"
	"github.com/mizuchi-uploadr/mizuchi/internal/backend/fs"
	"github.com/mizuchi-uploadr/mizuchi/internal/checksum"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

const testMinPart = 64 << 10

// inspector reads the documented on-disk layout directly.
type inspector struct{ dir string }

func (i inspector) Object(_ context.Context, key string) ([]byte, bool, error) {
	data, err := os.ReadFile(filepath.Join(i.dir, key))
	if errors.Is(err, iofs.ErrNotExist) || errors.Is(err, os.ErrInvalid) {
		return nil, false, nil
	}
	return data, err == nil, err
}

func (i inspector) OpenUploads(context.Context) (int, error) {
	entries, err := os.ReadDir(filepath.Join(i.dir, fs.UploadsDir))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			n++
		}
	}
	return n, nil
}

type record struct {
	Key      string           `json:"key"`
	Size     int64            `json:"size"`
	ETag     string           `json:"etag"`
	Metadata backend.Metadata `json:"metadata"`
}

func (i inspector) record(key string) (*record, bool, error) {
	data, err := os.ReadFile(filepath.Join(i.dir, fs.MetaDir, key))
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var r record
	return &r, true, json.Unmarshal(data, &r)
}

func (i inspector) Metadata(_ context.Context, key string) (backend.Metadata, bool, error) {
	r, found, err := i.record(key)
	if !found || err != nil {
		return backend.Metadata{}, found, err
	}
	return r.Metadata, true, nil
}

func newStore(t testing.TB, dir string) *fs.Store {
	t.Helper()
	s, err := fs.New(fs.Options{Root: dir, MinPartSize: testMinPart})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	dir := t.TempDir()
	backendtest.Run(t, func(t *testing.T) backend.Backend { return newStore(t, dir) },
		backendtest.Options{MinPartSize: testMinPart, Inspect: inspector{dir}})
	// Nothing but the finished objects and the reserved tree is left.
	wantNoTemps(t, dir)
}

// wantNoTemps fails if a temp file or a claimed staging directory is
// left anywhere under dir.
func wantNoTemps(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if strings.HasPrefix(name, fs.TempPrefix) || strings.HasPrefix(name, ".completing-") || strings.HasPrefix(name, ".trash-") {
			t.Errorf("left behind: %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func put(s *fs.Store, key string, data []byte) (*backend.PutObjectOutput, error) {
	return s.PutObject(context.Background(), &backend.PutObjectInput{Key: key, Body: bytes.NewReader(data), Size: int64(len(data))})
}

func TestInvalidKeysAreRefused(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	tests := []struct {
		name, key string
		want      error
	}{
		{"empty", "", s3err.ErrInvalidArgument},
		{"dot-dot segment", "a/../b", s3err.ErrInvalidArgument},
		{"leading dot-dot", "../outside", s3err.ErrInvalidArgument},
		{"only dot-dot", "..", s3err.ErrInvalidArgument},
		{"absolute path", "/etc/passwd", s3err.ErrInvalidArgument},
		{"NUL", "a\x00b", s3err.ErrInvalidArgument},
		{"double slash", "a//b", s3err.ErrInvalidArgument},
		{"trailing slash", "dir/", s3err.ErrInvalidArgument},
		{"dot segment", "./a", s3err.ErrInvalidArgument},
		{"reserved dir", ".mizuchi/meta/x", s3err.ErrInvalidArgument},
		{"reserved dir itself", ".mizuchi", s3err.ErrInvalidArgument},
		{"upload staging", ".mizuchi/uploads/x/upload.json", s3err.ErrInvalidArgument},
		{"temp file name", "a/.mizuchi-tmp-x", s3err.ErrInvalidArgument},
		{"invalid UTF-8", "a\xffb", s3err.ErrInvalidArgument},
		{"key too long", strings.Repeat("a/", 600), s3err.ErrKeyTooLong},
		{"segment too long", strings.Repeat("a", 256), s3err.ErrKeyTooLong},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := put(s, tc.key, []byte("x"))
			if !errors.Is(err, tc.want) {
				t.Fatalf("PutObject(%q) = %v, want %v", tc.key, err, tc.want)
			}
			_, err = s.CreateMultipartUpload(context.Background(), &backend.CreateMultipartUploadInput{Key: tc.key})
			if !errors.Is(err, tc.want) {
				t.Fatalf("CreateMultipartUpload(%q) = %v, want %v", tc.key, err, tc.want)
			}
		})
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != fs.ReservedDir {
		t.Fatalf("root holds %v, want only the reserved directory", entries)
	}
	meta, _ := os.ReadDir(filepath.Join(dir, fs.MetaDir))
	if len(meta) != 0 {
		t.Fatalf("metadata written for refused keys: %v", meta)
	}
}

func TestSymlinksCannotEscapeRoot(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	s := newStore(t, root)
	must(t, os.Symlink(outside, filepath.Join(root, "abs-link")))
	must(t, os.Symlink("../outside", filepath.Join(root, "rel-link")))
	must(t, os.MkdirAll(filepath.Join(root, "deep"), 0o755))
	must(t, os.Symlink("../../outside", filepath.Join(root, "deep", "up")))
	// A symlinked file target: replacing the object must not write through it.
	must(t, os.WriteFile(filepath.Join(outside, "victim"), []byte("precious"), 0o644))
	must(t, os.Symlink(filepath.Join(outside, "victim"), filepath.Join(root, "file-link")))

	for _, key := range []string{"abs-link/x", "rel-link/x", "deep/up/x", "abs-link/sub/dir/x", "file-link/x"} {
		t.Run(key, func(t *testing.T) {
			if _, err := put(s, key, []byte("evil")); err == nil {
				t.Fatalf("PutObject(%q) succeeded through a symlink", key)
			}
			id, err := s.CreateMultipartUpload(context.Background(), &backend.CreateMultipartUploadInput{Key: key})
			if err == nil {
				// Refusing at Create is allowed but not required; Complete must refuse.
				out, perr := s.UploadPart(context.Background(), &backend.UploadPartInput{Key: key, UploadID: id.UploadID, PartNumber: 1, Body: strings.NewReader("evil"), Size: 4})
				must(t, perr)
				_, err = s.CompleteMultipartUpload(context.Background(), &backend.CompleteMultipartUploadInput{Key: key, UploadID: id.UploadID, Parts: []backend.CompletedPart{{PartNumber: 1, ETag: out.ETag}}})
				if err == nil {
					t.Fatal("CompleteMultipartUpload succeeded through a symlink")
				}
				must(t, s.AbortMultipartUpload(context.Background(), &backend.AbortMultipartUploadInput{Key: key, UploadID: id.UploadID}))
			}
		})
	}
	t.Run("symlink appears between create and complete", func(t *testing.T) {
		ctx := context.Background()
		up, err := s.CreateMultipartUpload(ctx, &backend.CreateMultipartUploadInput{Key: "swapped/x"})
		must(t, err)
		p, err := s.UploadPart(ctx, &backend.UploadPartInput{Key: "swapped/x", UploadID: up.UploadID, PartNumber: 1, Body: strings.NewReader("evil"), Size: 4})
		must(t, err)
		must(t, os.Symlink(outside, filepath.Join(root, "swapped")))
		_, err = s.CompleteMultipartUpload(ctx, &backend.CompleteMultipartUploadInput{Key: "swapped/x", UploadID: up.UploadID, Parts: []backend.CompletedPart{{PartNumber: 1, ETag: p.ETag}}})
		if !errors.Is(err, s3err.ErrAccessDenied) {
			t.Fatalf("Complete through a new symlink = %v, want AccessDenied", err)
		}
		must(t, s.AbortMultipartUpload(ctx, &backend.AbortMultipartUploadInput{Key: "swapped/x", UploadID: up.UploadID}))
	})
	// Replacing the symlink itself replaces the link, never its target.
	if _, err := put(s, "file-link", []byte("new")); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(outside, "victim"))
	if string(got) != "precious" {
		t.Fatalf("file outside the root was changed to %q", got)
	}
	entries, _ := os.ReadDir(outside)
	if len(entries) != 1 {
		t.Fatalf("files written outside the root: %v", entries)
	}
	wantNoTemps(t, root)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestKeyFileDirectoryConflicts(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	ins := inspector{dir}
	_, err := put(s, "a", []byte("a file"))
	must(t, err)
	_, err = put(s, "d/e", []byte("in a directory"))
	must(t, err)

	tests := []struct {
		name, key string
		want      error
	}{
		{"parent is a file", "a/b", fs.ErrObjectParentIsFile},
		{"grandparent is a file", "a/b/c", fs.ErrObjectParentIsFile},
		{"object is a directory", "d", fs.ErrExistingObjectIsDirectory},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := put(s, tc.key, []byte("conflict"))
			if !errors.Is(err, tc.want) {
				t.Fatalf("PutObject = %v, want %v", err, tc.want)
			}
			if s3err.As(err).Status != 409 {
				t.Fatalf("status %d, want 409", s3err.As(err).Status)
			}
			_, err = s.CreateMultipartUpload(context.Background(), &backend.CreateMultipartUploadInput{Key: tc.key})
			if !errors.Is(err, tc.want) {
				t.Fatalf("CreateMultipartUpload = %v, want %v", err, tc.want)
			}
		})
	}

	// The conflict appears between Create and Complete: Complete fails
	// and the upload stays open.
	id, err := s.CreateMultipartUpload(context.Background(), &backend.CreateMultipartUploadInput{Key: "later/x"})
	must(t, err)
	p, err := s.UploadPart(context.Background(), &backend.UploadPartInput{Key: "later/x", UploadID: id.UploadID, PartNumber: 1, Body: strings.NewReader("part"), Size: 4})
	must(t, err)
	_, err = put(s, "later", []byte("now a file"))
	must(t, err)
	_, err = s.CompleteMultipartUpload(context.Background(), &backend.CompleteMultipartUploadInput{Key: "later/x", UploadID: id.UploadID, Parts: []backend.CompletedPart{{PartNumber: 1, ETag: p.ETag}}})
	if !errors.Is(err, fs.ErrObjectParentIsFile) {
		t.Fatalf("Complete = %v, want ObjectParentIsFile", err)
	}
	if n, _ := ins.OpenUploads(context.Background()); n != 1 {
		t.Fatalf("open uploads = %d, want the upload still open", n)
	}
	must(t, s.AbortMultipartUpload(context.Background(), &backend.AbortMultipartUploadInput{Key: "later/x", UploadID: id.UploadID}))

	for key, want := range map[string]string{"a": "a file", "d/e": "in a directory", "later": "now a file"} {
		got, found, _ := ins.Object(context.Background(), key)
		if !found || string(got) != want {
			t.Errorf("%s = %q (found %v), want %q", key, got, found, want)
		}
	}
	wantNoTemps(t, dir)
}

// blockingReader yields its first bytes, signals, then blocks until
// released and fails.
type blockingReader struct {
	first   []byte
	reached chan struct{}
	release chan struct{}
}

func (b *blockingReader) Read(p []byte) (int, error) {
	if len(b.first) > 0 {
		n := copy(p, b.first)
		b.first = b.first[n:]
		return n, nil
	}
	close(b.reached)
	<-b.release
	return 0, io.ErrUnexpectedEOF
}

func TestTempFileIsNeverVisible(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	body := &blockingReader{first: bytes.Repeat([]byte("x"), 1000), reached: make(chan struct{}), release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := s.PutObject(ctx, &backend.PutObjectInput{Key: "incoming/big.bin", Body: body, Size: 1 << 20})
		errc <- err
	}()
	<-body.reached
	entries, err := os.ReadDir(filepath.Join(dir, "incoming"))
	must(t, err)
	if len(entries) != 1 || !strings.HasPrefix(entries[0].Name(), fs.TempPrefix) {
		t.Fatalf("while streaming the directory holds %v, want one hidden temp file", entries)
	}
	if info, _ := entries[0].Info(); info.Size() != 1000 {
		t.Fatalf("temp file has %d bytes, want the 1000 streamed so far", info.Size())
	}
	if _, err := os.Stat(filepath.Join(dir, "incoming", "big.bin")); !errors.Is(err, iofs.ErrNotExist) {
		t.Fatalf("object visible before the body ended: %v", err)
	}
	cancel()
	close(body.release)
	if err := <-errc; err == nil {
		t.Fatal("PutObject succeeded after cancellation")
	}
	if _, err := os.Stat(filepath.Join(dir, "incoming")); !errors.Is(err, iofs.ErrNotExist) {
		t.Fatalf("the directory created for the failed upload is left: %v", err)
	}
	wantNoTemps(t, dir)
}

func TestFileBodyIsVerified(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	src := filepath.Join(t.TempDir(), "src")
	must(t, os.WriteFile(src, data, 0o644))
	open := func() *os.File {
		f, err := os.Open(src)
		must(t, err)
		t.Cleanup(func() { _ = f.Close() })
		return f
	}
	sum := md5.Sum(data)
	crc := checksum.New(checksum.CRC32C)
	crc.Write(data)
	out, err := s.PutObject(context.Background(), &backend.PutObjectInput{
		Key: "from-file", Body: open(), Size: int64(len(data)),
		Integrity: backend.Integrity{Checksum: backend.Checksum{Algorithm: checksum.CRC32C, Value: checksum.Encode(crc.Sum(nil))}},
	})
	must(t, err)
	if out.ETag != `"`+hex.EncodeToString(sum[:])+`"` {
		t.Fatalf("ETag %s", out.ETag)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "from-file"))
	if !bytes.Equal(got, data) {
		t.Fatal("stored bytes differ")
	}
	_, err = s.PutObject(context.Background(), &backend.PutObjectInput{Key: "from-file-bad", Body: open(), Size: int64(len(data)),
		Integrity: backend.Integrity{Checksum: backend.Checksum{Algorithm: checksum.CRC32C, Value: "AAAAAA=="}}})
	if !errors.Is(err, s3err.ErrBadDigest) {
		t.Fatalf("bad checksum from a file body: %v", err)
	}
	_, err = s.PutObject(context.Background(), &backend.PutObjectInput{Key: "from-file-short", Body: open(), Size: int64(len(data)) + 1})
	if !errors.Is(err, s3err.ErrIncompleteBody) {
		t.Fatalf("short file body: %v", err)
	}
	for _, k := range []string{"from-file-bad", "from-file-short"} {
		if _, err := os.Stat(filepath.Join(dir, k)); !errors.Is(err, iofs.ErrNotExist) {
			t.Errorf("%s stored: %v", k, err)
		}
	}
	wantNoTemps(t, dir)
}

func TestMetadataIsInSidecarTreeAndDescribesObject(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	ins := inspector{dir}
	md := backend.Metadata{ContentType: "image/png", User: map[string]string{"a": "b"}}
	out, err := s.PutObject(context.Background(), &backend.PutObjectInput{Key: "img/p.png", Body: strings.NewReader("png"), Size: 3, Metadata: md})
	must(t, err)
	entries, _ := os.ReadDir(filepath.Join(dir, "img"))
	if len(entries) != 1 || entries[0].Name() != "p.png" {
		t.Fatalf("object directory holds %v, want only the object", entries)
	}
	rec, found, err := ins.record("img/p.png")
	if err != nil || !found {
		t.Fatalf("metadata record: found=%v err=%v", found, err)
	}
	if rec.Key != "img/p.png" || rec.Size != 3 || rec.ETag != out.ETag || rec.Metadata.ContentType != "image/png" {
		t.Fatalf("record %+v does not describe the object (ETag %s)", rec, out.ETag)
	}
}

func TestCrashLeftoversAreInvisibleAndRecovered(t *testing.T) {
	dir := t.TempDir()
	// What a crash can leave: a temp file beside objects, a staging
	// directory claimed by an interrupted Complete, metadata of an object
	// whose rename never happened, and stale metadata of objects removed
	// by hand that now sits where a directory is needed.
	must(t, os.MkdirAll(filepath.Join(dir, "x"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "x", fs.TempPrefix+"CRASHED"), []byte("partial"), 0o644))
	must(t, os.MkdirAll(filepath.Join(dir, fs.UploadsDir, ".completing-AAAAAAAAAAAAAAAAAAAAAAAAAA-BBBB"), 0o755))
	must(t, os.MkdirAll(filepath.Join(dir, fs.MetaDir), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, fs.MetaDir, "stale"), []byte(`{"key":"stale"}`), 0o644))
	must(t, os.MkdirAll(filepath.Join(dir, fs.MetaDir, "was-a-dir", "child"), 0o755))

	s := newStore(t, dir)
	ins := inspector{dir}
	if n, _ := ins.OpenUploads(context.Background()); n != 0 {
		t.Fatalf("a claimed staging directory counts as an open upload (%d)", n)
	}
	// New objects where the stale metadata is in the way.
	_, err := put(s, "stale/child", []byte("new child"))
	must(t, err)
	_, err = put(s, "was-a-dir", []byte("now a file"))
	must(t, err)
	for key, want := range map[string]string{"stale/child": "new child", "was-a-dir": "now a file"} {
		rec, found, err := ins.record(key)
		if err != nil || !found || rec.Size != int64(len(want)) {
			t.Errorf("metadata of %s: %+v found=%v err=%v", key, rec, found, err)
		}
	}

	// Cleanup removes the leftovers once they are old enough.
	old := time.Now().Add(-2 * time.Hour)
	for _, p := range []string{
		filepath.Join(dir, "x", fs.TempPrefix+"CRASHED"),
		filepath.Join(dir, fs.UploadsDir, ".completing-AAAAAAAAAAAAAAAAAAAAAAAAAA-BBBB"),
	} {
		must(t, os.Chtimes(p, old, old))
	}
	n, err := s.CleanupStale(context.Background(), time.Hour)
	must(t, err)
	if n != 2 {
		t.Fatalf("CleanupStale removed %d entries, want 2", n)
	}
	wantNoTemps(t, dir)
}

func TestCleanupStaleRemovesOnlyAbandonedUploads(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	ins := inspector{dir}
	ctx := context.Background()
	mk := func(key string) string {
		out, err := s.CreateMultipartUpload(ctx, &backend.CreateMultipartUploadInput{Key: key})
		must(t, err)
		_, err = s.UploadPart(ctx, &backend.UploadPartInput{Key: key, UploadID: out.UploadID, PartNumber: 1, Body: strings.NewReader("p"), Size: 1})
		must(t, err)
		return out.UploadID
	}
	abandoned := mk("abandoned")
	live := mk("live")
	fresh := filepath.Join(dir, fs.TempPrefix+"INFLIGHT")
	must(t, os.WriteFile(fresh, nil, 0o644))

	old := time.Now().Add(-48 * time.Hour)
	staging := filepath.Join(dir, fs.UploadsDir, abandoned)
	entries, _ := os.ReadDir(staging)
	for _, e := range entries {
		must(t, os.Chtimes(filepath.Join(staging, e.Name()), old, old))
	}
	must(t, os.Chtimes(staging, old, old))

	n, err := s.CleanupStale(ctx, 24*time.Hour)
	must(t, err)
	if n != 1 {
		t.Fatalf("removed %d, want 1", n)
	}
	_, err = s.ListParts(ctx, &backend.ListPartsInput{Key: "abandoned", UploadID: abandoned})
	if !errors.Is(err, s3err.ErrNoSuchUpload) {
		t.Fatalf("abandoned upload still listed: %v", err)
	}
	if c, _ := ins.OpenUploads(ctx); c != 1 {
		t.Fatalf("open uploads %d, want the live one", c)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Fatalf("a fresh temp file was removed: %v", err)
	}
	must(t, s.AbortMultipartUpload(ctx, &backend.AbortMultipartUploadInput{Key: "live", UploadID: live}))
}

func TestCompleteRacingAbortOrCompleteHasOneOutcome(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	ins := inspector{dir}
	// Two stores on one root stand for two processes; the rename of the
	// staging directory decides between them.
	stores := []*fs.Store{newStore(t, dir), newStore(t, dir)}
	for i := range 10 {
		key := "race/" + string(rune('a'+i))
		abort := i%2 == 0
		out, err := stores[0].CreateMultipartUpload(ctx, &backend.CreateMultipartUploadInput{Key: key})
		must(t, err)
		p, err := stores[0].UploadPart(ctx, &backend.UploadPartInput{Key: key, UploadID: out.UploadID, PartNumber: 1, Body: strings.NewReader("racy"), Size: 4})
		must(t, err)
		parts := []backend.CompletedPart{{PartNumber: 1, ETag: p.ETag}}
		var wg sync.WaitGroup
		var completeErr, otherErr error
		wg.Go(func() {
			_, completeErr = stores[0].CompleteMultipartUpload(ctx, &backend.CompleteMultipartUploadInput{Key: key, UploadID: out.UploadID, Parts: parts})
		})
		wg.Go(func() {
			if abort {
				otherErr = stores[1].AbortMultipartUpload(ctx, &backend.AbortMultipartUploadInput{Key: key, UploadID: out.UploadID})
			} else {
				_, otherErr = stores[1].CompleteMultipartUpload(ctx, &backend.CompleteMultipartUploadInput{Key: key, UploadID: out.UploadID, Parts: parts})
			}
		})
		wg.Wait()
		errs := []error{completeErr, otherErr}
		if slices.IndexFunc(errs, func(e error) bool { return e == nil }) < 0 ||
			!(completeErr == nil || errors.Is(completeErr, s3err.ErrNoSuchUpload)) ||
			!(otherErr == nil || errors.Is(otherErr, s3err.ErrNoSuchUpload)) ||
			(completeErr == nil && otherErr == nil) {
			t.Fatalf("round %d (abort=%v): complete=%v other=%v, want exactly one success and NoSuchUpload", i, abort, completeErr, otherErr)
		}
		_, found, _ := ins.Object(ctx, key)
		if completed := completeErr == nil || !abort; found != completed {
			t.Fatalf("round %d: object stored=%v, completed=%v", i, found, completed)
		}
	}
	if n, _ := ins.OpenUploads(ctx); n != 0 {
		t.Fatalf("%d uploads left open", n)
	}
	wantNoTemps(t, dir)
}

func TestCheckReportsUsableRoot(t *testing.T) {
	s, err := fs.New(fs.Options{Root: filepath.Join(t.TempDir(), "new", "root")})
	must(t, err)
	must(t, s.Check(context.Background()))
	must(t, s.Close())
	if err := s.Check(context.Background()); err == nil {
		t.Fatal("Check passed on a closed store")
	}
}

func BenchmarkPutObject(b *testing.B) {
	const size = 16 << 20
	dir := b.TempDir()
	s := newStore(b, dir)
	data := bytes.Repeat([]byte("mizuchi-benchmark"), size/17+1)[:size]
	b.SetBytes(size)
	b.ResetTimer()
	for b.Loop() {
		_, err := s.PutObject(context.Background(), &backend.PutObjectInput{Key: "bench/object", Body: struct{ io.Reader }{bytes.NewReader(data)}, Size: size})
		if err != nil {
			b.Fatal(err)
		}
	}
}
