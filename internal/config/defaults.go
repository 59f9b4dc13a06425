package config

import "fmt"

// Defaults, in one place. docs/CONFIG.md lists the same values.
const (
	DefaultAddress                = "127.0.0.1:8080"
	DefaultReadHeaderTimeout      = 10
	DefaultBodyIdleTimeout        = 60
	DefaultIdleTimeout            = 120
	DefaultShutdownGrace          = 30
	DefaultMaxHeaderBytes         = 65536
	DefaultPipeBufferSize    Size = 1 << 20

	DefaultMetricsAddress = "127.0.0.1:9090"

	DefaultTracingFallback          = "none"
	DefaultServiceName              = "mizuchi-uploadr"
	DefaultOTLPEndpoint             = "http://127.0.0.1:4317"
	DefaultOTLPProtocol             = "grpc"
	DefaultOTLPTimeout              = 10
	DefaultOTLPCompression          = "gzip"
	DefaultSamplingStrategy         = "parent_based"
	DefaultSamplingRatio            = 1.0
	DefaultBatchMaxQueueSize        = 2048
	DefaultBatchScheduledDelay      = 5000
	DefaultBatchMaxExportBatch      = 512
	DefaultLogLevel                 = "info"
	DefaultLogFormat                = "json"
	DefaultMaxObjectSize       Size = 5 << 30
	DefaultMultipartThreshold  Size = 50 << 20
	DefaultPartSize            Size = 64 << 20
	DefaultConcurrentParts          = 4
	DefaultMaxMemoryBuffer     Size = 32 << 20
	DefaultMinPartSize         Size = 5 << 20
	// DefaultStallTimeout and DefaultResponseHeaderTimeout bound a store
	// that stops reading or answering.
	DefaultStallTimeout          = 60
	DefaultResponseHeaderTimeout = 300
	// DefaultCORSMaxAge lets browsers reuse a preflight for ten minutes.
	DefaultCORSMaxAge = 600
	// DefaultStaleUploadSeconds is a day: longer than any upload in flight.
	DefaultStaleUploadSeconds = 86400

	DefaultJWTCacheTTL   = 3600
	DefaultJWTLeeway     = 30
	DefaultSigV4Region   = "us-east-1"
	DefaultMaxClockSkew  = 900
	DefaultAuthzTimeout  = 2
	DefaultAuthzCacheTTL = 60
	DefaultAuthzCacheMax = 10000
	DefaultOPAQuery      = "data.mizuchi.allow"
	DefaultOPAPolicyPath = "mizuchi/allow"
	DefaultFGATransport  = "grpc"
	DefaultFGAUser       = "user:{subject}"
	DefaultFGARelation   = "writer"
	DefaultFGAObject     = "bucket:{bucket}"
	DefaultTokenSource   = "bearer"

	// DefaultClientAuth applies when server.tls.client_ca is set.
	DefaultClientAuth       = "require"
	DefaultTLSClientSubject = "cn"
)

// ApplyDefaults fills every key that was not written with its default. A
// key written explicitly keeps its value, even 0 (Validate decides whether
// that value is allowed); an empty string counts as not written. Sections
// that are pointers (auth, authz, their engines) are not created: an
// omitted auth or authz section means disabled. Calling it twice is
// harmless.
func (c *Config) ApplyDefaults() {
	d := defaulter{c: c}
	s := &c.Server
	d.str(&s.Address, DefaultAddress)
	d.int(&s.ReadHeaderTimeoutSeconds, "server.read_header_timeout_seconds", DefaultReadHeaderTimeout)
	d.int(&s.BodyIdleTimeoutSeconds, "server.body_idle_timeout_seconds", DefaultBodyIdleTimeout)
	d.int(&s.IdleTimeoutSeconds, "server.idle_timeout_seconds", DefaultIdleTimeout)
	d.int(&s.ShutdownGraceSeconds, "server.shutdown_grace_seconds", DefaultShutdownGrace)
	d.int(&s.MaxHeaderBytes, "server.max_header_bytes", DefaultMaxHeaderBytes)
	if s.ZeroCopy.Enabled == nil {
		on := true
		s.ZeroCopy.Enabled = &on
	}
	d.size(&s.ZeroCopy.PipeBufferSize, "server.zero_copy.pipe_buffer_size", DefaultPipeBufferSize)
	if s.TLS.ClientCA != "" {
		d.str(&s.TLS.ClientAuth, DefaultClientAuth)
	}

	if c.Metrics.Enabled == nil {
		on := true
		c.Metrics.Enabled = &on
	}
	d.str(&c.Metrics.Address, DefaultMetricsAddress)

	t := &c.Tracing
	d.str(&t.Fallback, DefaultTracingFallback)
	d.str(&t.ServiceName, DefaultServiceName)
	d.str(&t.OTLP.Endpoint, DefaultOTLPEndpoint)
	d.str(&t.OTLP.Protocol, DefaultOTLPProtocol)
	d.int(&t.OTLP.TimeoutSeconds, "tracing.otlp.timeout_seconds", DefaultOTLPTimeout)
	d.str(&t.OTLP.Compression, DefaultOTLPCompression)
	d.str(&t.Sampling.Strategy, DefaultSamplingStrategy)
	if t.Sampling.Ratio == 0 && !c.isSet("tracing.sampling.ratio") {
		t.Sampling.Ratio = DefaultSamplingRatio
	}
	d.int(&t.Batch.MaxQueueSize, "tracing.batch.max_queue_size", DefaultBatchMaxQueueSize)
	d.int(&t.Batch.ScheduledDelayMillis, "tracing.batch.scheduled_delay_millis", DefaultBatchScheduledDelay)
	d.int(&t.Batch.MaxExportBatchSize, "tracing.batch.max_export_batch_size", DefaultBatchMaxExportBatch)

	d.str(&c.Logging.Level, DefaultLogLevel)
	d.str(&c.Logging.Format, DefaultLogFormat)

	for i := range c.Buckets {
		c.Buckets[i].applyDefaults(d, fmt.Sprintf("buckets[%d]", i))
	}
	c.applyStateDefaults(d)
	c.applyEventDefaults(d)
}

