package config

// Config is the whole configuration file. Field names follow the YAML keys
// (snake_case); see docs/CONFIG.md for the reference.
type Config struct {
	Server  Server   `yaml:"server"`
	Buckets []Bucket `yaml:"buckets"`
	Metrics Metrics  `yaml:"metrics"`
	Tracing Tracing  `yaml:"tracing"`
	Logging Logging  `yaml:"logging"`
	// State is what replicas share (state.go).
	State State `yaml:"state"`
	// Events configures the outbox of upload events (see events.go).
	Events Events `yaml:"events"`

	// Source names where the configuration came from: a file path, or
	// SourceBuiltin. Not part of the YAML.
	Source string `yaml:"-"`

	// meta is filled by Parse: the line of every key, which keys were
	// written explicitly (an explicit 0 is kept, an omitted key takes its
	// default) and which paths already failed to decode.
	meta *meta
}

// Server configures the S3 listener.
type Server struct {
	// Address is host:port of the S3 listener.
	Address string `yaml:"address"`
	// TLS, when both files are set, makes Address serve HTTPS.
	TLS TLS `yaml:"tls"`
	// ReadHeaderTimeoutSeconds bounds how long a client may take to send
	// its request headers (slowloris protection).
	ReadHeaderTimeoutSeconds int `yaml:"read_header_timeout_seconds"`
	// BodyIdleTimeoutSeconds bounds how long a client may send nothing in
	// the middle of a request body (slow-body protection); the upload then
	// fails with RequestTimeout and leaves nothing behind. 0 turns it off.
	BodyIdleTimeoutSeconds int `yaml:"body_idle_timeout_seconds"`
	// IdleTimeoutSeconds closes keep-alive connections idle this long.
	IdleTimeoutSeconds int `yaml:"idle_timeout_seconds"`
	// ShutdownGraceSeconds is how long in-flight uploads may run after
	// SIGINT/SIGTERM before they are aborted.
	ShutdownGraceSeconds int `yaml:"shutdown_grace_seconds"`
	// MaxHeaderBytes limits the size of request headers.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// TrustedProxies lists CIDRs whose X-Forwarded-For is believed when
	// determining the client address.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// ZeroCopy controls splice/sendfile on the data path.
	ZeroCopy ZeroCopy `yaml:"zero_copy"`
	// UploadIDKeys seal the multipart upload ids handed to clients: the
	// first seals, every one opens (rotation). Empty: a random key per
	// process. Never printed.
	UploadIDKeys []string `yaml:"upload_id_keys"`
	// MaxConnections caps open client connections; one client address
	// gets at most a quarter. 0 derives it from the descriptor limit (see
	// docs/DEPLOYMENT.md).
	MaxConnections int `yaml:"max_connections"`
	// MaxInflightUploads caps requests whose body is being uploaded
	// (PutObject, UploadPart, CompleteMultipartUpload); one client address
	// gets at most a quarter. 0 derives it from the descriptor limit.
	MaxInflightUploads int `yaml:"max_inflight_uploads"`
	// WatchConfig reloads the configuration when its file, or a file it
	// names (keys, policies, certificates, CAs), changes; SIGHUP always
	// reloads.
	WatchConfig bool `yaml:"watch_config"`
}

// TLS names a certificate and key in PEM files.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCA is a PEM bundle; when set, clients present certificates
	// signed by it (see ClientAuth).
	ClientCA string `yaml:"client_ca"`
	// ClientAuth is require (no handshake without a valid certificate) or
	// verify_if_given (a certificate, if presented, must be valid).
	ClientAuth string `yaml:"client_auth"`
}

