package sigv4

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/auth"
	"github.com/mizuchi-uploadr/mizuchi/internal/checksum"
	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

// Payload hash values of x-amz-content-sha256 besides a hex digest.
const (
	UnsignedPayload        = "UNSIGNED-PAYLOAD"
	StreamingPayload       = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	StreamingPayloadTrail  = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	StreamingUnsignedTrail = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
)

const (
	service          = "s3"
	defaultClockSkew = 15 * time.Minute
	// defaultReplayRate sizes the default replay store: this many signed
	// writes per second, sustained over the skew window, fit in it.
	defaultReplayRate = 2_500
	// replaySlots is the number of expiry slots per skew window in the
	// default store: an entry is dropped at most skew/replaySlots late.
	replaySlots = 16
)

// Options are the injected dependencies of an Authenticator.
type Options struct {
	// Now returns the current time (time.Now when nil).
	Now func() time.Time
	// Logger receives debug records of refused requests (no secrets,
	// signatures or subjects). slog.DiscardHandler when nil.
	Logger *slog.Logger
	// ReplayStore remembers the signatures of signed writes when replay
	// protection is on. When nil, the Authenticator has its own
	// MemoryReplayStore of replay_max_entries entries (2500 ×
	// max_clock_skew_seconds when zero).
	ReplayStore ReplayStore
}

type credential struct {
	secret  string
	token   string
	subject string

	// The derived key of the most recent scope, reused for a day.
	mu       sync.Mutex
	keyScope string
	key      []byte
}

func (c *credential) signingKey(date, region, service string) []byte {
	scope := date + "/" + region + "/" + service
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keyScope != scope {
		c.key = signingKey(c.secret, date, region, service)
		c.keyScope = scope
	}
	return c.key
}

// Authenticator verifies SigV4 header and presigned-URL authentication
// against a fixed credentials table.
type Authenticator struct {
	region string
	skew   time.Duration
	creds  map[string]*credential
	now    func() time.Time
	log    *slog.Logger
	replay ReplayStore // nil when replay protection is off

	// service is "s3"; the generic SigV4 test vectors use another one.
	service string
	// genericPayload, set only by tests of generic (non-S3) SigV4,
	// supplies the payload hash when x-amz-content-sha256 is absent.
	genericPayload func(*http.Request) string
}

