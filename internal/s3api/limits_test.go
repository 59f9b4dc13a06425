package s3api

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"
	"testing"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

// TestMaxObjectSizeLimitsMultipartObjects: a part alone over
// max_object_size is refused before its body is read, a part can never
// deliver more bytes than it declared, and a Complete whose parts add up
// to more than the limit is EntityTooLarge with the upload left open.
func TestMaxObjectSizeLimitsMultipartObjects(t *testing.T) {
	const limit = 16
	f := newFixture(t, config.Upload{MaxObjectSize: limit})
	_, out := f.do(t, "POST", "/b/alice/mp.bin?uploads", "alice", nil, 0, nil)
	var created struct{ UploadId string }
	if err := xml.Unmarshal([]byte(out), &created); err != nil || created.UploadId == "" {
		t.Fatalf("create: %s", out)
	}
	part := func(n int) string {
		return fmt.Sprintf("/b/alice/mp.bin?partNumber=%d&uploadId=%s", n, created.UploadId)
	}

	body := &recordingBody{r: bytes.NewReader(make([]byte, limit+1))}
	resp, out := f.do(t, "PUT", part(1), "alice", body, limit+1, map[string]string{"Expect": "100-continue"})
	if resp.StatusCode != 400 || errorCode(t, out) != "EntityTooLarge" {
		t.Fatalf("part over the limit: %d %s", resp.StatusCode, out)
	}
	if body.read.Load() {
		t.Fatal("the body of a part over the limit was read")
	}

	// aws-chunked: 10 bytes declared, 32 sent in chunks. Refused at the
	// chunk that goes past the declared length; no part is stored.
	wire := "a\r\n0123456789\r\n16\r\n" + strings.Repeat("x", 22) + "\r\n0\r\n\r\n"
	resp, out = f.do(t, "PUT", part(1), "alice", strings.NewReader(wire), int64(len(wire)), map[string]string{
		"X-Amz-Content-Sha256":         "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
		"X-Amz-Decoded-Content-Length": "10",
		"Content-Encoding":             "aws-chunked",
	})
	if resp.StatusCode != 400 || errorCode(t, out) != "InvalidRequest" {
		t.Fatalf("chunks past the declared length: %d %s", resp.StatusCode, out)
	}

	var etags []string
	for n := 1; n <= 2; n++ {
		resp, out := f.do(t, "PUT", part(n), "alice", strings.NewReader("ten bytes!"), 10, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("part %d: %d %s", n, resp.StatusCode, out)
		}
		etags = append(etags, resp.Header.Get("ETag"))
	}
	doc := func(n int) string {
		var b strings.Builder
		b.WriteString("<CompleteMultipartUpload>")
		for i := range n {
			fmt.Fprintf(&b, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", i+1, etags[i])
		}
		b.WriteString("</CompleteMultipartUpload>")
		return b.String()
	}
	complete := "/b/alice/mp.bin?uploadId=" + created.UploadId
	resp, out = f.do(t, "POST", complete, "alice", strings.NewReader(doc(2)), int64(len(doc(2))), nil)
	if resp.StatusCode != 400 || errorCode(t, out) != "EntityTooLarge" {
		t.Fatalf("20 bytes in two parts: %d %s", resp.StatusCode, out)
	}
	if files := listFiles(t, f.root); len(files) == 0 || !allStaging(files) {
		t.Fatalf("after the refused Complete: %v", files)
	}
	resp, out = f.do(t, "POST", complete, "alice", strings.NewReader(doc(1)), int64(len(doc(1))), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("the upload is not open after the refusal: %d %s", resp.StatusCode, out)
	}
	assertContent(t, f.root+"/alice/mp.bin", "ten bytes!")
}

func allStaging(files []string) bool {
	for _, f := range files {
		if !strings.HasPrefix(f, ".mizuchi/uploads/") {
			return false
		}
	}
	return true
}