// Enabled reports whether TLS is configured.
func (t TLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// ZeroCopy configures kernel-assisted copies on Linux.
type ZeroCopy struct {
	// Enabled is a pointer so an omitted key takes the default (true).
	Enabled *bool `yaml:"enabled"`
	// PipeBufferSize is the pipe size used by splice, in bytes.
	PipeBufferSize Size `yaml:"pipe_buffer_size"`
}

// On reports whether zero-copy is enabled.
func (z ZeroCopy) On() bool { return z.Enabled == nil || *z.Enabled }

// Bucket maps a path prefix to a storage backend with its own auth,
// authorization and upload limits.
type Bucket struct {
	// Name is unique; it labels metrics and is the {bucket} of authz.
	Name string `yaml:"name"`
	// PathPrefix is unique and matched on whole path segments.
	PathPrefix string `yaml:"path_prefix"`
	// S3 and Filesystem: exactly one must be set.
	S3         *S3Backend         `yaml:"s3"`
	Filesystem *FilesystemBackend `yaml:"filesystem"`
	// Auth omitted means disabled (anonymous uploads).
	Auth *Auth `yaml:"auth"`
	// Authz omitted means disabled (no policy).
	Authz  *Authz `yaml:"authz"`
	Upload Upload `yaml:"upload"`
	// CORS lets browser pages on other origins upload; omitted means
	// cross-origin requests are refused (preflights get 403).
	CORS *CORS `yaml:"cors"`
	// Events are the sinks told about every object stored (see events.go).
	Events []EventSink `yaml:"events"`
	// Cleanup aborts incomplete multipart uploads; see cleanup.go.
	Cleanup *Cleanup `yaml:"cleanup"`
	// Limits are fair-use limits per subject and per bucket (limits.go).
	Limits Limits `yaml:"limits"`
}

// CORS is the cross-origin policy of a bucket, as S3's bucket CORS rules.
type CORS struct {
	// AllowedOrigins are exact origins (scheme://host[:port]) or "*".
	AllowedOrigins []string `yaml:"allowed_origins"`
	// AllowedMethods default to PUT, POST, DELETE and GET (the upload
	// operations).
	AllowedMethods []string `yaml:"allowed_methods"`
	// AllowedHeaders are request header names a page may send; "*" (the
	// default) allows any.
	AllowedHeaders []string `yaml:"allowed_headers"`
	// ExposeHeaders are response headers the page may read; the default
	// exposes ETag, x-amz-request-id, x-amz-version-id and the
	// x-amz-checksum-* headers.
	ExposeHeaders []string `yaml:"expose_headers"`
	// MaxAgeSeconds lets browsers cache a preflight answer.
	MaxAgeSeconds int `yaml:"max_age_seconds"`
}

// S3Backend stores objects in an S3-compatible service.
type S3Backend struct {
	Bucket string `yaml:"bucket"`
	Region string `yaml:"region"`
	// Endpoint is optional; empty means AWS for Region.
	Endpoint       string `yaml:"endpoint"`
	ForcePathStyle bool   `yaml:"force_path_style"`
	// AccessKey/SecretKey are optional; without them the standard AWS
	// credential chain (env, shared config, web identity, IMDS) is used.
	AccessKey    string `yaml:"access_key"`
	SecretKey    string `yaml:"secret_key"`
	SessionToken string `yaml:"session_token"`
	// KeyPrefix is prepended to every stored key.
	KeyPrefix string `yaml:"key_prefix"`
	// StallTimeoutSeconds fails a request whose body the store stopped
	// reading for this long.
	StallTimeoutSeconds int `yaml:"stall_timeout_seconds"`
	// ResponseHeaderTimeoutSeconds bounds the wait for the store's answer
	// once a request was sent (assembling a large object can be slow).
	ResponseHeaderTimeoutSeconds int `yaml:"response_header_timeout_seconds"`
}

// FilesystemBackend stores objects in a local directory.
type FilesystemBackend struct {
	// Root is created if missing; objects live at Root/<key>.
	Root string `yaml:"root"`
	// StaleUploadSeconds is the deprecated name of
	// cleanup.abort_incomplete_after_seconds.
	StaleUploadSeconds int `yaml:"stale_upload_seconds"`
}

// Auth configures authentication for a bucket.
type Auth struct {
	// Enabled false allows anonymous uploads.
	Enabled bool   `yaml:"enabled"`
	JWT     *JWT   `yaml:"jwt"`
	SigV4   *SigV4 `yaml:"sigv4"`
	// TLSClient authenticates by the client certificate verified against
	// server.tls.client_ca, tried after sigv4 and jwt.
	TLSClient *TLSClient `yaml:"tls_client"`
}

// TLSClient maps a verified client certificate to a subject.
type TLSClient struct {
	// SubjectFrom is cn (subject common name), dns_san or uri_san (the
	// first SAN of that kind).
	SubjectFrom string `yaml:"subject_from"`
}

// JWT configures bearer-token authentication.
type JWT struct {
	// Algorithm is pinned: a token's alg header never chooses the key type.
	Algorithm string `yaml:"algorithm"`
	// Secret is the HMAC key (HS* only).
	Secret string `yaml:"secret"`
	// PublicKeyFile is a PEM public key (RS*, PS*, ES*, EdDSA).
	PublicKeyFile string `yaml:"public_key_file"`
	// JWKSURL is fetched instead of a static key.
	JWKSURL         string `yaml:"jwks_url"`
	CacheTTLSeconds int    `yaml:"cache_ttl_seconds"`
	// Issuer and Audience are checked when set.
	Issuer        string        `yaml:"issuer"`
	Audience      string        `yaml:"audience"`
	LeewaySeconds int           `yaml:"leeway_seconds"`
	TokenSources  []TokenSource `yaml:"token_sources"`
}

// TokenSource says where to look for a token.
type TokenSource struct {
	// Type is bearer, query, header or cookie.
	Type string `yaml:"type"`
	// Name is the query parameter, header or cookie name (not for bearer).
	Name string `yaml:"name"`
}

// SigV4 configures AWS Signature Version 4 authentication.
type SigV4 struct {
	Region              string `yaml:"region"`
	MaxClockSkewSeconds int    `yaml:"max_clock_skew_seconds"`
	// ReplayProtection accepts each header signature only once.
	ReplayProtection bool         `yaml:"replay_protection"`
	Credentials      []Credential `yaml:"credentials"`

	// ReplayMaxEntries bounds the replay store (2500 × max_clock_skew_seconds when 0).
	ReplayMaxEntries int `yaml:"replay_max_entries"`
}

// Credential is one SigV4 access key.
type Credential struct {
	AccessKey string `yaml:"access_key"`
	SecretKey string `yaml:"secret_key"`
	// SessionToken, when set, must be presented as x-amz-security-token.
	SessionToken string `yaml:"session_token"`
	Subject      string `yaml:"subject"`
}

// Authz configures the policy engine of a bucket.
type Authz struct {
	Enabled bool     `yaml:"enabled"`
	OPA     *OPA     `yaml:"opa"`
	OpenFGA *OpenFGA `yaml:"openfga"`
}

// OPA is either a remote server (URL, PolicyPath) or an embedded policy
// (PolicyFile, Query).
type OPA struct {
	URL             string `yaml:"url"`
	PolicyPath      string `yaml:"policy_path"`
	PolicyFile      string `yaml:"policy_file"`
	Query           string `yaml:"query"`
	TimeoutSeconds  int    `yaml:"timeout_seconds"`
	CacheTTLSeconds int    `yaml:"cache_ttl_seconds"`
	CacheMaxEntries int    `yaml:"cache_max_entries"`
}

// OpenFGA asks an OpenFGA server's Check API.
type OpenFGA struct {
	// Transport is grpc (default) or http.
	Transport string `yaml:"transport"`
	// URL is a gRPC host:port, or an http(s):// base URL for http.
	URL     string `yaml:"url"`
	StoreID string `yaml:"store_id"`
	ModelID string `yaml:"model_id"`
	// User, Relation and Object are templates with {subject} {bucket}
	// {key} {prefix}.
	User     string `yaml:"user"`
	Relation string `yaml:"relation"`
	Object   string `yaml:"object"`
	// Objects are further object templates: the upload is allowed when
	// the relation holds for any of them (one BatchCheck), e.g. a
	// bucket-level and a prefix-level writer.
	Objects []string `yaml:"objects"`
	// ContextualTuples are sent with every check (templates allowed).
	ContextualTuples []Tuple `yaml:"contextual_tuples"`
	// APIToken is OpenFGA's preshared key, sent as "Authorization: Bearer
	// <token>" on every call. Secret: never printed.
	APIToken string `yaml:"api_token"`
	// TLS makes the grpc transport use TLS; for http the scheme of URL
	// decides.
	TLS bool `yaml:"tls"`
	// CAFile is a PEM bundle trusted instead of the system roots (grpc
	// with TLS, or an https URL).
	CAFile          string `yaml:"ca_file"`
	TimeoutSeconds  int    `yaml:"timeout_seconds"`
	CacheTTLSeconds int    `yaml:"cache_ttl_seconds"`
	CacheMaxEntries int    `yaml:"cache_max_entries"`
}

// Tuple is an OpenFGA relationship tuple.
type Tuple struct {
	User     string `yaml:"user"`
	Relation string `yaml:"relation"`
	Object   string `yaml:"object"`
}

// Upload holds per-bucket upload limits and tuning.
type Upload struct {
	MaxObjectSize Size `yaml:"max_object_size"`
	// MultipartThreshold: larger single PUTs become multipart uploads.
	MultipartThreshold Size `yaml:"multipart_threshold"`
	PartSize           Size `yaml:"part_size"`
	ConcurrentParts    int  `yaml:"concurrent_parts"`
	// AllowedContentTypes empty means any. Entries may end in /* .
	AllowedContentTypes []string `yaml:"allowed_content_types"`
	// SpoolDir is where parts are buffered; empty is the OS temp dir.
	SpoolDir string `yaml:"spool_dir"`
	// MaxMemoryBuffer bounds part buffering in memory before spooling.
	MaxMemoryBuffer Size `yaml:"max_memory_buffer"`
	// MinPartSize is S3's minimum size of every part but the last
	// (5 MiB). It may be lowered for tests.
	MinPartSize Size `yaml:"min_part_size"`
}

// Metrics configures the Prometheus listener.
type Metrics struct {
	Enabled *bool  `yaml:"enabled"`
	Address string `yaml:"address"`
}

// On reports whether the metrics listener runs.
func (m Metrics) On() bool { return m.Enabled == nil || *m.Enabled }

// Tracing configures OpenTelemetry.
type Tracing struct {
	Enabled bool `yaml:"enabled"`
	// Fallback is none or console (log spans while export fails).
	Fallback         string   `yaml:"fallback"`
	ServiceName      string   `yaml:"service_name"`
	RecordObjectKeys bool     `yaml:"record_object_keys"`
	OTLP             OTLP     `yaml:"otlp"`
	Sampling         Sampling `yaml:"sampling"`
	Batch            Batch    `yaml:"batch"`
	// SubjectHashKey keys the HMAC behind enduser.hash, so every replica
	// hashes a subject alike. Empty: a random key per process.
	SubjectHashKey string `yaml:"subject_hash_key"`
}

// OTLP configures the span exporter.
type OTLP struct {
	Endpoint string `yaml:"endpoint"`
	// Protocol is grpc or http/protobuf.
	Protocol       string            `yaml:"protocol"`
	TimeoutSeconds int               `yaml:"timeout_seconds"`
	Compression    string            `yaml:"compression"`
	Headers        map[string]string `yaml:"headers"`
}

// Sampling chooses which traces are recorded.
type Sampling struct {
	// Strategy is always, never, ratio or parent_based.
	Strategy string  `yaml:"strategy"`
	Ratio    float64 `yaml:"ratio"`
}

// Batch tunes the batch span processor.
type Batch struct {
	MaxQueueSize         int `yaml:"max_queue_size"`
	ScheduledDelayMillis int `yaml:"scheduled_delay_millis"`
	MaxExportBatchSize   int `yaml:"max_export_batch_size"`
}

// Logging configures the process log.
type Logging struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is json or text.
	Format string `yaml:"format"`
}