func (b *Bucket) applyDefaults(d defaulter, p string) {
	u := &b.Upload
	d.size(&u.MaxObjectSize, p+".upload.max_object_size", DefaultMaxObjectSize)
	d.size(&u.MultipartThreshold, p+".upload.multipart_threshold", DefaultMultipartThreshold)
	d.size(&u.PartSize, p+".upload.part_size", DefaultPartSize)
	d.int(&u.ConcurrentParts, p+".upload.concurrent_parts", DefaultConcurrentParts)
	d.size(&u.MaxMemoryBuffer, p+".upload.max_memory_buffer", DefaultMaxMemoryBuffer)
	d.size(&u.MinPartSize, p+".upload.min_part_size", DefaultMinPartSize)
	b.applyLimitsDefaults(d, p)

	if c := b.CORS; c != nil {
		if len(c.AllowedMethods) == 0 {
			c.AllowedMethods = []string{"PUT", "POST", "DELETE", "GET"}
		}
		if len(c.AllowedHeaders) == 0 {
			c.AllowedHeaders = []string{"*"}
		}
		if len(c.ExposeHeaders) == 0 {
			c.ExposeHeaders = []string{"ETag", "x-amz-request-id", "x-amz-version-id",
				"x-amz-checksum-crc32", "x-amz-checksum-crc32c", "x-amz-checksum-crc64nvme",
				"x-amz-checksum-sha1", "x-amz-checksum-sha256"}
		}
		d.int(&c.MaxAgeSeconds, p+".cors.max_age_seconds", DefaultCORSMaxAge)
	}
	if s := b.S3; s != nil {
		d.int(&s.StallTimeoutSeconds, p+".s3.stall_timeout_seconds", DefaultStallTimeout)
		d.int(&s.ResponseHeaderTimeoutSeconds, p+".s3.response_header_timeout_seconds", DefaultResponseHeaderTimeout)
	}
	if f := b.Filesystem; f != nil {
		d.int(&f.StaleUploadSeconds, p+".filesystem.stale_upload_seconds", DefaultStaleUploadSeconds)
	}
	b.applyCleanupDefaults(d, p)
	if a := b.Auth; a != nil {
		if j := a.JWT; j != nil {
			jp := p + ".auth.jwt"
			d.int(&j.CacheTTLSeconds, jp+".cache_ttl_seconds", DefaultJWTCacheTTL)
			d.int(&j.LeewaySeconds, jp+".leeway_seconds", DefaultJWTLeeway)
			if j.TokenSources == nil && !d.c.isSet(jp+".token_sources") {
				j.TokenSources = []TokenSource{{Type: DefaultTokenSource}}
			}
		}
		if t := a.TLSClient; t != nil {
			d.str(&t.SubjectFrom, DefaultTLSClientSubject)
		}
		if s := a.SigV4; s != nil {
			d.str(&s.Region, DefaultSigV4Region)
			d.int(&s.MaxClockSkewSeconds, p+".auth.sigv4.max_clock_skew_seconds", DefaultMaxClockSkew)
		}
	}
	if z := b.Authz; z != nil {
		if o := z.OPA; o != nil {
			op := p + ".authz.opa"
			if o.PolicyFile != "" {
				d.str(&o.Query, DefaultOPAQuery)
			}
			if o.URL != "" {
				d.str(&o.PolicyPath, DefaultOPAPolicyPath)
			}
			d.int(&o.TimeoutSeconds, op+".timeout_seconds", DefaultAuthzTimeout)
			d.int(&o.CacheTTLSeconds, op+".cache_ttl_seconds", DefaultAuthzCacheTTL)
			d.int(&o.CacheMaxEntries, op+".cache_max_entries", DefaultAuthzCacheMax)
		}
		if f := z.OpenFGA; f != nil {
			fp := p + ".authz.openfga"
			d.str(&f.Transport, DefaultFGATransport)
			d.str(&f.User, DefaultFGAUser)
			d.str(&f.Relation, DefaultFGARelation)
			d.str(&f.Object, DefaultFGAObject)
			d.int(&f.TimeoutSeconds, fp+".timeout_seconds", DefaultAuthzTimeout)
			d.int(&f.CacheTTLSeconds, fp+".cache_ttl_seconds", DefaultAuthzCacheTTL)
			d.int(&f.CacheMaxEntries, fp+".cache_max_entries", DefaultAuthzCacheMax)
		}
	}
}

type defaulter struct{ c *Config }

func (d defaulter) str(v *string, def string) {
	if *v == "" {
		*v = def
	}
}

func (d defaulter) int(v *int, path string, def int) {
	if *v == 0 && !d.c.isSet(path) {
		*v = def
	}
}

func (d defaulter) size(v *Size, path string, def Size) {
	if *v == 0 && !d.c.isSet(path) {
		*v = def
	}
}
