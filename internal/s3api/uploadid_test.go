package s3api

import (
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
	"time"
)

const testUploadKey = "0123456789abcdef0123456789abcdef-test"

func TestUploadIDRoundTrip(t *testing.T) {
	u, err := NewUploadIDs([]string{testUploadKey})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	// An AWS-like backend id (long, with dots and dashes).
	backendID := "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA." + strings.Repeat("x", 64)
	id := u.Seal("uploads", "alice/a b.bin", "alice", backendID, now)
	if !regexp.MustCompile(`^[A-Za-z0-9_-]+$`).MatchString(id) {
		t.Fatalf("upload id %q is not URL-safe", id)
	}
	if strings.Contains(id, backendID[:16]) {
		t.Fatal("the backend id shows through")
	}
	tok, err := u.Open("uploads", "alice/a b.bin", id)
	if err != nil {
		t.Fatal(err)
	}
	if tok.backendID != backendID || !tok.created.Equal(now) || !tok.createdBy("alice") || tok.createdBy("bob") {
		t.Fatalf("opened %+v", tok)
	}
	// Two ids of one upload differ (random nonce).
	if u.Seal("uploads", "alice/a b.bin", "alice", backendID, now) == id {
		t.Fatal("sealing is deterministic")
	}
}

func TestUploadIDRefusals(t *testing.T) {
	u, _ := NewUploadIDs([]string{testUploadKey})
	other, _ := NewUploadIDs([]string{strings.Repeat("k", 32)})
	id := u.Seal("uploads", "alice/x", "alice", "backend-id", time.Now())
	raw, _ := base64.RawURLEncoding.DecodeString(id)
	flipped := append([]byte(nil), raw...)
	flipped[len(flipped)/2] ^= 1
	cases := map[string]struct {
		u                  *UploadIDs
		bucket, key, token string
	}{
		"another key":        {u, "uploads", "alice/y", id},
		"another bucket":     {u, "other", "alice/x", id},
		"key prefix of id":   {u, "uploads", "alice/", id},
		"bucket/key shifted": {u, "uploadsa", "lice/x", id},
		"truncated":          {u, "uploads", "alice/x", id[:len(id)-3]},
		"one bit flipped":    {u, "uploads", "alice/x", base64.RawURLEncoding.EncodeToString(flipped)},
		"re-keyed":           {other, "uploads", "alice/x", id},
		"empty":              {u, "uploads", "alice/x", ""},
		"not base64":         {u, "uploads", "alice/x", "abc$def"},
		"padded base64":      {u, "uploads", "alice/x", id + "=="},
		"huge":               {u, "uploads", "alice/x", strings.Repeat("A", 100_000)},
		"plain backend id":   {u, "uploads", "alice/x", "backend-id"},
	}
	for name, c := range cases {
		if _, err := c.u.Open(c.bucket, c.key, c.token); err == nil {
			t.Errorf("%s: opened", name)
		}
	}
}

func TestUploadIDKeyRotation(t *testing.T) {
	old, _ := NewUploadIDs([]string{testUploadKey})
	rotated, err := NewUploadIDs([]string{strings.Repeat("n", 40), testUploadKey})
	if err != nil {
		t.Fatal(err)
	}
	id := old.Seal("b", "k", "s", "u1", time.Now())
	if tok, err := rotated.Open("b", "k", id); err != nil || tok.backendID != "u1" {
		t.Fatalf("an id of the old key no longer opens: %v", err)
	}
	if _, err := old.Open("b", "k", rotated.Seal("b", "k", "s", "u2", time.Now())); err == nil {
		t.Fatal("the new key does not seal")
	}
	if _, err := NewUploadIDs([]string{"short"}); err == nil {
		t.Fatal("a short key was accepted")
	}
	e1, e2 := ephemeralUploadIDs(), ephemeralUploadIDs()
	if !e1.Ephemeral {
		t.Fatal("a generated key is not marked ephemeral")
	}
	if _, err := e2.Open("b", "k", e1.Seal("b", "k", "s", "u", time.Now())); err == nil {
		t.Fatal("two generated keys are equal")
	}
}

func FuzzUploadIDOpen(f *testing.F) {
	u, _ := NewUploadIDs([]string{testUploadKey})
	f.Add(u.Seal("b", "k", "s", "id", time.Now()))
	f.Add("")
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, id string) {
		tok, err := u.Open("b", "k", id)
		if err == nil && tok.backendID == "" {
			t.Fatal("opened to an empty backend id")
		}
	})
}

// BenchmarkUploadID: sealing at CreateMultipartUpload, opening on every
// call on the upload.
//
//	go test -run '^$' -bench UploadID ./internal/s3api/
func BenchmarkUploadID(b *testing.B) {
	u, _ := NewUploadIDs([]string{testUploadKey})
	id := u.Seal("uploads", "alice/big.bin", "alice", "3b8f0d0e-5a8c-4a8e-9f5e-0c2f4b1f7a21", time.Now())
	b.Run("seal", func(b *testing.B) {
		for b.Loop() {
			u.Seal("uploads", "alice/big.bin", "alice", "3b8f0d0e-5a8c-4a8e-9f5e-0c2f4b1f7a21", time.Now())
		}
	})
	b.Run("open", func(b *testing.B) {
		for b.Loop() {
			if _, err := u.Open("uploads", "alice/big.bin", id); err != nil {
				b.Fatal(err)
			}
		}
	})
}
