package fs

import (
	"context"
	"encoding/json"
	"errors"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
)

// TestMetadataIsDurableBeforeObjectIsVisible checks the commit order: at
// the moment between the two renames the metadata of the new upload is in
// place and the object is not, and a crash there leaves the previous
// object visible with a record that says it describes another upload.
func TestMetadataIsDurableBeforeObjectIsVisible(t *testing.T) {
	dir := t.TempDir()
	s, err := New(Options{Root: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	put := func(key, body string) (*backend.PutObjectOutput, error) {
		return s.PutObject(ctx, &backend.PutObjectInput{Key: key, Body: strings.NewReader(body), Size: int64(len(body))})
	}
	readRecord := func(key string) objectRecord {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(dir, MetaDir, key))
		if err != nil {
			t.Fatalf("metadata of %s: %v", key, err)
		}
		var rec objectRecord
		if err := json.Unmarshal(data, &rec); err != nil {
			t.Fatal(err)
		}
		return rec
	}

	var seen bool
	s.afterMeta = func(key string) error {
		seen = true
		if rec := readRecord(key); rec.Size != 3 {
			t.Errorf("between the renames the record has size %d, want the new upload's 3", rec.Size)
		}
		if _, err := os.Stat(filepath.Join(dir, key)); !errors.Is(err, iofs.ErrNotExist) {
			t.Errorf("object visible before its metadata was committed: %v", err)
		}
		return nil
	}
	if _, err := put("k", "new"); err != nil {
		t.Fatal(err)
	}
	if !seen {
		t.Fatal("commit did not pass the metadata step")
	}

	// A crash after the metadata rename: the old object stays, and its
	// record is recognisably not its own (size and ETag differ).
	crash := errors.New("simulated crash")
	s.afterMeta = func(string) error { return crash }
	if _, err := put("k", "replacement"); !errors.Is(err, crash) {
		t.Fatalf("PutObject = %v, want the simulated crash", err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "k"))
	if string(got) != "new" {
		t.Fatalf("object = %q, want the previous content", got)
	}
	if rec := readRecord("k"); rec.Size == int64(len(got)) {
		t.Fatalf("record %+v cannot be told apart from the visible object", rec)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), TempPrefix) {
			t.Fatalf("temp file left beside the object: %s", e.Name())
		}
	}
}