// New builds an Authenticator from cfg.
func New(cfg config.SigV4, opts Options) (*Authenticator, error) {
	var errs []error
	if cfg.Region == "" {
		errs = append(errs, errors.New("sigv4: region is required"))
	}
	if cfg.MaxClockSkewSeconds < 0 {
		errs = append(errs, errors.New("sigv4: max_clock_skew_seconds must not be negative"))
	}
	a := &Authenticator{
		region:  cfg.Region,
		skew:    time.Duration(cfg.MaxClockSkewSeconds) * time.Second,
		creds:   make(map[string]*credential, len(cfg.Credentials)),
		now:     opts.Now,
		log:     opts.Logger,
		service: service,
	}
	if a.skew <= 0 {
		a.skew = defaultClockSkew
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	for i, c := range cfg.Credentials {
		switch {
		case c.AccessKey == "":
			errs = append(errs, fmt.Errorf("sigv4: credentials[%d]: access_key is required", i))
		case c.SecretKey == "":
			errs = append(errs, fmt.Errorf("sigv4: credentials[%d]: secret_key is required", i))
		case c.Subject == "":
			errs = append(errs, fmt.Errorf("sigv4: credentials[%d]: subject is required", i))
		case a.creds[c.AccessKey] != nil:
			errs = append(errs, fmt.Errorf("sigv4: credentials[%d]: duplicate access_key", i))
		default:
			a.creds[c.AccessKey] = &credential{secret: c.SecretKey, token: c.SessionToken, subject: c.Subject}
		}
	}
	if len(cfg.Credentials) == 0 {
		errs = append(errs, errors.New("sigv4: at least one credential is required"))
	}
	if cfg.ReplayMaxEntries < 0 {
		errs = append(errs, errors.New("sigv4: replay_max_entries must not be negative"))
	}
	if cfg.ReplayProtection {
		a.replay = opts.ReplayStore
		if a.replay == nil {
			a.replay = newDefaultReplayStore(cfg, a.skew, a.now)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return a, nil
}

// Authenticate verifies the request's signature before its body is read
// and replaces r.Body with a reader that verifies the payload.
func (a *Authenticator) Authenticate(_ context.Context, r *http.Request) (*auth.Principal, error) {
	p, err := a.authenticate(r)
	if err != nil {
		var e *s3err.Error
		if errors.As(err, &e) {
			a.log.Debug("sigv4 authentication refused", slog.String("code", e.Code))
		}
		return nil, err
	}
	return p, nil
}

func (a *Authenticator) authenticate(r *http.Request) (*auth.Principal, error) {
	authz := r.Header.Get("Authorization")
	hasHeader := strings.HasPrefix(authz, algorithm)
	query := parseQuery(r.URL.RawQuery)
	hasQuery := false
	for _, q := range query {
		if q.key == qAlgorithm {
			hasQuery = true
			break
		}
	}
	if !hasHeader && !hasQuery {
		return nil, auth.ErrNoCredentials
	}
	if hasHeader && hasQuery {
		return nil, s3err.ErrInvalidArgument.WithMessage("Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified")
	}

	var in *sigInput
	var perr *s3err.Error
	if hasHeader {
		in, perr = parseAuthorization(authz)
	} else {
		in, perr = parsePresigned(query)
	}
	if perr != nil {
		return nil, perr
	}
	if e := a.checkScope(in); e != nil {
		return nil, e
	}
	cred := a.creds[in.accessKey]
	if cred == nil {
		return nil, s3err.ErrInvalidAccessKeyID
	}
	reqTime, e := a.checkTime(r, in)
	if e != nil {
		return nil, e
	}
	if e := checkToken(r, in, cred); e != nil {
		return nil, e
	}
	if name := unsignedAmzHeader(r, in); name != "" {
		return nil, s3err.ErrAccessDenied.WithMessage("There were headers present in the request which were not signed: %s", truncate(name))
	}
	payloadHash, e := a.payloadHash(r, in)
	if e != nil {
		return nil, e
	}

	key := cred.signingKey(in.scopeDate, in.region, in.service)
	amzDate := reqTime.UTC().Format(amzDateLayout)
	if in.presigned {
		amzDate = in.amzDate
	}
	scope := in.scope()
	skip := ""
	if in.presigned {
		skip = qSignature
	}
	cq := canonicalQuery(query, skip)
	// The path as the client sent it, split into the same segments as
	// by the router (see auth.RequestPath).
	raw := auth.RequestPath(r)
	uri := canonicalURI(raw)
	got := signHex(key, stringToSign(amzDate, scope, canonicalRequest(r, uri, cq, in.signedHeaders, in.signedRaw, payloadHash)))
	if !equalHex(got, in.signature) {
		// A client that encodes its path differently from S3 signs the
		// path as it sent it; both name the same object.
		if raw == uri || !equalHex(signHex(key, stringToSign(amzDate, scope, canonicalRequest(r, raw, cq, in.signedHeaders, in.signedRaw, payloadHash))), in.signature) {
			return nil, s3err.ErrSignatureDoesNotMatch
		}
	}

	if e := a.wrapBody(r, in, payloadHash, key, amzDate, scope); e != nil {
		return nil, e
	}
	p := &auth.Principal{Subject: cred.subject, Method: auth.MethodSigV4}
	if a.replay != nil && !in.presigned {
		// Only requests that write spend a replay entry, so the entry is
		// claimed by the handler once it knows the operation (and has
		// authorized it), not here.
		owner, sig, expires := in.accessKey, in.signature, reqTime.Add(a.skew)
		p.Claim = func(ctx context.Context) error { return a.claim(ctx, owner, sig, expires) }
	}
	return p, nil
}

// claim records a header signature in the replay store for as long as
// the clock check would accept it. A replay is AccessDenied; an access key
// over its share of the store, or a store that cannot answer, SlowDown
// with Retry-After (SDKs retry SlowDown with backoff, re-signing).
func (a *Authenticator) claim(ctx context.Context, owner, sig string, expires time.Time) error {
	ttl := expires.Sub(a.now())
	if ttl < 0 {
		// The window closed between authentication and the claim (a slow
		// policy engine): a copy claimed now would no longer be refused.
		return s3err.ErrRequestTimeTooSkewed
	}
	fresh, err := a.replay.Claim(ctx, owner, sig, max(ttl, time.Millisecond))
	var share *ShareError
	switch {
	case err == nil && fresh:
		return nil
	case err == nil:
		a.log.Debug("sigv4 authentication refused", slog.String("code", s3err.ErrAccessDenied.Code), slog.String("reason", "replay"))
		return s3err.ErrAccessDenied.WithMessage("The request signature has already been used.")
	case errors.As(err, &share):
		return replaySlowDown(share.RetryAfter)
	case errors.Is(err, ErrReplayShare):
		return replaySlowDown(time.Second)
	default:
		return s3err.ErrSlowDown.WithHeader("Retry-After", "1").WithCause(fmt.Errorf("sigv4: replay store: %w", err))
	}
}

func replaySlowDown(retry time.Duration) *s3err.Error {
	secs := int64(max((retry+time.Second-1)/time.Second, 1))
	return s3err.ErrSlowDown.
		WithMessage("Please reduce your request rate: this access key has too many recent signed writes.").
		WithHeader("Retry-After", strconv.FormatInt(secs, 10))
}

func equalHex(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// scopeError is the error a bad credential scope gets in each form.
func scopeError(in *sigInput, msg string) *s3err.Error {
	if in.presigned {
		return s3err.ErrAuthorizationQueryParametersError.WithMessage("Error parsing the X-Amz-Credential parameter; %s", msg)
	}
	return s3err.ErrAuthorizationHeaderMalformed.WithMessage("The authorization header is malformed; %s", msg)
}

func (a *Authenticator) checkScope(in *sigInput) *s3err.Error {
	if in.region != a.region {
		return scopeError(in, fmt.Sprintf("the region '%s' is wrong; expecting '%s'", truncate(in.region), a.region))
	}
	if in.service != a.service {
		return scopeError(in, fmt.Sprintf("incorrect service '%s'. This endpoint belongs to '%s'.", truncate(in.service), a.service))
	}
	hasHost, hasSHA := false, false
	for _, h := range in.signedHeaders {
		switch h {
		case "host":
			hasHost = true
		case "x-amz-content-sha256":
			hasSHA = true
		}
	}
	if !hasHost {
		if in.presigned {
			return s3err.ErrAuthorizationQueryParametersError.WithMessage("Query-string authentication requires the host header to be signed.")
		}
		return s3err.ErrAccessDenied.WithMessage("There were headers present in the request which were not signed: host")
	}
	if !in.presigned && !hasSHA && a.genericPayload == nil {
		return s3err.ErrAccessDenied.WithMessage("There were headers present in the request which were not signed: x-amz-content-sha256")
	}
	return nil
}

// checkTime parses the request time and checks it against the scope
// date, the clock skew and, for presigned URLs, the expiry.
func (a *Authenticator) checkTime(r *http.Request, in *sigInput) (time.Time, *s3err.Error) {
	var t time.Time
	if in.presigned {
		var err error
		t, err = time.Parse(amzDateLayout, in.amzDate)
		if err != nil {
			return t, s3err.ErrAuthorizationQueryParametersError.WithMessage("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
		}
	} else {
		var err error
		if v := r.Header.Get("X-Amz-Date"); v != "" {
			t, err = time.Parse(amzDateLayout, v)
		} else if v := r.Header.Get("Date"); v != "" {
			t, err = http.ParseTime(v)
		} else {
			return t, s3err.ErrAccessDenied.WithMessage("AWS authentication requires a valid Date or x-amz-date header")
		}
		if err != nil {
			return t, s3err.ErrAccessDenied.WithMessage("AWS authentication requires a valid Date or x-amz-date header")
		}
	}
	if t.UTC().Format("20060102") != in.scopeDate {
		return t, scopeError(in, fmt.Sprintf("the credential date '%s' does not match the request date.", in.scopeDate))
	}
	now := a.now()
	if in.presigned {
		if t.Sub(now) > a.skew {
			return t, s3err.ErrAccessDenied.WithMessage("Request is not valid yet")
		}
		if now.After(t.Add(time.Duration(in.expires) * time.Second)) {
			return t, s3err.ErrAccessDenied.WithMessage("Request has expired")
		}
		return t, nil
	}
	if d := now.Sub(t); d > a.skew || -d > a.skew {
		return t, s3err.ErrRequestTimeTooSkewed
	}
	return t, nil
}

// checkToken enforces session tokens: a credential that has one requires
// it, signed, and a request carrying one needs a credential that has it.
func checkToken(r *http.Request, in *sigInput, cred *credential) *s3err.Error {
	token, has, signed := in.token, in.hasToken, in.hasToken
	if !in.presigned {
		vs := r.Header.Values("X-Amz-Security-Token")
		has = len(vs) > 0
		if has {
			token = vs[0]
			if len(vs) > 1 {
				return s3err.ErrInvalidToken
			}
		}
		for _, h := range in.signedHeaders {
			if h == "x-amz-security-token" {
				signed = true
			}
		}
	}
	switch {
	case !has && cred.token == "":
		return nil
	case !has:
		return s3err.ErrAccessDenied.WithMessage("This credential requires a session token (x-amz-security-token).")
	case cred.token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(cred.token)) != 1:
		return s3err.ErrInvalidToken
	case !signed:
		return s3err.ErrAccessDenied.WithMessage("There were headers present in the request which were not signed: x-amz-security-token")
	}
	return nil
}

// unsignedAmzHeader returns the (alphabetically first) x-amz-* header of
// the request that the signature does not cover, or "". S3 refuses such a
// request: the header would otherwise reach the backend unauthenticated
// (metadata, tagging, checksums, x-amz-decoded-content-length, …). As in
// S3, a presigned URL may come with an unsigned x-amz-content-sha256.
func unsignedAmzHeader(r *http.Request, in *sigInput) string {
	first := ""
	for name := range r.Header {
		lower := strings.ToLower(name)
		if !strings.HasPrefix(lower, "x-amz-") || in.presigned && lower == "x-amz-content-sha256" {
			continue
		}
		if !slices.Contains(in.signedHeaders, lower) && (first == "" || lower < first) {
			first = lower
		}
	}
	return first
}

// payloadHash returns the payload hash the signature covers and checks
// that it names a supported mode.
func (a *Authenticator) payloadHash(r *http.Request, in *sigInput) (string, *s3err.Error) {
	v := r.Header.Get("X-Amz-Content-Sha256")
	if v == "" && in.presigned {
		for _, q := range in.query {
			if q.key == "X-Amz-Content-Sha256" {
				v = q.value
			}
		}
		if v == "" && a.genericPayload == nil {
			v = UnsignedPayload
		}
	}
	if v == "" {
		if a.genericPayload != nil {
			return a.genericPayload(r), nil
		}
		return "", s3err.ErrInvalidRequest.WithMessage("Missing required header for this request: x-amz-content-sha256")
	}
	switch v {
	case UnsignedPayload, StreamingPayload, StreamingPayloadTrail, StreamingUnsignedTrail:
		return v, nil
	case "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD", "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER":
		return "", s3err.ErrNotImplemented.WithMessage("SigV4a streaming payloads are not supported.")
	}
	if len(v) == 64 && isLowerHex(strings.ToLower(v)) {
		return v, nil
	}
	return "", s3err.ErrInvalidArgument.WithMessage("x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.")
}

// wrapBody installs the verifying reader for the payload mode.
func (a *Authenticator) wrapBody(r *http.Request, in *sigInput, payloadHash string, key []byte, amzDate, scope string) *s3err.Error {
	if a.genericPayload != nil && r.Header.Get("X-Amz-Content-Sha256") == "" {
		return nil
	}
	switch payloadHash {
	case UnsignedPayload:
		return nil
	case StreamingPayload, StreamingPayloadTrail, StreamingUnsignedTrail:
		return a.wrapChunked(r, in, payloadHash, key, amzDate, scope)
	}
	if r.Body == nil || r.Body == http.NoBody {
		if !strings.EqualFold(payloadHash, emptySHA256Hex) {
			return s3err.ErrXAmzContentSHA256Mismatch
		}
		return nil
	}
	r.Body = newHashReader(r.Body, r.ContentLength, strings.ToLower(payloadHash))
	return nil
}

func (a *Authenticator) wrapChunked(r *http.Request, in *sigInput, mode string, key []byte, amzDate, scope string) *s3err.Error {
	return wrapChunked(r, chunkedConfig{
		signed:  mode != StreamingUnsignedTrail,
		trailer: mode != StreamingPayload,
		key:     key,
		amzDate: amzDate,
		scope:   scope,
		seed:    in.signature,
	})
}

// DecodeFraming removes the aws-chunked framing of a request that no SigV4
// authenticator verified: a bucket with anonymous or JWT authentication
// receiving a body from an S3 client that signs with credentials Mizuchi
// does not check, or that sends STREAMING-UNSIGNED-PAYLOAD-TRAILER. Chunk
// and trailer signatures cannot be checked without the secret and are
// skipped; a trailing checksum is still verified. Requests with other
// payloads, and bodies Authenticate already decoded, are left alone.
func DecodeFraming(r *http.Request) *s3err.Error {
	if _, done := r.Body.(*ChunkedReader); done {
		return nil
	}
	mode := r.Header.Get("X-Amz-Content-Sha256")
	switch mode {
	case StreamingPayload, StreamingPayloadTrail, StreamingUnsignedTrail:
	default:
		return nil
	}
	return wrapChunked(r, chunkedConfig{
		signed:     mode != StreamingUnsignedTrail,
		unverified: true,
		trailer:    mode != StreamingPayload,
	})
}

// wrapChunked installs a ChunkedReader configured by cfg (its length and
// checksum come from the request headers).
func wrapChunked(r *http.Request, cfg chunkedConfig) *s3err.Error {
	dl := r.Header.Get("X-Amz-Decoded-Content-Length")
	if dl == "" {
		return s3err.ErrMissingContentLength.WithMessage("You must provide the x-amz-decoded-content-length header for aws-chunked uploads.")
	}
	n, err := strconv.ParseInt(dl, 10, 64)
	if err != nil || n < 0 || !isDigits(dl) {
		return s3err.ErrInvalidArgument.WithMessage("x-amz-decoded-content-length is not a valid length.")
	}
	cfg.decodedLength = n
	if cfg.trailer {
		t := strings.ToLower(strings.TrimSpace(r.Header.Get("X-Amz-Trailer")))
		if t != "" {
			alg, ok := strings.CutPrefix(t, "x-amz-checksum-")
			if !ok || checksum.New(alg) == nil {
				return s3err.ErrInvalidRequest.WithMessage("The value specified in the x-amz-trailer header is not supported")
			}
			cfg.checksumAlg = strings.ToUpper(alg)
		}
	}
	body := r.Body
	if body == nil {
		body = http.NoBody
	}
	r.Body = newChunkedReader(body, cfg)
	r.ContentLength = n
	r.Header.Set("Content-Length", strconv.FormatInt(n, 10))
	r.Header.Del("X-Amz-Decoded-Content-Length")
	removeAWSChunked(r.Header)
	return nil
}

// removeAWSChunked drops aws-chunked from Content-Encoding, deleting the
// header when nothing else remains.
func removeAWSChunked(h http.Header) {
	var keep []string
	for _, v := range h.Values("Content-Encoding") {
		for tok := range strings.SplitSeq(v, ",") {
			tok = strings.TrimSpace(tok)
			if tok != "" && !strings.EqualFold(tok, "aws-chunked") {
				keep = append(keep, tok)
			}
		}
	}
	if len(keep) == 0 {
		h.Del("Content-Encoding")
		return
	}
	h.Set("Content-Encoding", strings.Join(keep, ","))
}

// Method names the authentication method in metrics.
func (a *Authenticator) Method() auth.Method { return auth.MethodSigV4 }

var _ auth.Authenticator = (*Authenticator)(nil)

// NewDefaultReplayStore is the in-memory replay store sigv4.New builds for
// cfg when Options.ReplayStore is nil. A caller keeps one to share it
// between Authenticators, e.g. across configuration reloads.
func NewDefaultReplayStore(cfg config.SigV4) *MemoryReplayStore {
	skew := time.Duration(cfg.MaxClockSkewSeconds) * time.Second
	if skew <= 0 {
		skew = defaultClockSkew
	}
	return newDefaultReplayStore(cfg, skew, time.Now)
}

func newDefaultReplayStore(cfg config.SigV4, skew time.Duration, now func() time.Time) *MemoryReplayStore {
	n := cfg.ReplayMaxEntries
	if n <= 0 {
		n = defaultReplayRate * int(max(skew/time.Second, 1))
	}
	return NewMemoryReplayStore(MemoryReplayOptions{MaxEntries: n, Slot: max(skew/replaySlots, time.Second), Now: now})
}
