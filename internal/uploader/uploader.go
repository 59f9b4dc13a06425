package uploader

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// S3 limits on multipart uploads.
const (
	MinPartSize = 5 << 20
	MaxPartSize = 5 << 30
	MaxParts    = 10000
)

// Defaults applied by New to zero Options fields.
const (
	DefaultMultipartThreshold = 64 << 20
	DefaultPartSize           = 16 << 20
	DefaultConcurrency        = 4
	DefaultBaseDelay          = 200 * time.Millisecond
	DefaultMaxDelay           = 10 * time.Second
	DefaultAbortTimeout       = 15 * time.Second
)

// expectContinueAbove is the body size from which requests ask
// "Expect: 100-continue": a refused part costs a round trip, not its bytes.
const expectContinueAbove = 1 << 20

// Options configures an Uploader. Zero fields take the defaults above,
// except Retries (0 means no retry) and Signer (nil means anonymous).
type Options struct {
	Client             *http.Client // NewHTTPClient when nil
	Signer             Signer
	MultipartThreshold int64 // objects this large or larger use multipart
	PartSize           int64 // grown when an object would need more than MaxParts
	Concurrency        int   // parts in flight per object
	Retries            int   // further attempts per request after the first
	BaseDelay          time.Duration
	MaxDelay           time.Duration
	AbortTimeout       time.Duration // bound on aborting a failed multipart upload
	UserAgent          string
	Logger             *slog.Logger // retries and aborts; discarded when nil
}

// Uploader uploads objects. It is safe for concurrent use.
type Uploader struct {
	o Options
}

