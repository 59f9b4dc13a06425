package fs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
)

// TestCompleteOvertakenByObjectsBelowItsKey lets objects appear below the
// key of a CompleteMultipartUpload while it assembles (after its checks,
// before its commit): Complete fails with ExistingObjectIsDirectory, the
// upload stays open, and the records of the new objects are untouched.
func TestCompleteOvertakenByObjectsBelowItsKey(t *testing.T) {
	dir := t.TempDir()
	s, err := New(Options{Root: dir, MinPartSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	up, err := s.CreateMultipartUpload(ctx, &backend.CreateMultipartUploadInput{Key: "K"})
	if err != nil {
		t.Fatal(err)
	}
	part, err := s.UploadPart(ctx, &backend.UploadPartInput{Key: "K", UploadID: up.UploadID, PartNumber: 1, Body: strings.NewReader("data"), Size: 4})
	if err != nil {
		t.Fatal(err)
	}
	s.beforeCommit = func(key string) {
		s.beforeCommit = nil
		_, err := s.PutObject(ctx, &backend.PutObjectInput{Key: key + "/1.pdf", Body: strings.NewReader("%PDF"), Size: 4,
			Metadata: backend.Metadata{ContentType: "application/pdf"}})
		if err != nil {
			t.Errorf("PUT below the key: %v", err)
		}
	}
	_, err = s.CompleteMultipartUpload(ctx, &backend.CompleteMultipartUploadInput{Key: "K", UploadID: up.UploadID,
		Parts: []backend.CompletedPart{{PartNumber: 1, ETag: part.ETag}}})
	if !errors.Is(err, ErrExistingObjectIsDirectory) {
		t.Fatalf("Complete = %v, want ExistingObjectIsDirectory", err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, MetaDir, "K", "1.pdf")); err != nil || !strings.Contains(string(data), "application/pdf") {
		t.Fatalf("record of K/1.pdf: %q, %v", data, err)
	}
	if _, err := s.ListParts(ctx, &backend.ListPartsInput{Key: "K", UploadID: up.UploadID}); err != nil {
		t.Fatalf("upload not open after the failed Complete: %v", err)
	}
}

// TestObjectBecomesDirectoryAfterItsRecord races the last step: between
// the record's rename and the object's, objects appear below the key. The
// upload fails and leaves neither its record nor anything else behind, and
// the new objects keep theirs.
func TestObjectBecomesDirectoryAfterItsRecord(t *testing.T) {
	dir := t.TempDir()
	s, err := New(Options{Root: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	s.afterMeta = func(key string) error {
		s.afterMeta = nil
		_, err := s.PutObject(ctx, &backend.PutObjectInput{Key: key + "/1.pdf", Body: strings.NewReader("%PDF"), Size: 4,
			Metadata: backend.Metadata{ContentType: "application/pdf"}})
		if err != nil {
			t.Errorf("PUT below the key: %v", err)
		}
		return nil
	}
	_, err = s.PutObject(ctx, &backend.PutObjectInput{Key: "K", Body: strings.NewReader("obj"), Size: 3})
	if !errors.Is(err, ErrExistingObjectIsDirectory) {
		t.Fatalf("PutObject = %v, want ExistingObjectIsDirectory", err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, MetaDir, "K", "1.pdf")); err != nil || !strings.Contains(string(data), "application/pdf") {
		t.Fatalf("record of K/1.pdf: %q, %v", data, err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "K" && e.Name() != ReservedDir {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

// TestRemoveDirsInAnyOrder removes the directories of a chain listed out
// of order (as retries may list them), and only those.
func TestRemoveDirsInAnyOrder(t *testing.T) {
	dir := t.TempDir()
	s, err := New(Options{Root: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := os.MkdirAll(filepath.Join(dir, "keep", "a", "b", "c"), 0o755); err != nil {
		t.Fatal(err)
	}
	s.removeDirs([]string{"keep/a/b", "keep/a/b/c", "keep/a", "keep/a/b/c"})
	if _, err := os.Stat(filepath.Join(dir, "keep", "a")); !os.IsNotExist(err) {
		t.Fatalf("keep/a still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "keep")); err != nil {
		t.Fatalf("keep was not created by the upload and must stay: %v", err)
	}
}
