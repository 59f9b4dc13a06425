package sigv4

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// sharedDir is <repo root>/../shared, where the shared test data lives
// (beside the repository clone).
func sharedDir(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate test file")
	}
	// file is <repo>/internal/auth/sigv4/helpers_test.go
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	dir := filepath.Join(root, "..", "shared")
	if _, err := os.Stat(filepath.Join(dir, "testdata", "sigv4")); err != nil {
		t.Fatalf("shared test data not found beside the repository: %v", err)
	}
	return dir
}

// parseRawRequest parses the vector suite's request text: a request
// line whose target may contain spaces and raw UTF-8, headers with
// obs-fold continuation lines, and an optional body.
func parseRawRequest(text string) (*http.Request, error) {
	head, body, _ := strings.Cut(text, "\n\n")
	lines := strings.Split(head, "\n")
	first := lines[0]
	sp1 := strings.IndexByte(first, ' ')
	sp2 := strings.LastIndexByte(first, ' ')
	if sp1 < 0 || sp2 <= sp1 {
		return nil, errf("bad request line")
	}
	method, target := first[:sp1], first[sp1+1:sp2]
	h := http.Header{}
	var last string
	for _, l := range lines[1:] {
		if l == "" {
			continue
		}
		if l[0] == ' ' || l[0] == '\t' {
			if last == "" {
				return nil, errf("continuation without header")
			}
			vs := h[last]
			vs[len(vs)-1] += " " + strings.TrimSpace(l)
			continue
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil, errf("bad header line")
		}
		last = http.CanonicalHeaderKey(k)
		h.Add(last, strings.TrimLeft(v, " \t"))
	}
	p, q, _ := strings.Cut(target, "?")
	up, err := url.PathUnescape(p)
	if err != nil {
		up = p
	}
	r := &http.Request{
		Method:     method,
		URL:        &url.URL{Path: up, RawQuery: q},
		RequestURI: target,
		Header:     h,
		Host:       h.Get("Host"),
		Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Body: http.NoBody,
	}
	h.Del("Host")
	// As on the wire, only a Content-Length delimits a request body.
	if cl := h.Get("Content-Length"); cl != "" {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n < 0 {
			return nil, errf("bad content-length")
		}
		if int64(len(body)) > n {
			body = body[:n]
		}
		r.Body = io.NopCloser(strings.NewReader(body))
		r.ContentLength = n
	}
	return r, nil
}

type errf string

func (e errf) Error() string { return string(e) }

func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	var b bytes.Buffer
	_, err := io.Copy(&b, r.Body)
	return b.Bytes(), err
}

// flipHex changes the hex digit at i into another hex digit.
func flipHex(s string, i int) string {
	b := []byte(s)
	if b[i] == 'f' {
		b[i] = 'e'
	} else if b[i] == '9' {
		b[i] = 'a'
	} else {
		b[i]++
	}
	return string(b)
}
