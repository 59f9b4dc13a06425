package fs_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
	"github.com/mizuchi-uploadr/mizuchi/internal/backend/fs"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

// snapshot lists every entry under dir but temp files with a digest of its content, so that two snapshots differ
// exactly when something was created, removed or rewritten.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if strings.HasPrefix(d.Name(), fs.TempPrefix) {
			return nil // the request's own temp file; wantNoTemps checks those
		}
		if d.IsDir() {
			out[rel] = "dir"
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		out[rel] = hex.EncodeToString(sum[:8])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func wantSameTree(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for p, v := range before {
		if w, ok := after[p]; !ok {
			t.Errorf("%s removed %s", what, p)
		} else if w != v {
			t.Errorf("%s changed %s", what, p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s created %s", what, p)
		}
	}
}

// gateReader yields first, signals reached, waits for release and then
// yields rest: a slow client whose upload is overtaken by another.
type gateReader struct {
	first, rest []byte
	reached     chan struct{}
	release     chan struct{}
	passed      bool
}

func (g *gateReader) Read(p []byte) (int, error) {
	if len(g.first) > 0 {
		n := copy(p, g.first)
		g.first = g.first[n:]
		return n, nil
	}
	if !g.passed {
		g.passed = true
		close(g.reached)
		<-g.release
	}
	if len(g.rest) == 0 {
		return 0, errors.New("read past the end")
	}
	n := copy(p, g.rest)
	g.rest = g.rest[n:]
	return n, nil
}

// TestRefusedPutChangesNothing is the attack of issue "a refused
// PutObject deletes other objects' metadata": a slow PUT of K is overtaken
// by a PUT of K/1.pdf; the slow one must end in ExistingObjectIsDirectory
// without touching anything, in particular not the record of K/1.pdf.
func TestRefusedPutChangesNothing(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	ins := inspector{dir}
	body := []byte("the slow upload of K")
	g := &gateReader{first: body[:5], rest: body[5:], reached: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := s.PutObject(context.Background(), &backend.PutObjectInput{Key: "K2", Body: g, Size: int64(len(body))})
		done <- err
	}()
	<-g.reached
	// While K2 streams, K2/1.pdf is stored: K2 becomes a directory.
	_, err := s.PutObject(context.Background(), &backend.PutObjectInput{
		Key: "K2/1.pdf", Body: bytes.NewReader([]byte("%PDF")), Size: 4,
		Metadata: backend.Metadata{ContentType: "application/pdf"},
	})
	must(t, err)
	before := snapshot(t, dir)
	close(g.release)
	if err := <-done; !errors.Is(err, fs.ErrExistingObjectIsDirectory) {
		t.Fatalf("slow PUT = %v, want ExistingObjectIsDirectory", err)
	}
	after := snapshot(t, dir)
	wantSameTree(t, "the refused PUT", before, after)
	if md, found, err := ins.Metadata(context.Background(), "K2/1.pdf"); err != nil || !found || md.ContentType != "application/pdf" {
		t.Fatalf("record of K2/1.pdf after the refused PUT: %+v found=%v err=%v", md, found, err)
	}
	wantNoTemps(t, dir)
}

// TestRefusedPutsLeaveNoDirectories checks every refusal and failure of
// PutObject against a snapshot: conflicts, bad digests and bodies that
// end early leave the tree exactly as it was, also with deep keys.
func TestRefusedPutsLeaveNoDirectories(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	_, err := put(s, "file", []byte("x"))
	must(t, err)
	_, err = put(s, "d/e/f", []byte("y"))
	must(t, err)
	deep := strings.Repeat("n/", fs.MaxKeyDepth-1) + "leaf"
	cases := []struct {
		name string
		in   backend.PutObjectInput
	}{
		{"parent is a file", backend.PutObjectInput{Key: "file/x/y", Body: strings.NewReader("z"), Size: 1}},
		{"key is a directory", backend.PutObjectInput{Key: "d/e", Body: strings.NewReader("z"), Size: 1}},
		{"bad MD5 in new directories", backend.PutObjectInput{Key: "new/a/b/c", Body: strings.NewReader("z"), Size: 1,
			Integrity: backend.Integrity{ContentMD5: "1B2M2Y8AsgTpgAmY7PhCfg=="}}},
		{"short body in a deep key", backend.PutObjectInput{Key: deep, Body: strings.NewReader("z"), Size: 5}},
		{"bad MD5 under an existing directory", backend.PutObjectInput{Key: "d/e/g/h", Body: strings.NewReader("z"), Size: 1,
			Integrity: backend.Integrity{ContentMD5: "1B2M2Y8AsgTpgAmY7PhCfg=="}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, dir)
			in := tc.in
			if _, err := s.PutObject(context.Background(), &in); err == nil {
				t.Fatal("accepted")
			}
			wantSameTree(t, tc.name, before, snapshot(t, dir))
		})
	}
}

// TestKeyDepthIsCapped refuses keys deeper than MaxKeyDepth before
// anything is read or written, and stores one of exactly that depth.
func TestKeyDepthIsCapped(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	before := snapshot(t, dir)
	tooDeep := strings.Repeat("n/", fs.MaxKeyDepth) + "leaf"
	_, err := s.PutObject(context.Background(), &backend.PutObjectInput{Key: tooDeep, Body: strings.NewReader("x"), Size: 1})
	if e := s3err.As(err); err == nil || e.Status != 400 || e.Code != "InvalidArgument" {
		t.Fatalf("PutObject of depth %d = %v, want 400 InvalidArgument", fs.MaxKeyDepth+1, err)
	}
	if _, err := s.CreateMultipartUpload(context.Background(), &backend.CreateMultipartUploadInput{Key: tooDeep}); err == nil || s3err.As(err).Status != 400 {
		t.Fatalf("CreateMultipartUpload of depth %d = %v, want 400", fs.MaxKeyDepth+1, err)
	}
	wantSameTree(t, "the refused deep key", before, snapshot(t, dir))
	_, err = put(s, strings.Repeat("n/", fs.MaxKeyDepth-1)+"leaf", []byte("x"))
	must(t, err)
}

// TestFailedUploadKeepsDirectoriesOthersUse: a slow upload that made
// a/b/c fails after another upload stored a/b/y; only a/b/c (empty, its
// own) goes, a and a/b stay with a/b/y and its record.
func TestFailedUploadKeepsDirectoriesOthersUse(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	g := &gateReader{first: []byte("ab"), rest: []byte("cd"), reached: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := s.PutObject(context.Background(), &backend.PutObjectInput{Key: "a/b/c/x", Body: g, Size: 4,
			Integrity: backend.Integrity{ContentMD5: "1B2M2Y8AsgTpgAmY7PhCfg=="}})
		done <- err
	}()
	<-g.reached
	_, err := put(s, "a/b/y", []byte("other"))
	must(t, err)
	before := snapshot(t, dir)
	close(g.release)
	if err := <-done; err == nil {
		t.Fatal("upload with a wrong Content-MD5 accepted")
	}
	delete(before, filepath.Join("a", "b", "c"))
	wantSameTree(t, "the failed upload", before, snapshot(t, dir))
	wantNoTemps(t, dir)
}

// TestCleanupReachesTheDeepestDirectory leaves an old temp file at the
// bottom of a key of the greatest depth; the stale cleanup (which walks
// relative to each parent) finds and removes it and nothing else.
func TestCleanupReachesTheDeepestDirectory(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	key := strings.Repeat("n/", fs.MaxKeyDepth-1) + "leaf"
	_, err := put(s, key, []byte("x"))
	must(t, err)
	before := snapshot(t, dir)
	tmp := filepath.Join(dir, filepath.FromSlash(strings.Repeat("n/", fs.MaxKeyDepth-1)), fs.TempPrefix+"CRASHED")
	must(t, os.WriteFile(tmp, []byte("partial"), 0o644))
	old := time.Now().Add(-2 * time.Hour)
	must(t, os.Chtimes(tmp, old, old))
	n, err := s.CleanupStale(context.Background(), time.Hour)
	must(t, err)
	if n != 1 {
		t.Fatalf("CleanupStale removed %d entries, want 1", n)
	}
	wantNoTemps(t, dir)
	wantSameTree(t, "the cleanup", before, snapshot(t, dir))
}
