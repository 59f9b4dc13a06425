package config

import (
	"fmt"
	"net/url"
	"strings"
)

// Summary describes the configuration for `mizuchi validate`: where it came
// from, the listener, every bucket with its backend, authentication,
// authorization and limits, metrics, tracing and logging. It shows no
// secrets (URLs have their passwords redacted).
func (c *Config) Summary() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("configuration: %s", c.Source)
	if c.Server.TLS.Enabled() {
		w("listen: https://%s (certificate %s)", c.Server.Address, c.Server.TLS.CertFile)
		if t := c.Server.TLS; t.ClientCA != "" {
			w("client certificates: %s, signed by %s", t.ClientAuth, t.ClientCA)
		}
	} else {
		w("listen: http://%s (no TLS)", c.Server.Address)
	}
	w("buckets: %d", len(c.Buckets))
	for _, bk := range c.Buckets {
		w("  - %s at %s", bk.Name, bk.PathPrefix)
		w("      backend: %s", bk.backendSummary())
		w("      auth: %s", bk.authSummary())
		w("      authz: %s", bk.authzSummary())
		u := bk.Upload
		types := "any"
		if len(u.AllowedContentTypes) > 0 {
			types = strings.Join(u.AllowedContentTypes, ", ")
		}
		w("      limits: max object %s; PUTs over %s split into %s parts, %d at a time; content types: %s",
			u.MaxObjectSize, u.MultipartThreshold, u.PartSize, u.ConcurrentParts, types)
		if l := bk.Limits.summary(); l != "" {
			w("      fair use: %s", l)
		}
		if len(bk.Events) > 0 {
			w("      events: %s", bk.eventsSummary())
		}
	}
	if s := c.eventsSummary(); s != "" {
		w("%s", s)
	}
	if c.Metrics.On() {
		w("metrics: http://%s/metrics", c.Metrics.Address)
	} else {
		w("metrics: off")
	}
	t := c.Tracing
	if t.Enabled {
		sampling := t.Sampling.Strategy
		if t.Sampling.Strategy == "ratio" || t.Sampling.Strategy == "parent_based" {
			sampling += fmt.Sprintf(" %g", t.Sampling.Ratio)
		}
		w("tracing: OTLP %s to %s as %q, sampling %s, fallback %s", t.OTLP.Protocol, redact(t.OTLP.Endpoint), t.ServiceName, sampling, t.Fallback)
	} else {
		w("tracing: off")
	}
	w("logging: %s, %s", c.Logging.Level, c.Logging.Format)
	w("state: %s", c.stateSummary())
	return b.String()
}

func (b Bucket) backendSummary() string {
	switch {
	case b.S3 != nil:
		s := fmt.Sprintf("s3 bucket %s in %s", b.S3.Bucket, b.S3.Region)
		if b.S3.Endpoint != "" {
			s += " at " + redact(b.S3.Endpoint)
		}
		if b.S3.KeyPrefix != "" {
			s += ", keys under " + b.S3.KeyPrefix
		}
		if b.S3.AccessKey != "" {
			s += ", static credentials"
		} else {
			s += ", AWS credential chain"
		}
		return s
	case b.Filesystem != nil:
		return "filesystem " + b.Filesystem.Root
	}
	return "none"
}

func (b Bucket) authSummary() string {
	a := b.Auth
	if a == nil || !a.Enabled {
		return "none (anonymous uploads)"
	}
	var methods []string
	if j := a.JWT; j != nil {
		key := "secret"
		switch {
		case j.JWKSURL != "":
			key = "JWKS " + redact(j.JWKSURL)
		case j.PublicKeyFile != "":
			key = "key " + j.PublicKeyFile
		}
		srcs := make([]string, len(j.TokenSources))
		for i, s := range j.TokenSources {
			srcs[i] = s.Type
			if s.Name != "" {
				srcs[i] += " " + s.Name
			}
		}
		methods = append(methods, fmt.Sprintf("jwt %s with %s, from %s", j.Algorithm, key, strings.Join(srcs, ", ")))
	}
	if s := a.SigV4; s != nil {
		methods = append(methods, fmt.Sprintf("sigv4 %s with %d key(s)", s.Region, len(s.Credentials)))
	}
	if t := a.TLSClient; t != nil {
		methods = append(methods, "tls_client, subject from "+t.SubjectFrom)
	}
	return strings.Join(methods, "; ")
}

func (b Bucket) authzSummary() string {
	z := b.Authz
	if z == nil || !z.Enabled {
		return "none (every authenticated upload allowed)"
	}
	switch {
	case z.OPA != nil && z.OPA.URL != "":
		o := z.OPA
		return fmt.Sprintf("opa %s, policy %s, cache %ds", redact(o.URL), o.PolicyPath, o.CacheTTLSeconds)
	case z.OPA != nil:
		o := z.OPA
		return fmt.Sprintf("opa embedded %s, query %s, cache %ds", o.PolicyFile, o.Query, o.CacheTTLSeconds)
	case z.OpenFGA != nil:
		f := z.OpenFGA
		conn := "plaintext"
		if f.TLS || strings.HasPrefix(f.URL, "https://") {
			conn = "tls"
		}
		if f.APIToken != "" {
			conn += ", token set"
		}
		return fmt.Sprintf("openfga %s %s (%s), check %s %s %s, cache %ds", f.Transport, redact(f.URL), conn, f.User, f.Relation, f.Object, f.CacheTTLSeconds)
	}
	return "none"
}

// redact hides a password embedded in a URL.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		return u.Redacted()
	}
	return raw
}
