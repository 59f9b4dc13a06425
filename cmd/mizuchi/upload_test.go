package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// putServer answers PutObject with status/code, storing the body on 200.
type putServer struct {
	mu      sync.Mutex
	status  int
	code    string
	stored  map[string][]byte
	headers map[string]http.Header
}

func (s *putServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status != 200 {
		w.WriteHeader(s.status)
		fmt.Fprintf(w, "<Error><Code>%s</Code><Message>because</Message></Error>", s.code)
		return
	}
	s.stored[r.URL.Path] = body
	s.headers[r.URL.Path] = r.Header.Clone()
	w.Header().Set("ETag", `"etag-of-`+r.URL.Path+`"`)
}

func newPutServer(t *testing.T, status int, code string) (*putServer, string) {
	s := &putServer{status: status, code: code, stored: map[string][]byte{}, headers: map[string]http.Header{}}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestUploadCommandExitCodes(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "report.json")
	if err := os.WriteFile(file, []byte(`{"ok":true}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		status     int
		code       string
		args       func(url string) []string
		env        map[string]string
		cancelled  bool
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "uploaded", status: 200, args: func(u string) []string { return []string{file, u + "/uploads/in/"} },
			wantCode: 0, wantStdout: "uploads/in/report.json\t11\t\"etag-of-/uploads/in/report.json\"\n"},
		{name: "flags after the file", status: 200, args: func(u string) []string { return []string{file, "--quiet", u + "/uploads/k.json", "--retries", "0"} },
			wantCode: 0, wantStdout: "uploads/k.json\t11\t"},
		{name: "no such bucket", status: 404, code: "NoSuchBucket", args: func(u string) []string { return []string{file, u + "/nope/"} },
			wantCode: 1, wantStderr: "NoSuchBucket: because (HTTP 404)"},
		{name: "unauthorized", status: 401, code: "AccessDenied", args: func(u string) []string { return []string{file, u + "/uploads/"} },
			wantCode: 3, wantStderr: "AccessDenied"},
		{name: "signature refused", status: 403, code: "SignatureDoesNotMatch", args: func(u string) []string { return []string{file, u + "/uploads/"} },
			env: map[string]string{"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK"}, wantCode: 3, wantStderr: "SignatureDoesNotMatch"},
		{name: "unavailable", status: 503, code: "SlowDown", args: func(u string) []string { return []string{"--retries", "1", file, u + "/uploads/"} },
			wantCode: 4, wantStderr: "SlowDown"},
		{name: "unreachable", status: 200, args: func(string) []string { return []string{"--retries", "0", file, "http://127.0.0.1:1/uploads/"} },
			wantCode: 4, wantStderr: "PutObject: "},
		{name: "interrupted", status: 200, cancelled: true, args: func(u string) []string { return []string{file, u + "/uploads/"} },
			wantCode: 130, wantStderr: "interrupted"},
		{name: "missing file", status: 200, args: func(u string) []string { return []string{filepath.Join(dir, "nope"), u + "/uploads/"} },
			wantCode: 2, wantStderr: "no such file"},
		{name: "directory", status: 200, args: func(u string) []string { return []string{dir, u + "/uploads/"} },
			wantCode: 2, wantStderr: "not a regular file"},
		{name: "no URL", status: 200, args: func(string) []string { return []string{file} }, wantCode: 2, wantStderr: "at least one FILE"},
		{name: "URL without prefix", status: 200, args: func(u string) []string { return []string{file, u} }, wantCode: 2, wantStderr: "no bucket prefix"},
		{name: "small part size", status: 200, args: func(u string) []string { return []string{"--part-size", "1MiB", file, u + "/uploads/"} }, wantCode: 2, wantStderr: "--part-size"},
		{name: "bad size", status: 200, args: func(u string) []string { return []string{"--part-size", "lots", file, u + "/uploads/"} }, wantCode: 2, wantStderr: "invalid size"},
		{name: "token and keys", status: 200, args: func(u string) []string { return []string{"--token", "t", "--access-key", "a", file, u + "/uploads/"} }, wantCode: 2, wantStderr: "mutually exclusive"},
		{name: "half a key pair", status: 200, args: func(u string) []string { return []string{"--access-key", "a", file, u + "/uploads/"} }, wantCode: 2, wantStderr: "both an access key and a secret key"},
		{name: "bad metadata", status: 200, args: func(u string) []string { return []string{"--metadata", "novalue", file, u + "/uploads/"} }, wantCode: 2, wantStderr: "key=value"},
		{name: "help", status: 200, args: func(string) []string { return []string{"-h"} }, wantCode: 0, wantStderr: "Exit status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, url := newPutServer(t, tt.status, tt.code)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancelled {
				cancel()
			}
			var stdout, stderr bytes.Buffer
			code := uploadMain(ctx, tt.args(url), &stdout, &stderr, env(tt.env))
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstderr: %s", code, tt.wantCode, stderr.String())
			}
			if !strings.HasPrefix(stdout.String(), tt.wantStdout) || (tt.wantStdout == "" && stdout.Len() > 0) {
				t.Errorf("stdout %q, want %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}

func TestUploadCommandHeadersAndCredentials(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.txt"), filepath.Join(dir, "b.unknownext")
	for _, f := range []string{a, b} {
		if err := os.WriteFile(f, []byte("data of "+filepath.Base(f)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantAuth string // prefix of Authorization; "" for none
		region   string // in the SigV4 credential scope
		wantType map[string]string
	}{
		{name: "types by extension, anonymous", wantType: map[string]string{"a.txt": "text/plain; charset=utf-8", "b.unknownext": "application/octet-stream"}},
		{name: "token flag", args: []string{"--token", "tok"}, wantAuth: "Bearer tok"},
		{name: "token from environment", env: map[string]string{"MIZUCHI_TOKEN": "envtok", "AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK"}, wantAuth: "Bearer envtok"},
		{name: "sigv4 from environment", env: map[string]string{"AWS_ACCESS_KEY_ID": "AKENV", "AWS_SECRET_ACCESS_KEY": "SK"}, wantAuth: "AWS4-HMAC-SHA256 Credential=AKENV/", region: "us-east-1"},
		{name: "sigv4 flags with region", args: []string{"--access-key", "AKFLAG", "--secret-key", "SK", "--region", "eu-west-1"}, env: map[string]string{"MIZUCHI_TOKEN": "ignored"},
			wantAuth: "AWS4-HMAC-SHA256 Credential=AKFLAG/", region: "eu-west-1"},
		{name: "anonymous despite environment", args: []string{"--anonymous"}, env: map[string]string{"MIZUCHI_TOKEN": "x"}},
		{name: "content type flag", args: []string{"--content-type", "image/png"}, wantType: map[string]string{"a.txt": "image/png", "b.unknownext": "image/png"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, url := newPutServer(t, 200, "")
			var stdout, stderr bytes.Buffer
			args := append(append([]string{"--metadata", "Origin=cam-7", "--metadata", "batch=42"}, tt.args...), a, b, url+"/uploads/in")
			if code := uploadMain(context.Background(), args, &stdout, &stderr, env(tt.env)); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			if lines := strings.Count(stdout.String(), "\n"); lines != 2 {
				t.Fatalf("stdout %q: want one line per file", stdout.String())
			}
			for _, name := range []string{"a.txt", "b.unknownext"} {
				h := s.headers["/uploads/in/"+name]
				if got := string(s.stored["/uploads/in/"+name]); got != "data of "+name {
					t.Fatalf("%s stored as %q", name, got)
				}
				if auth := h.Get("Authorization"); !strings.HasPrefix(auth, tt.wantAuth) || (tt.wantAuth == "" && auth != "") {
					t.Errorf("%s: Authorization %q, want prefix %q", name, auth, tt.wantAuth)
				}
				if tt.region != "" && !strings.Contains(h.Get("Authorization"), "/"+tt.region+"/s3/aws4_request") {
					t.Errorf("%s: wrong region in %q", name, h.Get("Authorization"))
				}
				if want, ok := tt.wantType[name]; ok && h.Get("Content-Type") != want {
					t.Errorf("%s: Content-Type %q, want %q", name, h.Get("Content-Type"), want)
				}
				if h.Get("X-Amz-Meta-Origin") != "cam-7" || h.Get("X-Amz-Meta-Batch") != "42" {
					t.Errorf("%s: metadata headers %v", name, h)
				}
			}
		})
	}
}

func TestUploadCommandProgressLine(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "p.bin")
	if err := os.WriteFile(file, bytes.Repeat([]byte("x"), 3000), 0o600); err != nil {
		t.Fatal(err)
	}
	_, url := newPutServer(t, 200, "")
	var stdout, stderr bytes.Buffer
	if code := uploadMain(context.Background(), []string{"--progress", file, url + "/uploads/"}, &stdout, &stderr, env(nil)); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "\ruploads/p.bin [") || !strings.HasSuffix(stderr.String(), "\r\x1b[K") {
		t.Fatalf("stderr %q: want a progress line, erased at the end", stderr.String())
	}
	stderr.Reset()
	if code := uploadMain(context.Background(), []string{file, url + "/uploads/"}, &stdout, &stderr, env(nil)); code != 0 || stderr.Len() != 0 {
		t.Fatalf("not a terminal: exit %d, stderr %q (want quiet)", code, stderr.String())
	}
}
