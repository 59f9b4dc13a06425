package s3api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/auth"
	"github.com/mizuchi-uploadr/mizuchi/internal/auth/sigv4"
	"github.com/mizuchi-uploadr/mizuchi/internal/authz"
	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/limits"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
	"github.com/mizuchi-uploadr/mizuchi/internal/telemetry"
)

// maxPartSize is S3's largest part (and largest single PUT).
const maxPartSize = 5 << 30

// Bucket is a configured bucket as the S3 front end sees it.
type Bucket struct {
	// Name is the configured name (metrics, authz).
	Name string
	// Prefix is the path prefix, e.g. "/uploads".
	Prefix  string
	Backend backend.Backend
	// Auth authenticates every request on the bucket (an *auth.Chain).
	Auth auth.Authenticator
	// Authz decides uploads; nil means every authenticated request may
	// upload.
	Authz authz.Authorizer
	// AuthzEngine names the engine for logs ("opa", "openfga", "").
	Upload config.Upload
	// Region is answered by GetBucketLocation and HeadBucket.
	Region string
	// CORS is the bucket's cross-origin policy; nil refuses preflights.
	CORS *config.CORS
	// Limits are the bucket's fair-use limits; nil: none (fairuse.go).
	Limits *limits.Bucket

	segments []string
}

// clientName is the bucket name as a path-style S3 client sees it.
func (b *Bucket) clientName() string { return strings.TrimPrefix(b.Prefix, "/") }

// Hooks let telemetry observe the request without this package knowing
// how spans are made. Every field may be nil.
type Hooks struct {
	// Routed is called once the bucket, operation and key are known.
	Routed func(ctx context.Context, bucket, operation, key string)
	// Authenticated is called with the principal of the request.
	Authenticated func(ctx context.Context, p *auth.Principal)
	// Transferred reports, for a request with a body, the time spent
	// waiting on the client and the total time spent in the backend call.
	Transferred func(ctx context.Context, clientWait, backendTime time.Duration)
}

// ReadyFunc reports readiness for /readyz with details per component.
type ReadyFunc func(ctx context.Context) (ready bool, details map[string]string)

// Options configure a Handler.
type Options struct {
	Buckets        []*Bucket
	Logger         *slog.Logger
	Metrics        *telemetry.Metrics
	TrustedProxies []netip.Prefix
	Ready          ReadyFunc
	Hooks          Hooks
	// BodyIdleTimeout bounds how long a client may send nothing in the
	// middle of a body; zero means no limit.
	BodyIdleTimeout time.Duration
	// UploadIDs seals the multipart upload ids clients see (uploadid.go);
	// nil: a random key, valid in this process only.
	UploadIDs *UploadIDs
	// Admission bounds the uploads in flight; nil means no limit.
	Admission *Admission
	// Notifier records an event for every object stored; nil: none.
	Notifier Notifier
}

// Handler serves the S3 API and the health endpoints.
type Handler struct {
	router   *Router
	log      *slog.Logger
	metrics  *telemetry.Metrics
	trusted  []netip.Prefix
	ready    ReadyFunc
	hooks    Hooks
	ids      *UploadIDs
	bodyIdle time.Duration
	// admission bounds uploads in flight (admission.go); may be nil.
	admission *Admission
	notifier  Notifier
}

// NewHandler builds the handler.
func NewHandler(o Options) *Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.UploadIDs == nil {
		o.UploadIDs = ephemeralUploadIDs()
	}
	return &Handler{
		router:   NewRouter(o.Buckets),
		log:      o.Logger,
		metrics:  o.Metrics,
		trusted:  o.TrustedProxies,
		ready:    o.Ready,
		hooks:    o.Hooks,
		ids:      o.UploadIDs,
		bodyIdle: o.BodyIdleTimeout,

		admission: o.Admission,
		notifier:  o.Notifier,
	}
}

// statusWriter records what was answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ServeHTTP is the one place that writes errors, counts and logs.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s := &Scope{RequestID: newRequestID(), ClientIP: h.clientIP(r)}
	w.Header().Set("x-amz-request-id", s.RequestID)
	w.Header().Set("Server", "Mizuchi")
	r = r.WithContext(WithScope(r.Context(), s))
	sw := &statusWriter{ResponseWriter: w}

	if h.serveHealth(sw, r) {
		return
	}
	err := descriptorsExhausted(h.serve(sw, r, s))
	if err != nil {
		e := s3err.Write(sw, r, err, auth.RequestPath(r), s.RequestID)
		s.Code = e.Code
		if h.metrics != nil {
			h.metrics.Errors.WithLabelValues(s.bucketName(), e.Code).Inc()
		}
		if e.Status >= 500 {
			h.log.LogAttrs(r.Context(), slog.LevelError, "request failed",
				slog.String("request_id", s.RequestID), slog.String("code", e.Code), slog.Any("cause", e.Err))
		}
	}
	s.Status = sw.status
	h.finish(r, s, start)
}

