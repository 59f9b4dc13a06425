package uploader

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// fakeS3 implements PutObject and the multipart family in memory, checks
// Content-MD5 (and SigV4 when a secret is set), records every request and
// lets a test inject faults.
type fakeS3 struct {
	t  *testing.T
	mu sync.Mutex

	objects  map[string][]byte
	headers  map[string]http.Header
	uploads  map[string]*fakeUpload
	aborted  []string
	requests []fakeRequest
	nextID   int

	// sigv4 credentials the fake verifies when accessKey is set.
	accessKey, secretKey, region string
	// token required as a bearer token when set.
	token string
	// inject, when set, may answer a request itself (status, code); it sees
	// the request after the body was read.
	inject func(r *http.Request, op string, attempt int) (int, string)
	// hook, when set, runs when a part's body has arrived (e.g. to block).
	hook func(r *http.Request, part int)

	attempts map[string]int // op → count
}

type fakeUpload struct {
	key   string
	parts map[int][]byte
}

type fakeRequest struct {
	Method, Path, Query, Op string
	Header                  http.Header
	Size                    int
}

func newFakeS3(t *testing.T) (*fakeS3, *httptest.Server) {
	f := &fakeS3{t: t, objects: map[string][]byte{}, headers: map[string]http.Header{},
		uploads: map[string]*fakeUpload{}, attempts: map[string]int{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func fakeOp(r *http.Request) string {
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodPut && q.Has("partNumber"):
		return "UploadPart " + q.Get("partNumber")
	case r.Method == http.MethodPut:
		return "PutObject"
	case r.Method == http.MethodPost && q.Has("uploads"):
		return "CreateMultipartUpload"
	case r.Method == http.MethodPost && q.Has("uploadId"):
		return "CompleteMultipartUpload"
	case r.Method == http.MethodDelete && q.Has("uploadId"):
		return "AbortMultipartUpload"
	}
	return "Unknown"
}

func (f *fakeS3) fail(w http.ResponseWriter, status int, code string) {
	w.Header().Set("X-Amz-Request-Id", "fake-req")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected %s</Message><RequestId>fake-req</RequestId></Error>`, code, code)
}

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := fakeOp(r)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // client went away
	}
	if f.hook != nil && strings.HasPrefix(op, "UploadPart") {
		n, _ := strconv.Atoi(r.URL.Query().Get("partNumber"))
		f.hook(r, n)
	}
	f.mu.Lock()
	f.requests = append(f.requests, fakeRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Op: op, Header: r.Header.Clone(), Size: len(body)})
	f.attempts[op]++
	attempt := f.attempts[op]
	f.mu.Unlock()

	if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
		f.fail(w, 401, "AccessDenied")
		return
	}
	if f.accessKey != "" {
		if code := f.verifySigV4(r, body); code != "" {
			f.fail(w, 403, code)
			return
		}
	}
	if m := r.Header.Get("Content-MD5"); m != "" {
		sum := md5.Sum(body)
		if m != base64.StdEncoding.EncodeToString(sum[:]) {
			f.fail(w, 400, "BadDigest")
			return
		}
	} else if r.Method == http.MethodPut {
		f.t.Errorf("%s without Content-MD5", op)
	}
	if f.inject != nil {
		if status, code := f.inject(r, op, attempt); status != 0 {
			if status == 200 { // an error inside a 200 answer, as S3 does for Complete
				w.WriteHeader(200)
				fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n\n"+`<Error><Code>%s</Code><Message>late</Message></Error>`, code)
				return
			}
			f.fail(w, status, code)
			return
		}
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	key := r.URL.Path
	q := r.URL.Query()
	etagOf := func(b []byte) string { s := md5.Sum(b); return `"` + hex.EncodeToString(s[:]) + `"` }
	switch {
	case op == "PutObject":
		f.objects[key] = body
		f.headers[key] = r.Header.Clone()
		w.Header().Set("ETag", etagOf(body))
	case op == "CreateMultipartUpload":
		f.nextID++
		id := fmt.Sprintf("up+%d/x", f.nextID) // characters that need query escaping
		f.uploads[id] = &fakeUpload{key: key, parts: map[int][]byte{}}
		f.headers[key] = r.Header.Clone()
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>b</Bucket><Key>%s</Key><UploadId>%s</UploadId></InitiateMultipartUploadResult>`, key, id)
	case strings.HasPrefix(op, "UploadPart"):
		up, ok := f.uploads[q.Get("uploadId")]
		if !ok || up.key != key {
			f.fail(w, 404, "NoSuchUpload")
			return
		}
		n, _ := strconv.Atoi(q.Get("partNumber"))
		up.parts[n] = body
		w.Header().Set("ETag", etagOf(body))
	case op == "CompleteMultipartUpload":
		up, ok := f.uploads[q.Get("uploadId")]
		if !ok || up.key != key {
			f.fail(w, 404, "NoSuchUpload")
			return
		}
		var doc completeRequest
		if err := xml.Unmarshal(body, &doc); err != nil {
			f.fail(w, 400, "MalformedXML")
			return
		}
		var all []byte
		for i, p := range doc.Parts {
			b, ok := up.parts[p.PartNumber]
			if !ok || p.PartNumber != i+1 || etagOf(b) != p.ETag {
				f.fail(w, 400, "InvalidPart")
				return
			}
			all = append(all, b...)
		}
		f.objects[key] = all
		delete(f.uploads, q.Get("uploadId"))
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult><Key>%s</Key><ETag>"fake-%d"</ETag></CompleteMultipartUploadResult>`, key, len(doc.Parts))
	case op == "AbortMultipartUpload":
		if _, ok := f.uploads[q.Get("uploadId")]; !ok {
			f.fail(w, 404, "NoSuchUpload")
			return
		}
		delete(f.uploads, q.Get("uploadId"))
		f.aborted = append(f.aborted, q.Get("uploadId"))
		w.WriteHeader(http.StatusNoContent)
	default:
		f.fail(w, 501, "NotImplemented")
	}
}

// verifySigV4 re-signs the request as received (only the headers it
// names as signed, the payload hash computed from the body actually
// received) and compares signatures.
func (f *fakeS3) verifySigV4(r *http.Request, body []byte) string {
	auth := r.Header.Get("Authorization")
	const algo = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, algo) {
		return "AccessDenied"
	}
	fields := map[string]string{}
	for _, kv := range strings.Split(strings.TrimPrefix(auth, algo), ", ") {
		k, v, _ := strings.Cut(kv, "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[0] != f.accessKey {
		return "InvalidAccessKeyId"
	}
	if scope[2] != f.region || scope[3] != "s3" {
		return "AuthorizationHeaderMalformed"
	}
	sum := sha256.Sum256(body)
	if r.Header.Get("X-Amz-Content-Sha256") != hex.EncodeToString(sum[:]) {
		return "XAmzContentSHA256Mismatch"
	}
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return "AccessDenied"
	}
	re, err := http.NewRequest(r.Method, "http://"+r.Host+r.RequestURI, nil)
	if err != nil {
		return "AccessDenied"
	}
	re.ContentLength = r.ContentLength
	for _, h := range strings.Split(fields["SignedHeaders"], ";") {
		if h != "host" {
			re.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	creds := aws.Credentials{AccessKeyID: f.accessKey, SecretAccessKey: f.secretKey}
	if err := signer.SignHTTP(context.Background(), creds, re, hex.EncodeToString(sum[:]), "s3", f.region, when); err != nil {
		return "AccessDenied"
	}
	if re.Header.Get("Authorization") != auth {
		return "SignatureDoesNotMatch"
	}
	return ""
}

func (f *fakeS3) object(key string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.objects[key]
	return b, ok
}

func (f *fakeS3) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attempts[op]
}

func (f *fakeS3) snapshot() (reqs []fakeRequest, open, aborted []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id := range f.uploads {
		open = append(open, id)
	}
	sort.Strings(open)
	return append([]fakeRequest(nil), f.requests...), open, append([]string(nil), f.aborted...)
}
