package config

import (
	"crypto/x509"
	"fmt"
	"mime"
	"net"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// S3's limits, which every backend keeps so clients behave the same.
const (
	s3MinPartSize   Size = 5 << 20
	s3MaxPartSize   Size = 5 << 30
	s3MaxPutSize    Size = 5 << 30
	s3MaxObjectSize Size = 5 << 40
	s3MaxParts           = 10000
)

// reservedSegments are first path segments the S3 listener answers itself.
var reservedSegments = map[string]bool{"health": true, "healthz": true, "readyz": true}

var (
	bucketNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	headerNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	placeholder  = regexp.MustCompile(`\{[^{}]*\}`)
	fgaTemplates = map[string]bool{"{subject}": true, "{bucket}": true, "{key}": true, "{prefix}": true}
)

// Validate reports every problem of the configuration at once, as an
// *Errors (nil when valid). Messages carry the line of the offending key
// when the configuration came from Parse.
func (c *Config) Validate() error {
	errs := c.check().errs
	if len(errs) == 0 {
		return nil
	}
	return &Errors{Problems: sortProblems(errs)}
}

// Warnings lists findings that are allowed but deserve attention: an
// anonymous bucket or the metrics listener on a non-loopback address,
// credentials over plain HTTP, sections that are configured but disabled,
// and the use of the built-in default.
func (c *Config) Warnings() []Problem {
	return sortProblems(c.check().warns)
}

type checker struct {
	c     *Config
	errs  []Problem
	warns []Problem
}

func (k *checker) problem(path, format string, args ...any) Problem {
	return Problem{Source: k.c.Source, Line: k.c.lineOf(path), Path: path, Message: fmt.Sprintf(format, args...)}
}

func (k *checker) errf(path, format string, args ...any) {
	k.errs = append(k.errs, k.problem(path, format, args...))
}

func (k *checker) warnf(path, format string, args ...any) {
	k.warns = append(k.warns, k.problem(path, format, args...))
}

func (c *Config) check() *checker {
	k := &checker{c: c}
	if c.Source == SourceBuiltin {
		k.warnf("", "no configuration file: using the built-in default; uploads to %q are unauthenticated and the server listens on loopback only (%s)", "/uploads", c.Server.Address)
	}
	k.server()
	k.buckets()
	k.metrics()
	k.tracing()
	k.logging()
	k.state()
	k.events()
	return k
}

func (k *checker) server() {
	s := k.c.Server
	k.hostPort("server.address", s.Address)
	if (s.TLS.CertFile == "") != (s.TLS.KeyFile == "") {
		if s.TLS.CertFile == "" {
			k.errf("server.tls.cert_file", "required when server.tls.key_file is set")
		} else {
			k.errf("server.tls.key_file", "required when server.tls.cert_file is set")
		}
	}
	k.clientCertificates()
	k.atLeast("server.read_header_timeout_seconds", s.ReadHeaderTimeoutSeconds, 1)
	k.atLeast("server.body_idle_timeout_seconds", s.BodyIdleTimeoutSeconds, 0)
	k.atLeast("server.idle_timeout_seconds", s.IdleTimeoutSeconds, 1)
	k.atLeast("server.shutdown_grace_seconds", s.ShutdownGraceSeconds, 0)
	if s.MaxHeaderBytes < 4096 || s.MaxHeaderBytes > 1<<24 {
		k.errf("server.max_header_bytes", "must be between 4096 and 16777216, got %d", s.MaxHeaderBytes)
	}
	for i, p := range s.TrustedProxies {
		if !validCIDR(p) {
			k.errf(fmt.Sprintf("server.trusted_proxies[%d]", i), "%q is not a CIDR (e.g. 10.0.0.0/8) or an IP address", p)
		}
	}
	k.atLeast("server.max_connections", s.MaxConnections, 0)
	k.atLeast("server.max_inflight_uploads", s.MaxInflightUploads, 0)
	if z := s.ZeroCopy.PipeBufferSize; z < 4096 || z > 1<<30 {
		k.errf("server.zero_copy.pipe_buffer_size", "must be between 4KiB and 1GiB, got %s", z)
	}
}

func validCIDR(s string) bool {
	if _, err := netip.ParsePrefix(s); err == nil {
		return true
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

func (k *checker) buckets() {
	c := k.c
	if len(c.Buckets) == 0 {
		k.errf("buckets", "at least one bucket is required")
		return
	}
	names := map[string]string{}
	prefixes := map[string]string{}
	for i := range c.Buckets {
		b := &c.Buckets[i]
		p := fmt.Sprintf("buckets[%d]", i)
		switch {
		case b.Name == "":
			k.errf(p+".name", "required")
		case !bucketNameRE.MatchString(b.Name):
			k.errf(p+".name", "%q: use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit", b.Name)
		case names[b.Name] != "":
			k.errf(p+".name", "duplicate name %q (also %s)", b.Name, names[b.Name])
		default:
			names[b.Name] = p
		}
		if msg := prefixProblem(b.PathPrefix); msg != "" {
			k.errf(p+".path_prefix", "%s", msg)
		} else if other := prefixes[b.PathPrefix]; other != "" {
			k.errf(p+".path_prefix", "duplicate prefix %q (also %s)", b.PathPrefix, other)
		} else {
			prefixes[b.PathPrefix] = p
		}
		k.backend(b, p)
		k.cleanup(b, p)
		k.auth(b, p)
		k.authz(b, p)
		k.upload(b, p)
		k.cors(b.CORS, p+".cors")
		k.bucketEvents(b, p)
		k.limits(b, p)
	}
	k.storageOverlaps()
}

func (k *checker) cors(c *CORS, p string) {
	if c == nil {
		return
	}
	if len(c.AllowedOrigins) == 0 {
		k.errf(p+".allowed_origins", "required: list the origins (scheme://host[:port]) or \"*\"")
	}
	for i, o := range c.AllowedOrigins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
			k.errf(fmt.Sprintf("%s.allowed_origins[%d]", p, i), "%q is not an origin (scheme://host[:port]) or \"*\"", o)
		}
	}
	for i, m := range c.AllowedMethods {
		switch m {
		case "PUT", "POST", "DELETE", "GET", "HEAD":
		default:
			k.errf(fmt.Sprintf("%s.allowed_methods[%d]", p, i), "%q is not one of PUT, POST, DELETE, GET, HEAD", m)
		}
	}
	k.atLeast(p+".max_age_seconds", c.MaxAgeSeconds, 0)
}

// prefixProblem says what is wrong with a path prefix, or "".
func prefixProblem(p string) string {
	switch {
	case p == "":
		return "required"
	case !strings.HasPrefix(p, "/"):
		return fmt.Sprintf("%q must start with /", p)
	case p == "/":
		return `"/" would take every path; use a named prefix such as "/uploads"`
	case strings.HasSuffix(p, "/"):
		return fmt.Sprintf("%q must not end with /", p)
	case strings.Contains(p, "//"):
		return fmt.Sprintf("%q must not contain //", p)
	case strings.ContainsAny(p, "?#%\\"):
		return fmt.Sprintf("%q must not contain ?, #, %% or \\ (write the prefix unencoded)", p)
	}
	for _, r := range p {
		if r <= ' ' || r == 0x7f {
			return fmt.Sprintf("%q must not contain spaces or control characters", p)
		}
	}
	segs := strings.Split(p[1:], "/")
	for _, s := range segs {
		if s == "." || s == ".." || strings.Contains(s, "..") {
			return fmt.Sprintf("%q must not contain . or .. segments", p)
		}
	}
	if reservedSegments[segs[0]] {
		return fmt.Sprintf("%q overlaps the health endpoints (/health, /healthz, /readyz)", p)
	}
	return ""
}

func (k *checker) backend(b *Bucket, p string) {
	switch {
	case b.S3 != nil && b.Filesystem != nil:
		k.errf(p, "set exactly one of s3 and filesystem, not both")
	case b.S3 == nil && b.Filesystem == nil:
		k.errf(p, "a backend is required: set s3 or filesystem")
	}
	if s := b.S3; s != nil {
		sp := p + ".s3"
		if s.Bucket == "" {
			k.errf(sp+".bucket", "required")
		}
		if s.Region == "" {
			k.errf(sp+".region", "required")
		}
		if s.Endpoint != "" {
			k.url(sp+".endpoint", s.Endpoint, "http", "https")
		}
		if (s.AccessKey == "") != (s.SecretKey == "") {
			if s.AccessKey == "" {
				k.errf(sp+".access_key", "required when secret_key is set (or set neither to use the AWS credential chain)")
			} else {
				k.errf(sp+".secret_key", "required when access_key is set (or set neither to use the AWS credential chain)")
			}
		}
		if s.SessionToken != "" && s.AccessKey == "" {
			k.errf(sp+".session_token", "needs access_key and secret_key")
		}
		if strings.HasPrefix(s.KeyPrefix, "/") || hasDotSegment(s.KeyPrefix) {
			k.errf(sp+".key_prefix", "%q must not start with / or contain . or .. segments", s.KeyPrefix)
		}
		k.atLeast(sp+".stall_timeout_seconds", s.StallTimeoutSeconds, 1)
		k.atLeast(sp+".response_header_timeout_seconds", s.ResponseHeaderTimeoutSeconds, 1)
		if b.Upload.MinPartSize < s3MinPartSize && k.c.isSet(p+".upload.min_part_size") {
			k.warnf(p+".upload.min_part_size", "below 5MiB: the S3 backend still refuses parts smaller than 5MiB (except the last)")
		}
	}
	if f := b.Filesystem; f != nil && f.Root == "" {
		k.errf(p+".filesystem.root", "required")
	}
	if f := b.Filesystem; f != nil && f.StaleUploadSeconds < 0 {
		k.errf(p+".filesystem.stale_upload_seconds", "must not be negative")
	}
}

func hasDotSegment(s string) bool {
	for _, seg := range strings.Split(s, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

func (k *checker) auth(b *Bucket, p string) {
	a := b.Auth
	if a == nil || !a.Enabled {
		if a != nil && (a.JWT != nil || a.SigV4 != nil) {
			k.warnf(p+".auth.enabled", "authentication is disabled: the jwt/sigv4 settings are ignored and uploads are anonymous")
		}
		if !isLoopback(k.c.Server.Address) {
			k.warnf(p, "bucket %q accepts anonymous uploads on %s, which is not a loopback address", b.Name, k.c.Server.Address)
		}
	}
	if a == nil {
		return
	}
	ap := p + ".auth"
	if a.Enabled && a.JWT == nil && a.SigV4 == nil && a.TLSClient == nil {
		k.errf(ap, "enabled without a method: configure jwt, sigv4 and/or tls_client")
	}
	if a.Enabled && !k.c.Server.TLS.Enabled() && !isLoopback(k.c.Server.Address) {
		k.warnf(ap, "credentials travel over plain HTTP on %s: configure server.tls or terminate TLS in front", k.c.Server.Address)
	}
	if j := a.JWT; j != nil {
		k.jwt(j, ap+".jwt")
	}
	if s := a.SigV4; s != nil {
		k.sigv4(s, ap+".sigv4")
	}
	if t := a.TLSClient; t != nil {
		k.tlsClient(t, ap+".tls_client")
	}
}

func (k *checker) jwt(j *JWT, p string) {
	family, known := jwtAlgorithms[j.Algorithm]
	switch {
	case j.Algorithm == "":
		k.errf(p+".algorithm", "required (one of %s)", jwtAlgorithmList())
	case strings.EqualFold(j.Algorithm, "none"):
		k.errf(p+".algorithm", `"none" is never accepted: unsigned tokens prove nothing`)
	case !known:
		hint := ""
		for alg := range jwtAlgorithms {
			if strings.EqualFold(alg, j.Algorithm) {
				hint = fmt.Sprintf(" (did you mean %q?)", alg)
			}
		}
		k.errf(p+".algorithm", "unknown algorithm %q%s", j.Algorithm, hint)
	case family == "HS":
		if j.Secret == "" {
			k.errf(p+".secret", "required for %s", j.Algorithm)
		} else if len(j.Secret) < 32 {
			k.warnf(p+".secret", "shorter than 32 bytes: HMAC secrets should be long and random")
		}
		if j.PublicKeyFile != "" {
			k.errf(p+".public_key_file", "not used by %s (HMAC uses secret)", j.Algorithm)
		}
		if j.JWKSURL != "" {
			k.errf(p+".jwks_url", "not used by %s (HMAC uses secret)", j.Algorithm)
		}
	default:
		if j.Secret != "" {
			k.errf(p+".secret", "only for HS256/384/512; %s needs public_key_file or jwks_url", j.Algorithm)
		}
		switch {
		case j.PublicKeyFile == "" && j.JWKSURL == "":
			k.errf(p, "%s needs public_key_file or jwks_url", j.Algorithm)
		case j.PublicKeyFile != "" && j.JWKSURL != "":
			k.errf(p, "set one of public_key_file and jwks_url, not both")
		}
	}
	if j.JWKSURL != "" && k.url(p+".jwks_url", j.JWKSURL, "http", "https") {
		if u, _ := url.Parse(j.JWKSURL); u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
			k.warnf(p+".jwks_url", "fetched over plain HTTP: anyone on the path can substitute keys")
		}
	}
	k.atLeast(p+".cache_ttl_seconds", j.CacheTTLSeconds, 0)
	k.atLeast(p+".leeway_seconds", j.LeewaySeconds, 0)
	if len(j.TokenSources) == 0 {
		k.errf(p+".token_sources", "at least one token source is required (omit the key for the default: bearer)")
	}
	seen := map[TokenSource]bool{}
	for i, s := range j.TokenSources {
		sp := fmt.Sprintf("%s.token_sources[%d]", p, i)
		switch s.Type {
		case "bearer":
			if s.Name != "" {
				k.errf(sp+".name", "not used by type bearer (the Authorization header)")
			}
		case "query", "cookie", "header":
			switch {
			case s.Name == "":
				k.errf(sp+".name", "required for type %s", s.Type)
			case s.Type == "header" && !headerNameRE.MatchString(s.Name):
				k.errf(sp+".name", "%q is not a valid header name", s.Name)
			case s.Type == "cookie" && !headerNameRE.MatchString(s.Name):
				k.errf(sp+".name", "%q is not a valid cookie name", s.Name)
			}
		case "":
			k.errf(sp+".type", "required (bearer, query, header or cookie)")
		default:
			k.errf(sp+".type", "unknown type %q (want bearer, query, header or cookie)", s.Type)
		}
		if seen[s] {
			k.errf(sp, "duplicate token source")
		}
		seen[s] = true
	}
}

func (k *checker) sigv4(s *SigV4, p string) {
	if s.Region == "" {
		k.errf(p+".region", "required")
	}
	k.atLeast(p+".max_clock_skew_seconds", s.MaxClockSkewSeconds, 1)
	k.atLeast(p+".replay_max_entries", s.ReplayMaxEntries, 0)
	if len(s.Credentials) == 0 {
		k.errf(p+".credentials", "at least one credential is required")
	}
	keys := map[string]string{}
	for i, cr := range s.Credentials {
		cp := fmt.Sprintf("%s.credentials[%d]", p, i)
		switch {
		case cr.AccessKey == "":
			k.errf(cp+".access_key", "required")
		case strings.ContainsAny(cr.AccessKey, "/,= \t"):
			k.errf(cp+".access_key", "must not contain '/', ',', '=' or spaces")
		case keys[cr.AccessKey] != "":
			k.errf(cp+".access_key", "duplicate access key (also %s)", keys[cr.AccessKey])
		default:
			keys[cr.AccessKey] = cp
		}
		if cr.SecretKey == "" {
			k.errf(cp+".secret_key", "required")
		}
		if cr.Subject == "" {
			k.errf(cp+".subject", "required")
		}
	}
}

func (k *checker) authz(b *Bucket, p string) {
	z := b.Authz
	if z == nil {
		return
	}
	zp := p + ".authz"
	switch {
	case z.OPA != nil && z.OpenFGA != nil:
		k.errf(zp, "set one of opa and openfga, not both")
	case z.Enabled && z.OPA == nil && z.OpenFGA == nil:
		k.errf(zp, "enabled without an engine: configure opa or openfga")
	case !z.Enabled && (z.OPA != nil || z.OpenFGA != nil):
		k.warnf(zp+".enabled", "authorization is disabled: the engine settings are ignored and every authenticated upload is allowed")
	}
	if z.Enabled && (b.Auth == nil || !b.Auth.Enabled) {
		k.warnf(zp, "authorization without authentication: every request reaches the policy as anonymous")
	}
	if o := z.OPA; o != nil {
		k.opa(o, zp+".opa")
	}
	if f := z.OpenFGA; f != nil {
		k.openfga(f, zp+".openfga")
	}
}

func (k *checker) opa(o *OPA, p string) {
	switch {
	case o.URL == "" && o.PolicyFile == "":
		k.errf(p, "set url (a remote OPA server) or policy_file (embedded evaluation)")
	case o.URL != "" && o.PolicyFile != "":
		k.errf(p, "set one of url and policy_file, not both")
	case o.URL != "":
		k.url(p+".url", o.URL, "http", "https")
		if o.Query != "" {
			k.errf(p+".query", "only for an embedded policy_file; a remote server uses policy_path")
		}
		switch pp := o.PolicyPath; {
		case strings.HasPrefix(pp, "/") || strings.HasSuffix(pp, "/") || strings.Contains(pp, "//") || hasDotSegment(pp):
			k.errf(p+".policy_path", "%q must be a slash-separated package path such as mizuchi/allow", pp)
		case strings.HasPrefix(pp, "data.") || strings.HasPrefix(pp, "data/"):
			k.errf(p+".policy_path", "%q: write the path without data (e.g. mizuchi/allow for data.mizuchi.allow)", pp)
		}
	case o.PolicyFile != "":
		if o.PolicyPath != "" {
			k.errf(p+".policy_path", "only for a remote url; an embedded policy_file uses query")
		}
		if !strings.HasPrefix(o.Query, "data.") {
			k.errf(p+".query", "%q must be a rule reference such as data.mizuchi.allow", o.Query)
		}
	}
	k.atLeast(p+".timeout_seconds", o.TimeoutSeconds, 1)
	k.atLeast(p+".cache_ttl_seconds", o.CacheTTLSeconds, 0)
	k.atLeast(p+".cache_max_entries", o.CacheMaxEntries, 0)
}

func (k *checker) openfga(f *OpenFGA, p string) {
	switch f.Transport {
	case "grpc":
		if f.URL == "" {
			k.errf(p+".url", "required (host:port of the gRPC API)")
		} else if strings.Contains(f.URL, "://") {
			k.errf(p+".url", "%s: the grpc transport takes host:port, without a scheme", quoteAddr(f.URL))
		} else {
			k.hostPort(p+".url", f.URL)
		}
	case "http":
		if f.URL == "" {
			k.errf(p+".url", "required (http:// or https:// base URL)")
		} else {
			k.url(p+".url", f.URL, "http", "https")
		}
	default:
		k.errf(p+".transport", "unknown transport %q (want grpc or http)", f.Transport)
	}
	if f.StoreID == "" {
		k.errf(p+".store_id", "required")
	}
	k.fgaTemplate(p+".user", f.User, true)
	k.fgaTemplate(p+".relation", f.Relation, false)
	k.fgaTemplate(p+".object", f.Object, true)
	for i, o := range f.Objects {
		k.fgaTemplate(fmt.Sprintf("%s.objects[%d]", p, i), o, true)
	}
	for i, t := range f.ContextualTuples {
		tp := fmt.Sprintf("%s.contextual_tuples[%d]", p, i)
		k.fgaTemplate(tp+".user", t.User, true)
		k.fgaTemplate(tp+".relation", t.Relation, false)
		k.fgaTemplate(tp+".object", t.Object, true)
	}
	k.atLeast(p+".timeout_seconds", f.TimeoutSeconds, 1)
	k.atLeast(p+".cache_ttl_seconds", f.CacheTTLSeconds, 0)
	k.atLeast(p+".cache_max_entries", f.CacheMaxEntries, 0)
	k.openfgaConnection(f, p)
}

// openfgaConnection checks tls, ca_file and api_token. The token itself
// is never quoted.
func (k *checker) openfgaConnection(f *OpenFGA, p string) {
	// secure: the connection is encrypted; host: where it goes; known:
	// the url parsed, so the checks below mean something.
	var secure, known bool
	var host string
	switch f.Transport {
	case "grpc":
		secure = f.TLS
		if h, _, err := net.SplitHostPort(f.URL); err == nil {
			host, known = h, true
		}
	case "http":
		if f.TLS {
			k.errf(p+".tls", "only for the grpc transport; over http the url decides: use an https:// url")
		}
		if u, err := url.Parse(f.URL); err == nil && u.Host != "" {
			secure, host, known = u.Scheme == "https", u.Hostname(), true
		}
	}
	if f.CAFile != "" {
		if known && !secure {
			if f.Transport == "http" {
				k.errf(p+".ca_file", "only for an https:// url")
			} else {
				k.errf(p+".ca_file", "only with tls: true")
			}
		}
		if pem, err := os.ReadFile(f.CAFile); err != nil {
			k.errf(p+".ca_file", "cannot be read: %v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			k.errf(p+".ca_file", "%s holds no PEM certificate", f.CAFile)
		}
	}
	if f.APIToken != "" {
		if strings.IndexFunc(f.APIToken, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
			k.errf(p+".api_token", "must not contain spaces or control characters")
		}
		if known && !secure && !isLoopbackHost(host) {
			k.warnf(p+".api_token", "sent in plaintext to %s: use tls: true (grpc) or an https:// url (http)", host)
		}
	}
}

// fgaTemplate checks an OpenFGA user/relation/object template: known
// placeholders only, balanced braces, and type:id form where needed.
func (k *checker) fgaTemplate(path, tmpl string, typed bool) {
	if tmpl == "" {
		k.errf(path, "required")
		return
	}
	for _, ph := range placeholder.FindAllString(tmpl, -1) {
		if !fgaTemplates[ph] {
			k.errf(path, "unknown placeholder %s (want {subject}, {bucket}, {key} or {prefix})", ph)
			return
		}
	}
	if strings.ContainsAny(placeholder.ReplaceAllString(tmpl, ""), "{}") {
		k.errf(path, "%q has an unbalanced { or }", tmpl)
		return
	}
	if typed && !strings.Contains(tmpl, ":") {
		k.errf(path, "%q must have the form type:id, e.g. user:{subject}", tmpl)
	}
	if !typed && strings.ContainsAny(tmpl, ": ") {
		k.errf(path, "%q is not a relation name", tmpl)
	}
}

func (k *checker) upload(b *Bucket, p string) {
	u := b.Upload
	up := p + ".upload"
	if u.MaxObjectSize < 1 || u.MaxObjectSize > s3MaxObjectSize {
		k.errf(up+".max_object_size", "must be between 1 byte and 5TiB, got %s", u.MaxObjectSize)
	}
	if u.MinPartSize < 1 || u.MinPartSize > s3MinPartSize {
		k.errf(up+".min_part_size", "must be between 1 byte and 5MiB, got %s", u.MinPartSize)
	}
	minPart := min(max(u.MinPartSize, 1), s3MinPartSize)
	if u.PartSize < minPart || u.PartSize > s3MaxPartSize {
		k.errf(up+".part_size", "must be between %s (min_part_size) and 5GiB, got %s", minPart, u.PartSize)
	}
	if u.MultipartThreshold < minPart || u.MultipartThreshold > s3MaxPutSize {
		k.errf(up+".multipart_threshold", "must be between %s (min_part_size) and 5GiB (the largest single PUT), got %s", minPart, u.MultipartThreshold)
	}
	if u.ConcurrentParts < 1 || u.ConcurrentParts > 256 {
		k.errf(up+".concurrent_parts", "must be between 1 and 256, got %d", u.ConcurrentParts)
	}
	if u.MaxMemoryBuffer < 0 {
		k.errf(up+".max_memory_buffer", "must not be negative")
	}
	if u.PartSize > 0 && u.PartSize <= s3MaxPartSize && u.MaxObjectSize > u.PartSize*s3MaxParts && u.MaxObjectSize <= s3MaxObjectSize {
		k.warnf(up+".part_size", "%s × 10000 parts is less than max_object_size %s: large single PUTs need bigger parts", u.PartSize, u.MaxObjectSize)
	}
	for i, ct := range u.AllowedContentTypes {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil || len(params) > 0 || !strings.Contains(mt, "/") || strings.HasPrefix(mt, "*/") && mt != "*/*" {
			k.errf(fmt.Sprintf("%s.allowed_content_types[%d]", up, i), "%q is not a media type such as image/png or image/*", ct)
		}
	}
}

func (k *checker) metrics() {
	m := k.c.Metrics
	if !m.On() {
		return
	}
	if k.hostPort("metrics.address", m.Address) {
		if m.Address == k.c.Server.Address {
			k.errf("metrics.address", "must differ from server.address (%s)", m.Address)
		}
		if !isLoopback(m.Address) {
			k.warnf("metrics.address", "metrics are served on %s, which is not a loopback address", m.Address)
		}
	}
}

func (k *checker) tracing() {
	t := k.c.Tracing
	oneOf := func(path, v string, allowed ...string) {
		for _, a := range allowed {
			if v == a {
				return
			}
		}
		k.errf(path, "unknown value %q (want %s)", v, strings.Join(allowed, ", "))
	}
	oneOf("tracing.fallback", t.Fallback, "none", "console")
	oneOf("tracing.otlp.protocol", t.OTLP.Protocol, "grpc", "http/protobuf")
	oneOf("tracing.otlp.compression", t.OTLP.Compression, "gzip", "none")
	oneOf("tracing.sampling.strategy", t.Sampling.Strategy, "always", "never", "ratio", "parent_based")
	if !(t.Sampling.Ratio >= 0 && t.Sampling.Ratio <= 1) {
		k.errf("tracing.sampling.ratio", "must be between 0 and 1, got %v", t.Sampling.Ratio)
	}
	if strings.Contains(t.OTLP.Endpoint, "://") {
		k.url("tracing.otlp.endpoint", t.OTLP.Endpoint, "http", "https")
	} else {
		k.hostPort("tracing.otlp.endpoint", t.OTLP.Endpoint)
	}
	k.atLeast("tracing.otlp.timeout_seconds", t.OTLP.TimeoutSeconds, 1)
	k.atLeast("tracing.batch.max_queue_size", t.Batch.MaxQueueSize, 1)
	k.atLeast("tracing.batch.scheduled_delay_millis", t.Batch.ScheduledDelayMillis, 1)
	k.atLeast("tracing.batch.max_export_batch_size", t.Batch.MaxExportBatchSize, 1)
	if t.Batch.MaxExportBatchSize > t.Batch.MaxQueueSize {
		k.errf("tracing.batch.max_export_batch_size", "must not exceed max_queue_size (%d)", t.Batch.MaxQueueSize)
	}
	for name := range t.OTLP.Headers {
		if !headerNameRE.MatchString(name) {
			k.errf("tracing.otlp.headers."+name, "not a valid header name")
		}
	}
}

func (k *checker) logging() {
	switch k.c.Logging.Level {
	case "debug", "info", "warn", "error":
	default:
		k.errf("logging.level", "unknown level %q (want debug, info, warn or error)", k.c.Logging.Level)
	}
	switch k.c.Logging.Format {
	case "json", "text":
	default:
		k.errf("logging.format", "unknown format %q (want json or text)", k.c.Logging.Format)
	}
}

func (k *checker) atLeast(path string, v, lo int) {
	if v < lo {
		k.errf(path, "must be at least %d, got %d", lo, v)
	}
}

// hostPort checks a listen or dial address; it reports whether it is valid.
func (k *checker) hostPort(path, addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		k.errf(path, "%s is not host:port", quoteAddr(addr))
		return false
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		k.errf(path, "%s: port must be a number from 0 to 65535", quoteAddr(addr))
		return false
	}
	if strings.ContainsAny(host, " /\\") {
		k.errf(path, "%s: invalid host", quoteAddr(addr))
		return false
	}
	return true
}

// quoteAddr quotes an address for a message, unless it embeds user
// information (user:password@), which is never printed.
func quoteAddr(addr string) string {
	if strings.Contains(addr, "@") {
		return "the address (not shown: it holds user information)"
	}
	return fmt.Sprintf("%q", addr)
}

// url checks an absolute URL with one of the schemes; it reports whether
// it is valid. The URL is never echoed (it may embed credentials).
func (k *checker) url(path, raw string, schemes ...string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		k.errf(path, "not an absolute URL (want %s://host…)", strings.Join(schemes, ":// or "))
		return false
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return true
		}
	}
	k.errf(path, "scheme %q not allowed (want %s)", u.Scheme, strings.Join(schemes, " or "))
	return false
}

// isLoopback reports whether a listen address only accepts local clients.
// An empty host (":8080") listens on every interface.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	return isLoopbackHost(host)
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