func (s *Scope) bucketName() string {
	if s.Bucket == nil {
		return ""
	}
	return s.Bucket.Name
}

func (h *Handler) finish(r *http.Request, s *Scope, start time.Time) {
	d := time.Since(start)
	op := string(s.Request.Op)
	if h.metrics != nil && s.Bucket != nil && op != "" {
		h.metrics.Uploads.WithLabelValues(s.Bucket.Name, op, strconv.Itoa(s.Status)).Inc()
		h.metrics.UploadDuration.WithLabelValues(s.Bucket.Name, op).Observe(d.Seconds())
	}
	attrs := []slog.Attr{
		slog.String("request_id", s.RequestID),
		slog.String("method", r.Method),
		slog.String("bucket", s.bucketName()),
		slog.String("operation", op),
		slog.Int("status", s.Status),
		slog.Int64("bytes", s.Bytes),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
		slog.String("client_ip", s.ClientIP),
	}
	if s.Code != "" {
		attrs = append(attrs, slog.String("code", s.Code))
	}
	if s.Key != "" {
		attrs = append(attrs, slog.String("key", s.Key))
	}
	if s.Principal != nil {
		attrs = append(attrs, slog.String("auth", string(s.Principal.Method)))
	}
	h.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
}

// serveHealth answers /health, /healthz and /readyz.
func (h *Handler) serveHealth(w http.ResponseWriter, r *http.Request) bool {
	path := r.URL.Path
	if path != "/health" && path != "/healthz" && path != "/readyz" {
		return false
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	w.Header().Set("Cache-Control", "no-store")
	switch path {
	case "/health", "/healthz":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok"))
	case "/readyz":
		ready, details := true, map[string]string{}
		if h.ready != nil {
			ready, details = h.ready(r.Context())
		}
		w.Header().Set("Content-Type", "application/json")
		status := http.StatusOK
		if !ready {
			status = http.StatusServiceUnavailable
		}
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(struct {
			Ready   bool              `json:"ready"`
			Details map[string]string `json:"details"`
		}{ready, details})
	}
	return true
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, s *Scope) (err error) {
	// Routed from the path as sent, like the signature (never r.URL).
	path := auth.RequestPath(r)
	b, rawKey, ok := h.router.Match(path)
	if !ok {
		if path == "/" {
			return s3err.ErrMethodNotAllowed.WithMessage("Listing buckets is not allowed through this endpoint.")
		}
		return s3err.ErrNoSuchBucket
	}
	s.Bucket = b
	if origin := r.Header.Get("Origin"); origin != "" {
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			return b.preflight(w, r, origin)
		}
		b.corsResponse(w.Header(), origin, r.Method)
	}
	req, err := Classify(r.Method, rawKey != "", r.URL.Query(), r.Header)
	if err != nil {
		return err
	}
	s.Request = req
	if rawKey != "" {
		if s.Key, err = DecodeKey(rawKey); err != nil {
			return err
		}
	}
	ctx := r.Context()
	if h.hooks.Routed != nil {
		h.hooks.Routed(ctx, b.Name, string(req.Op), s.Key)
	}
	release, err := h.admit(s, req.Op)
	if err != nil {
		return err
	}
	defer release()

	p, err := b.Auth.Authenticate(ctx, r)
	if err != nil {
		return err
	}
	s.Principal = p
	if h.hooks.Authenticated != nil {
		h.hooks.Authenticated(ctx, p)
	}
	if err := b.checkAmbientOrigin(r, p); err != nil {
		return err
	}

	switch req.Op {
	case OpHeadBucket:
		w.Header().Set("x-amz-bucket-region", b.Region)
		w.WriteHeader(http.StatusOK)
		return nil
	case OpGetBucketLocation:
		region := b.Region
		if region == "us-east-1" {
			region = "" // S3 answers an empty constraint for us-east-1
		}
		return writeXML(w, http.StatusOK, locationConstraint{Xmlns: s3Namespace, Region: region})
	case OpCreateBucket:
		return s3err.ErrBucketAlreadyOwnedByYou
	}

	if req.Op == OpPutObject || req.Op == OpUploadPart {
		// aws-chunked framing is removed whatever authenticated the
		// request, so it never ends up inside an object.
		if err := sigv4.DecodeFraming(r); err != nil {
			return err
		}
	}
	if err := h.precheck(r, b, req); err != nil {
		return err
	}
	if err := h.authorize(ctx, r, s, b, req); err != nil {
		return err
	}
	if err := h.admitEvent(w, s); err != nil {
		return err
	}
	if err := h.admitFairUse(ctx, r, s, b, req); err != nil {
		return err
	}
	defer func() { s.ticket.Done(err == nil) }()
	if err := claimWrite(ctx, p, req.Op); err != nil {
		return err
	}
	if h.metrics != nil {
		g := h.metrics.InflightUploads.WithLabelValues(b.Name)
		g.Inc()
		defer g.Dec()
	}
	switch req.Op {
	case OpPutObject:
		return h.putObject(w, r, s)
	case OpCreateMultipartUpload:
		return h.createMultipartUpload(w, r, s)
	case OpUploadPart:
		return h.uploadPart(w, r, s)
	case OpCompleteMultipartUpload:
		return h.completeMultipartUpload(w, r, s)
	case OpAbortMultipartUpload:
		return h.abortMultipartUpload(w, r, s)
	case OpListParts:
		return h.listParts(w, r, s)
	}
	return s3err.ErrNotImplemented
}