// New returns an Uploader. It fails on negative or impossible options.
func New(o Options) (*Uploader, error) {
	switch {
	case o.MultipartThreshold < 0, o.PartSize < 0, o.Concurrency < 0, o.Retries < 0,
		o.BaseDelay < 0, o.MaxDelay < 0, o.AbortTimeout < 0:
		return nil, errors.New("uploader: negative option")
	case o.PartSize > MaxPartSize:
		return nil, fmt.Errorf("uploader: part size %d above the S3 maximum %d", o.PartSize, int64(MaxPartSize))
	}
	if o.Client == nil {
		o.Client = NewHTTPClient(TransportOptions{})
	}
	if o.MultipartThreshold == 0 {
		o.MultipartThreshold = DefaultMultipartThreshold
	}
	if o.PartSize == 0 {
		o.PartSize = DefaultPartSize
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.BaseDelay == 0 {
		o.BaseDelay = DefaultBaseDelay
	}
	if o.MaxDelay == 0 {
		o.MaxDelay = DefaultMaxDelay
	}
	if o.AbortTimeout == 0 {
		o.AbortTimeout = DefaultAbortTimeout
	}
	if o.UserAgent == "" {
		o.UserAgent = "mizuchi-upload"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Uploader{o: o}, nil
}

// Object is one upload.
type Object struct {
	// URL is the object's path-style URL (scheme://host/prefix/key); its
	// Path is the decoded key path, re-encoded the S3 way when sent.
	URL         *url.URL
	Body        io.ReaderAt
	Size        int64
	ContentType string
	Metadata    map[string]string // sent as x-amz-meta-<key>
	// Progress, when set, receives the bytes handed to the network as they
	// go, from several goroutines at once; a retried request first takes
	// back what its failed attempt had reported (a negative delta).
	Progress func(delta int64)
}

// Result describes a stored object.
type Result struct {
	ETag     string
	Size     int64
	Parts    int   // 0 for a single PutObject
	PartSize int64 // 0 for a single PutObject
}

// Upload stores obj: one PutObject below the multipart threshold (and for
// an empty object), a multipart upload otherwise. A multipart upload that
// fails or is cancelled is aborted before Upload returns. Errors are
// *Error for S3 answers, *TransportError for requests that got none after
// the retries, and wrap ctx.Err() on cancellation.
func (u *Uploader) Upload(ctx context.Context, obj Object) (Result, error) {
	if obj.URL == nil || obj.Body == nil || obj.Size < 0 {
		return Result{}, errors.New("uploader: object needs a URL, a body and a size")
	}
	if obj.Size == 0 || obj.Size < u.o.MultipartThreshold {
		return u.put(ctx, obj)
	}
	return u.multipart(ctx, obj)
}

// PartSizeFor is the part size used for an object of the given size: the
// configured one, grown to a whole MiB when MaxParts parts would not hold
// the object.
func (u *Uploader) PartSizeFor(size int64) int64 {
	ps := u.o.PartSize
	if (size+ps-1)/ps > MaxParts {
		ps = (size + MaxParts - 1) / MaxParts
		ps = (ps + 1<<20 - 1) &^ (1<<20 - 1)
	}
	return ps
}

func (u *Uploader) put(ctx context.Context, obj Object) (Result, error) {
	h := objectHeaders(obj)
	resp, err := u.send(ctx, call{op: "PutObject", method: http.MethodPut, url: obj.URL, header: h,
		body: obj.Body, size: obj.Size, progress: obj.Progress})
	if err != nil {
		return Result{}, err
	}
	return Result{ETag: resp.header.Get("ETag"), Size: obj.Size}, nil
}

func (u *Uploader) multipart(ctx context.Context, obj Object) (Result, error) {
	resp, err := u.send(ctx, call{op: "CreateMultipartUpload", method: http.MethodPost, url: obj.URL,
		query: "uploads", header: objectHeaders(obj)})
	if err != nil {
		return Result{}, err
	}
	var ir initiateResult
	if err := xml.Unmarshal(resp.body, &ir); err != nil || ir.UploadID == "" {
		return Result{}, &Error{Op: "CreateMultipartUpload", StatusCode: resp.status, Code: "MalformedResponse",
			Message: "no UploadId in the answer"}
	}
	uploadID := ir.UploadID
	ps := u.PartSizeFor(obj.Size)
	parts, err := u.uploadParts(ctx, obj, uploadID, ps)
	var etag string
	if err == nil {
		etag, err = u.complete(ctx, obj, uploadID, parts)
	}
	if err != nil {
		if aerr := u.abort(ctx, obj, uploadID); aerr != nil {
			u.o.Logger.Warn("multipart upload not aborted", "upload_id", uploadID, "error", aerr)
			err = errors.Join(err, fmt.Errorf("aborting upload %s: %w", uploadID, aerr))
		}
		return Result{}, err
	}
	return Result{ETag: etag, Size: obj.Size, Parts: len(parts), PartSize: ps}, nil
}

func (u *Uploader) uploadParts(ctx context.Context, obj Object, uploadID string, ps int64) ([]completedPart, error) {
	n := int((obj.Size + ps - 1) / ps)
	parts := make([]completedPart, n)
	g, gctx := errgroup.WithContext(ctx)
	next := make(chan int)
	g.Go(func() error {
		defer close(next)
		for i := range n {
			select {
			case next <- i:
			case <-gctx.Done():
				return nil
			}
		}
		return nil
	})
	for range min(u.o.Concurrency, n) {
		g.Go(func() error {
			for i := range next {
				off := int64(i) * ps
				num := i + 1
				resp, err := u.send(gctx, call{
					op: "UploadPart " + strconv.Itoa(num), method: http.MethodPut, url: obj.URL,
					query:  "partNumber=" + strconv.Itoa(num) + "&uploadId=" + url.QueryEscape(uploadID),
					header: http.Header{}, body: obj.Body, off: off, size: min(ps, obj.Size-off), progress: obj.Progress,
				})
				if err != nil {
					return err
				}
				etag := resp.header.Get("ETag")
				if etag == "" {
					return &Error{Op: "UploadPart " + strconv.Itoa(num), StatusCode: resp.status, Code: "MalformedResponse", Message: "no ETag in the answer"}
				}
				parts[i] = completedPart{PartNumber: num, ETag: etag}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return parts, nil
}

func (u *Uploader) complete(ctx context.Context, obj Object, uploadID string, parts []completedPart) (string, error) {
	sort.Slice(parts, func(i, j int) bool { return parts[i].PartNumber < parts[j].PartNumber })
	doc, err := xml.Marshal(completeRequest{Xmlns: s3Namespace, Parts: parts})
	if err != nil {
		return "", err
	}
	h := http.Header{}
	h.Set("Content-Type", "application/xml")
	resp, err := u.send(ctx, call{op: "CompleteMultipartUpload", method: http.MethodPost, url: obj.URL,
		query: "uploadId=" + url.QueryEscape(uploadID), header: h, body: bytes.NewReader(doc), size: int64(len(doc))})
	if err != nil {
		return "", err
	}
	var cr completeResult
	if err := xml.Unmarshal(resp.body, &cr); err != nil || cr.ETag == "" {
		if etag := resp.header.Get("ETag"); etag != "" {
			return etag, nil
		}
		return "", &Error{Op: "CompleteMultipartUpload", StatusCode: resp.status, Code: "MalformedResponse", Message: "no ETag in the answer"}
	}
	return cr.ETag, nil
}

// abort cancels a multipart upload with a context of its own: the upload's
// context is usually the reason for aborting and already done.
func (u *Uploader) abort(ctx context.Context, obj Object, uploadID string) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), u.o.AbortTimeout)
	defer cancel()
	_, err := u.send(actx, call{op: "AbortMultipartUpload", method: http.MethodDelete, url: obj.URL,
		query: "uploadId=" + url.QueryEscape(uploadID), header: http.Header{}})
	var se *Error
	if errors.As(err, &se) && se.Code == "NoSuchUpload" {
		return nil // already gone (completed or aborted by a lost answer)
	}
	if err == nil {
		u.o.Logger.Info("multipart upload aborted", "upload_id", uploadID)
	}
	return err
}

func objectHeaders(obj Object) http.Header {
	h := http.Header{}
	if obj.ContentType != "" {
		h.Set("Content-Type", obj.ContentType)
	}
	for k, v := range obj.Metadata {
		h.Set("X-Amz-Meta-"+k, v)
	}
	return h
}

// call is one S3 request; body[off:off+size] is its payload.
type call struct {
	op       string
	method   string
	url      *url.URL
	query    string
	header   http.Header
	body     io.ReaderAt
	off      int64
	size     int64
	progress func(int64)
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// maxResultBody bounds what is read of a successful answer (XML results).
const maxResultBody = 1 << 20

// send runs c with retries.
func (u *Uploader) send(ctx context.Context, c call) (response, error) {
	for attempt := 0; ; attempt++ {
		resp, retry, err := u.attempt(ctx, c)
		if err == nil {
			return resp, nil
		}
		if !retry || attempt >= u.o.Retries || ctx.Err() != nil {
			return response{}, err
		}
		d := u.backoff(attempt)
		u.o.Logger.Warn("retrying", "op", c.op, "attempt", attempt+2, "delay", d.Round(time.Millisecond), "error", err)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return response{}, fmt.Errorf("%s: %w", c.op, ctx.Err())
		case <-t.C:
		}
	}
}

// backoff is exponential with full jitter: uniform in [0, min(max, base·2^n)].
func (u *Uploader) backoff(n int) time.Duration {
	d := u.o.MaxDelay
	if n < 30 {
		d = min(u.o.MaxDelay, u.o.BaseDelay<<n)
	}
	return time.Duration(rand.Int64N(int64(d) + 1))
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// digest reads the payload once for its MD5 and, when asked, its SHA-256.
func digest(c call, withSHA bool) (md5b64, shaHex string, err error) {
	m := md5.New()
	var w io.Writer = m
	var s hash.Hash
	if withSHA {
		s = sha256.New()
		w = io.MultiWriter(m, s)
	}
	if c.size > 0 {
		buf := copyBufs.Get().(*[]byte)
		defer copyBufs.Put(buf)
		n, err := io.CopyBuffer(w, io.NewSectionReader(c.body, c.off, c.size), *buf)
		if err == nil && n != c.size {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return "", "", &localError{err}
		}
	}
	md5b64 = base64.StdEncoding.EncodeToString(m.Sum(nil))
	if withSHA {
		shaHex = hex.EncodeToString(s.Sum(nil))
	}
	return md5b64, shaHex, nil
}

// localError is a failure to read the source: never retried.
type localError struct{ err error }

func (e *localError) Error() string { return "reading source: " + e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

// countingReader reports payload bytes as the transport reads them and
// remembers a read error, which is the source's fault, not the network's.
type countingReader struct {
	r        io.Reader
	n        int64
	readErr  error
	progress func(int64)
	mu       sync.Mutex
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.mu.Lock()
	c.n += int64(n)
	if err != nil && err != io.EOF {
		c.readErr = err
	}
	c.mu.Unlock()
	if n > 0 && c.progress != nil {
		c.progress(int64(n))
	}
	return n, err
}

func (c *countingReader) result() (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n, c.readErr
}

// attempt sends c once. retry says whether another attempt may succeed.
func (u *Uploader) attempt(ctx context.Context, c call) (resp response, retry bool, err error) {
	ps, signsPayload := u.o.Signer.(PayloadSigner)
	signsPayload = signsPayload && ps.SignsPayload()
	md5b64, shaHex, err := digest(c, signsPayload)
	if err != nil {
		return response{}, false, fmt.Errorf("%s: %w", c.op, err)
	}

	target := *c.url
	target.RawPath = s3EscapePath(target.Path)
	target.RawQuery = c.query
	target.Fragment = ""

	var counter *countingReader
	var body io.Reader = http.NoBody
	if c.size > 0 {
		counter = &countingReader{r: io.NewSectionReader(c.body, c.off, c.size), progress: c.progress}
		body = counter
	}
	req, err := http.NewRequestWithContext(ctx, c.method, target.String(), body)
	if err != nil {
		return response{}, false, fmt.Errorf("%s: %w", c.op, err)
	}
	req.URL = &target // keep RawPath exactly as encoded above
	req.ContentLength = c.size
	if c.size > 0 {
		// Only for a transport-level replay (HTTP/2 GOAWAY); not counted.
		req.GetBody = func() (io.ReadCloser, error) {
			return io.NopCloser(io.NewSectionReader(c.body, c.off, c.size)), nil
		}
	}
	for k, vs := range c.header {
		req.Header[k] = append([]string(nil), vs...)
	}
	req.Header.Set("User-Agent", u.o.UserAgent)
	if c.method == http.MethodPut || c.size > 0 {
		req.Header.Set("Content-MD5", md5b64)
	}
	if c.size >= expectContinueAbove {
		req.Header.Set("Expect", "100-continue")
	}
	if u.o.Signer != nil {
		if err := u.o.Signer.Sign(ctx, req, shaHex); err != nil {
			return response{}, false, fmt.Errorf("%s: signing: %w", c.op, err)
		}
	}

	rollback := func() {
		if counter != nil && c.progress != nil {
			if n, _ := counter.result(); n > 0 {
				c.progress(-n)
			}
		}
	}
	hr, err := u.o.Client.Do(req)
	if err != nil {
		rollback()
		if ctx.Err() != nil {
			return response{}, false, fmt.Errorf("%s: %w", c.op, ctx.Err())
		}
		if counter != nil {
			if _, rerr := counter.result(); rerr != nil {
				return response{}, false, fmt.Errorf("%s: %w", c.op, &localError{rerr})
			}
		}
		te := &TransportError{Op: c.op, Err: unwrapURLError(err)}
		return response{}, !te.untrusted(), te
	}
	defer hr.Body.Close()
	if hr.StatusCode < 200 || hr.StatusCode > 299 {
		rollback()
		se := responseError(c.op, hr)
		return response{}, se.retryable(), se
	}
	b, err := io.ReadAll(io.LimitReader(hr.Body, maxResultBody))
	if err != nil {
		rollback()
		if ctx.Err() != nil {
			return response{}, false, fmt.Errorf("%s: %w", c.op, ctx.Err())
		}
		return response{}, true, &TransportError{Op: c.op, Err: err}
	}
	if se := embeddedError(c.op, hr.StatusCode, b); se != nil {
		rollback()
		return response{}, se.retryable(), se
	}
	return response{status: hr.StatusCode, header: hr.Header, body: b}, false, nil
}

// unwrapURLError drops *url.Error's "Put \"http://…?uploadId=…\"" prefix:
// the operation already names the request.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// s3EscapePath encodes a decoded path as S3 canonicalises it: every byte
// except A–Z a–z 0–9 - . _ ~ and / percent-encoded.
func s3EscapePath(p string) string {
	var b strings.Builder
	b.Grow(len(p) + 8)
	const hexdigits = "0123456789ABCDEF"
	for i := 0; i < len(p); i++ {
		c := p[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' || c == '/' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexdigits[c>>4])
		b.WriteByte(hexdigits[c&15])
	}
	return b.String()
}
