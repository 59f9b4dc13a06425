package s3api

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

// A client that stops sending in the middle of a CompleteMultipartUpload
// document is cut off after the body idle timeout with RequestTimeout,
// with a declared length and with chunked transfer encoding alike.
func TestStalledCompleteDocumentTimesOut(t *testing.T) {
	f := newFixture(t, config.Upload{}, func(o *Options) { o.BodyIdleTimeout = 200 * time.Millisecond })
	resp, out := f.do(t, "POST", "/b/alice/mp?uploads", "alice", nil, 0, nil)
	var created struct {
		UploadID string `xml:"UploadId"`
	}
	if err := xml.Unmarshal([]byte(out), &created); err != nil || resp.StatusCode != 200 {
		t.Fatalf("create: %d %s", resp.StatusCode, out)
	}
	partial := "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"
	tests := []struct{ name, framing, body string }{
		{"content length", "Content-Length: 1000\r\n", partial},
		{"chunked", "Transfer-Encoding: chunked\r\n", fmt.Sprintf("%x\r\n%s\r\n", len(partial), partial)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", strings.TrimPrefix(f.srv.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprintf(c, "POST /b/alice/mp?uploadId=%s HTTP/1.1\r\nHost: x\r\nX-Test-Subject: alice\r\n%s\r\n%s", created.UploadID, tt.framing, tt.body)
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no answer to a stalled Complete document: %v", err)
			}
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 400 || errorCode(t, string(b)) != "RequestTimeout" {
				t.Fatalf("got %d %s", resp.StatusCode, b)
			}
		})
	}
	// A chunked document that arrives in full still completes the upload
	// as far as the document goes (here: a part that does not exist).
	c, err := net.Dial("tcp", strings.TrimPrefix(f.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	doc := `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"x"</ETag></Part></CompleteMultipartUpload>`
	fmt.Fprintf(c, "POST /b/alice/mp?uploadId=%s HTTP/1.1\r\nHost: x\r\nX-Test-Subject: alice\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", created.UploadID, len(doc), doc)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err = http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || errorCode(t, string(b)) != "InvalidPart" {
		t.Fatalf("complete chunked document: %d %s, want InvalidPart", resp.StatusCode, b)
	}
}