// precheck refuses, before the body is read, what the bucket's limits
// forbid.
func (h *Handler) precheck(r *http.Request, b *Bucket, req Request) error {
	switch req.Op {
	case OpPutObject, OpUploadPart:
		if r.ContentLength < 0 {
			return s3err.ErrMissingContentLength
		}
		if max := int64(b.Upload.MaxObjectSize); max > 0 && r.ContentLength > max {
			return s3err.ErrEntityTooLarge
		}
		if req.Op == OpUploadPart && r.ContentLength > maxPartSize {
			return s3err.ErrEntityTooLarge
		}
	}
	if req.Op == OpCompleteMultipartUpload && r.ContentLength > maxCompleteBody {
		return s3err.ErrMaxMessageLengthExceeded
	}
	switch req.Op {
	case OpPutObject, OpCreateMultipartUpload:
		if err := checkContentType(b.Upload.AllowedContentTypes, r.Header.Values("Content-Type")); err != nil {
			return err
		}
	}
	return nil
}

var actions = map[Operation]string{
	OpPutObject:               authz.ActionUpload,
	OpCreateMultipartUpload:   authz.ActionCreateMultipart,
	OpUploadPart:              authz.ActionUploadPart,
	OpCompleteMultipartUpload: authz.ActionCompleteMultipart,
	OpAbortMultipartUpload:    authz.ActionAbortMultipart,
	OpListParts:               authz.ActionListParts,
}

// authorize asks the policy engine, except for calls on a multipart upload:
// its id names the creator, bucket and key (uploadid.go).
func (h *Handler) authorize(ctx context.Context, r *http.Request, s *Scope, b *Bucket, req Request) error {
	if req.UploadID != "" {
		return h.checkUploadOwner(s, b, req.UploadID)
	}
	if b.Authz == nil {
		return nil
	}
	in := &authz.Input{
		Subject:  s.Principal.Subject,
		Action:   actions[req.Op],
		Resource: authz.Resource{Bucket: b.Name, Key: s.Key},
		Context: authz.Context{
			Method:        r.Method,
			Path:          auth.RequestPath(r),
			IP:            s.ClientIP,
			ContentLength: r.ContentLength,
			ContentType:   r.Header.Get("Content-Type"),
			Claims:        s.Principal.Claims,
			AuthMethod:    string(s.Principal.Method),
		},
	}
	allowed, err := h.decide(ctx, s, b, in)
	if err != nil {
		return s3err.ErrServiceUnavailable.WithMessage("The authorization service is unavailable.").WithCause(err)
	}
	if !allowed {
		return s3err.ErrAccessDenied
	}
	return nil
}

func (h *Handler) putObject(w http.ResponseWriter, r *http.Request, s *Scope) error {
	meta, err := metadataFrom(r.Header)
	if err != nil {
		return err
	}
	integ, err := integrityFrom(r.Header)
	if err != nil {
		return err
	}
	bd := h.newBody(w, r, s)
	start := time.Now()
	out, err := s.Bucket.Backend.PutObject(r.Context(), &backend.PutObjectInput{
		Key: s.Key, Body: bd, Size: r.ContentLength, Metadata: meta, Integrity: integ,
	})
	if err := h.afterBody(r, s, bd, start, err); err != nil {
		return err
	}
	if err := h.notify(r, s, EventPut, s.Bytes, out.ETag, out.VersionID, responseChecksum(r, out.Checksum)); err != nil {
		return err
	}
	w.Header().Set("ETag", out.ETag)
	setChecksumHeader(w.Header(), responseChecksum(r, out.Checksum))
	if out.VersionID != "" {
		w.Header().Set("x-amz-version-id", out.VersionID)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// newBody wraps the request body for a backend call, with the idle
// timeout of server.body_idle_timeout_seconds.
func (h *Handler) newBody(w http.ResponseWriter, r *http.Request, s *Scope) *body {
	rc := http.NewResponseController(w)
	return newBody(limitedBody(s, r), r.ContentLength).withIdleTimeout(h.bodyIdle, rc.SetReadDeadline)
}

// idleReader moves the connection's read deadline before every Read, so
// that a read waiting longer than idle for the client fails (clientError
// turns that into RequestTimeout). Unlike body it knows no length, so it
// also suits chunked documents.
type idleReader struct {
	r           io.Reader
	idle        time.Duration
	setDeadline func(time.Time) error
}

func (i idleReader) Read(p []byte) (int, error) {
	_ = i.setDeadline(time.Now().Add(i.idle))
	return i.r.Read(p)
}

// afterBody accounts a body transfer and picks the error to answer: a
// failure reading the client's body wins over what the backend made of it.
func (h *Handler) afterBody(r *http.Request, s *Scope, bd *body, start time.Time, err error) error {
	n, wait, readErr := bd.stats()
	s.Bytes = n
	if h.hooks.Transferred != nil {
		h.hooks.Transferred(r.Context(), wait, time.Since(start))
	}
	if err != nil {
		if readErr != nil {
			return readErr
		}
		return err
	}
	if h.metrics != nil {
		h.metrics.UploadBytes.WithLabelValues(s.Bucket.Name).Add(float64(n))
	}
	return nil
}

// responseChecksum is the checksum to echo: the backend's, else the
// trailing checksum verified while decoding an aws-chunked body.
func responseChecksum(r *http.Request, c backend.Checksum) backend.Checksum {
	if c.Value != "" {
		return c
	}
	if alg, v, ok := sigv4.TrailerChecksum(r.Body); ok {
		return backend.Checksum{Algorithm: alg, Value: v}
	}
	return c
}

func (h *Handler) createMultipartUpload(w http.ResponseWriter, r *http.Request, s *Scope) error {
	meta, err := metadataFrom(r.Header)
	if err != nil {
		return err
	}
	out, err := s.Bucket.Backend.CreateMultipartUpload(r.Context(), &backend.CreateMultipartUploadInput{
		Key: s.Key, Metadata: meta,
		ChecksumAlgorithm: strings.ToUpper(r.Header.Get("X-Amz-Checksum-Algorithm")),
		ChecksumType:      strings.ToUpper(r.Header.Get("X-Amz-Checksum-Type")),
	})
	if err != nil {
		return err
	}
	id := h.ids.Seal(s.Bucket.Name, s.Key, s.Principal.Subject, out.UploadID, time.Now())
	return writeXML(w, http.StatusOK, initiateMultipartUploadResult{
		Xmlns: s3Namespace, Bucket: s.Bucket.clientName(), Key: s.Key, UploadID: id,
	})
}

func (h *Handler) uploadPart(w http.ResponseWriter, r *http.Request, s *Scope) error {
	integ, err := integrityFrom(r.Header)
	if err != nil {
		return err
	}
	bd := h.newBody(w, r, s)
	start := time.Now()
	out, err := s.Bucket.Backend.UploadPart(r.Context(), &backend.UploadPartInput{
		Key: s.Key, UploadID: s.backendUploadID, PartNumber: s.Request.PartNumber,
		Body: bd, Size: r.ContentLength, Integrity: integ,
	})
	if err := h.afterBody(r, s, bd, start, err); err != nil {
		return err
	}
	w.Header().Set("ETag", out.ETag)
	setChecksumHeader(w.Header(), responseChecksum(r, out.Checksum))
	w.WriteHeader(http.StatusOK)
	return nil
}

func (h *Handler) completeMultipartUpload(w http.ResponseWriter, r *http.Request, s *Scope) error {
	// The document is read under the same idle timeout as object data,
	// so a client cannot hold a Complete open by stalling mid-document.
	body := io.Reader(r.Body)
	if h.bodyIdle > 0 {
		body = idleReader{r: r.Body, idle: h.bodyIdle, setDeadline: http.NewResponseController(w).SetReadDeadline}
	}
	parts, err := parseCompleteMultipartUpload(body)
	if err != nil {
		return err
	}
	out, err := s.Bucket.Backend.CompleteMultipartUpload(r.Context(), &backend.CompleteMultipartUploadInput{
		Key: s.Key, UploadID: s.backendUploadID, Parts: parts,
		MaxSize: int64(s.Bucket.Upload.MaxObjectSize),
	})
	if err != nil {
		h.countMultipart(s, "failed")
		return err
	}
	h.countMultipart(s, "completed")
	if err := h.notify(r, s, EventComplete, out.Size, out.ETag, out.VersionID, out.Checksum); err != nil {
		return err
	}
	res := completeMultipartUploadResult{
		Xmlns: s3Namespace, Location: s.Bucket.Prefix + "/" + s.Key,
		Bucket: s.Bucket.clientName(), Key: s.Key, ETag: out.ETag,
	}
	res.ChecksumCRC32, res.ChecksumCRC32C, res.ChecksumCRC64NVME, res.ChecksumSHA1, res.ChecksumSHA256 = checksumFields(out.Checksum)
	if out.VersionID != "" {
		w.Header().Set("x-amz-version-id", out.VersionID)
	}
	return writeXML(w, http.StatusOK, res)
}

func (h *Handler) abortMultipartUpload(w http.ResponseWriter, r *http.Request, s *Scope) error {
	err := s.Bucket.Backend.AbortMultipartUpload(r.Context(), &backend.AbortMultipartUploadInput{
		Key: s.Key, UploadID: s.backendUploadID,
	})
	if err != nil {
		return err
	}
	h.countMultipart(s, "aborted")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) listParts(w http.ResponseWriter, r *http.Request, s *Scope) error {
	q := r.URL.Query()
	in := &backend.ListPartsInput{Key: s.Key, UploadID: s.backendUploadID}
	if v := q.Get("part-number-marker"); v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 0 {
			return s3err.ErrInvalidArgument.WithMessage("part-number-marker must be a non-negative integer.")
		}
		in.PartNumberMarker = int32(n)
	}
	if v := q.Get("max-parts"); v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 0 {
			return s3err.ErrInvalidArgument.WithMessage("max-parts must be a non-negative integer.")
		}
		in.MaxParts = int32(min(n, 1000))
	}
	out, err := s.Bucket.Backend.ListParts(r.Context(), in)
	if err != nil {
		return err
	}
	res := listPartsResult{
		Xmlns: s3Namespace, Bucket: s.Bucket.clientName(), Key: s.Key, UploadID: s.Request.UploadID,
		StorageClass: out.StorageClass, PartNumberMarker: out.PartNumberMarker,
		NextPartNumberMarker: out.NextPartNumberMarker, MaxParts: out.MaxParts,
		IsTruncated: out.IsTruncated, ChecksumAlgorithm: out.ChecksumAlgorithm,
	}
	if res.StorageClass == "" {
		res.StorageClass = "STANDARD"
	}
	for _, p := range out.Parts {
		it := partItem{PartNumber: p.PartNumber, LastModified: p.LastModified.UTC().Format("2006-01-02T15:04:05.000Z"), ETag: p.ETag, Size: p.Size}
		it.ChecksumCRC32, it.ChecksumCRC32C, it.ChecksumCRC64NVME, it.ChecksumSHA1, it.ChecksumSHA256 = checksumFields(p.Checksum)
		res.Parts = append(res.Parts, it)
	}
	return writeXML(w, http.StatusOK, res)
}

func (h *Handler) countMultipart(s *Scope, status string) {
	if h.metrics != nil {
		h.metrics.MultipartUploads.WithLabelValues(s.Bucket.Name, status).Inc()
	}
}

func writeXML(w http.ResponseWriter, status int, v any) error {
	body, err := xml.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(xml.Header)+len(body)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(body)
	return nil
}

// newRequestID returns 16 upper-case hex digits, like S3's request ids.
func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// clientIP is the peer address, or the first untrusted address of
// X-Forwarded-For when the peer is a trusted proxy.
func (h *Handler) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if len(h.trusted) == 0 {
		return host
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || !h.isTrusted(addr) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		if !h.isTrusted(a) {
			return a.String()
		}
		host = a.String()
	}
	return host
}

func (h *Handler) isTrusted(a netip.Addr) bool {
	for _, p := range h.trusted {
		if p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}
