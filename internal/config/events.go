package config

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Events configures the durable outbox through which upload events reach
// their sinks (docs/EVENTS.md). It matters only when a bucket has sinks.
type Events struct {
	// OutboxDir holds the outbox database; created if missing.
	OutboxDir string `yaml:"outbox_dir"`
	// MaxPending bounds the deliveries waiting in the outbox (one per
	// event and sink).
	MaxPending int `yaml:"max_pending"`
	// OnFull is refuse (new uploads get 503 SlowDown) or drop_oldest.
	OnFull string `yaml:"on_full"`
	// HashSubjects puts a keyed hash of the subject into
	// userIdentity.principalId instead of the subject.
	HashSubjects bool `yaml:"hash_subjects"`
	// MaxRetryIntervalSeconds caps the wait between two delivery attempts
	// to a sink that fails, so a sink that comes back is served within
	// this time plus one timeout.
	MaxRetryIntervalSeconds int `yaml:"max_retry_interval_seconds"`
}

// EventSink is one destination of a bucket's events.
type EventSink struct {
	// Type is webhook or nats.
	Type string `yaml:"type"`
	// Events filters by event name: s3:ObjectCreated:*, :Put or
	// :CompleteMultipartUpload.
	Events []string `yaml:"events"`
	// KeyPrefix and KeySuffix filter by object key.
	KeyPrefix string `yaml:"key_prefix"`
	KeySuffix string `yaml:"key_suffix"`
	// URL is the webhook's http(s) URL, or the NATS server
	// (nats://, tls://; several separated by commas).
	URL string `yaml:"url"`
	// Secret keys the webhook's X-Mizuchi-Signature HMAC.
	Secret         string            `yaml:"secret"`
	TimeoutSeconds int               `yaml:"timeout_seconds"`
	Headers        map[string]string `yaml:"headers"`
	// Subject is the NATS subject, a template with {bucket}.
	Subject string `yaml:"subject"`
	// JetStream publishes with an acknowledgement and Nats-Msg-Id.
	JetStream bool `yaml:"jetstream"`
	// CredentialsFile is a NATS .creds file (JWT and NKey seed).
	CredentialsFile string `yaml:"credentials_file"`
	// Username/Password or Token authenticate to NATS.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	Token    string `yaml:"token"`
	// CAFile trusts a private CA; CertFile/KeyFile present a client
	// certificate (NATS over TLS).
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Event names a sink can ask for.
const (
	EventObjectCreatedAll       = "s3:ObjectCreated:*"
	EventObjectCreatedPut       = "s3:ObjectCreated:Put"
	EventObjectCreatedMultipart = "s3:ObjectCreated:CompleteMultipartUpload"
)

// Defaults of the events keys.
const (
	DefaultEventsOutboxDir        = "./data/.events"
	DefaultEventsMaxPending       = 100000
	DefaultEventsOnFull           = "refuse"
	DefaultEventsMaxRetryInterval = 20
	DefaultWebhookTimeout         = 5
	DefaultNATSSubject            = "mizuchi.{bucket}"
)

func (c *Config) applyEventDefaults(d defaulter) {
	e := &c.Events
	d.str(&e.OutboxDir, DefaultEventsOutboxDir)
	d.int(&e.MaxPending, "events.max_pending", DefaultEventsMaxPending)
	d.str(&e.OnFull, DefaultEventsOnFull)
	d.int(&e.MaxRetryIntervalSeconds, "events.max_retry_interval_seconds", DefaultEventsMaxRetryInterval)
	for i := range c.Buckets {
		for j := range c.Buckets[i].Events {
			s := &c.Buckets[i].Events[j]
			p := fmt.Sprintf("buckets[%d].events[%d]", i, j)
			if s.Events == nil && !c.isSet(p+".events") {
				s.Events = []string{EventObjectCreatedAll}
			}
			switch s.Type {
			case "webhook":
				d.int(&s.TimeoutSeconds, p+".timeout_seconds", DefaultWebhookTimeout)
			case "nats":
				d.int(&s.TimeoutSeconds, p+".timeout_seconds", DefaultWebhookTimeout)
				d.str(&s.Subject, DefaultNATSSubject)
			}
		}
	}
}

// reservedHookHeaders are set by Mizuchi on every webhook request.
var reservedHookHeaders = map[string]bool{
	"Content-Type": true, "Content-Length": true, "X-Mizuchi-Signature": true,
	"Host": true, "Traceparent": true, "Tracestate": true,
}

func (k *checker) events() {
	e := k.c.Events
	used := false
	for _, b := range k.c.Buckets {
		used = used || len(b.Events) > 0
	}
	if used && strings.TrimSpace(e.OutboxDir) == "" {
		k.errf("events.outbox_dir", "required when a bucket has events")
	}
	k.atLeast("events.max_pending", e.MaxPending, 1)
	if e.OnFull != "refuse" && e.OnFull != "drop_oldest" {
		k.errf("events.on_full", "unknown value %q (want refuse or drop_oldest)", e.OnFull)
	}
	if e.MaxRetryIntervalSeconds < 1 || e.MaxRetryIntervalSeconds > 3600 {
		k.errf("events.max_retry_interval_seconds", "must be between 1 and 3600, got %d", e.MaxRetryIntervalSeconds)
	}
}

func (k *checker) bucketEvents(b *Bucket, p string) {
	for i := range b.Events {
		s := &b.Events[i]
		sp := fmt.Sprintf("%s.events[%d]", p, i)
		for j, name := range s.Events {
			switch name {
			case EventObjectCreatedAll, EventObjectCreatedPut, EventObjectCreatedMultipart:
			default:
				k.errf(fmt.Sprintf("%s.events[%d]", sp, j), "unknown event %q (want %s, %s or %s)", name,
					EventObjectCreatedAll, EventObjectCreatedPut, EventObjectCreatedMultipart)
			}
		}
		if s.TimeoutSeconds < 1 || s.TimeoutSeconds > 300 {
			k.errf(sp+".timeout_seconds", "must be between 1 and 300, got %d", s.TimeoutSeconds)
		}
		switch s.Type {
		case "webhook":
			if s.URL == "" {
				k.errf(sp+".url", "required")
			} else {
				k.url(sp+".url", s.URL, "http", "https")
			}
			if s.Secret == "" {
				k.errf(sp+".secret", "required: receivers check X-Mizuchi-Signature with it")
			}
			for name := range s.Headers {
				switch {
				case !headerNameRE.MatchString(name):
					k.errf(sp+".headers", "%q is not a header name", name)
				case reservedHookHeaders[http.CanonicalHeaderKey(name)]:
					k.errf(sp+".headers", "%q is set by Mizuchi", name)
				}
			}
			k.notFor(sp, "webhook", map[string]bool{"subject": s.Subject != "", "jetstream": s.JetStream,
				"credentials_file": s.CredentialsFile != "", "username": s.Username != "", "password": s.Password != "",
				"token": s.Token != "", "ca_file": s.CAFile != "", "cert_file": s.CertFile != "", "key_file": s.KeyFile != ""})
		case "nats":
			if s.URL == "" {
				k.errf(sp+".url", "required")
			} else {
				for _, u := range strings.Split(s.URL, ",") {
					if !k.url(sp+".url", strings.TrimSpace(u), "nats", "tls") {
						break
					}
				}
			}
			k.natsSubject(sp+".subject", s.Subject)
			if (s.CertFile == "") != (s.KeyFile == "") {
				k.errf(sp+".cert_file", "cert_file and key_file go together")
			}
			if s.Token != "" && (s.Username != "" || s.CredentialsFile != "") {
				k.errf(sp+".token", "set one of token, username/password and credentials_file")
			}
			if s.Username != "" && s.CredentialsFile != "" {
				k.errf(sp+".username", "set one of token, username/password and credentials_file")
			}
			k.notFor(sp, "nats", map[string]bool{"secret": s.Secret != "", "headers": len(s.Headers) > 0})
		case "":
			k.errf(sp+".type", "required (webhook or nats)")
		default:
			k.errf(sp+".type", "unknown sink %q (want webhook or nats)", s.Type)
		}
	}
}

// notFor reports keys set on a sink type that does not use them.
func (k *checker) notFor(p, typ string, set map[string]bool) {
	for key, on := range set {
		if on {
			k.errf(p+"."+key, "not used by a %s sink", typ)
		}
	}
}

// natsSubject checks a subject template: dot-separated tokens, no
// wildcards or spaces, {bucket} the only placeholder.
func (k *checker) natsSubject(path, tmpl string) {
	for _, ph := range placeholder.FindAllString(tmpl, -1) {
		if ph != "{bucket}" {
			k.errf(path, "unknown placeholder %s (only {bucket})", ph)
			return
		}
	}
	s := strings.ReplaceAll(tmpl, "{bucket}", "b")
	if s == "" || strings.ContainsAny(s, " \t\r\n*>") {
		k.errf(path, "%q is not a NATS subject without wildcards", tmpl)
		return
	}
	for _, tok := range strings.Split(s, ".") {
		if tok == "" {
			k.errf(path, "%q has an empty token", tmpl)
			return
		}
	}
}

// eventsSummary describes the outbox, or "" when no bucket has sinks.
func (c *Config) eventsSummary() string {
	for _, b := range c.Buckets {
		if len(b.Events) > 0 {
			e := c.Events
			return fmt.Sprintf("events outbox: %s, at most %d pending (then %s), retries every ≤ %ds", e.OutboxDir, e.MaxPending, e.OnFull, e.MaxRetryIntervalSeconds)
		}
	}
	return ""
}

// eventsSummary lists a bucket's sinks without secrets (scheme and host
// of URLs only).
func (b Bucket) eventsSummary() string {
	parts := make([]string, len(b.Events))
	for i, s := range b.Events {
		host := "?"
		if u, err := url.Parse(strings.Split(s.URL, ",")[0]); err == nil {
			host = u.Scheme + "://" + u.Host
			if u.User != nil {
				host = u.Scheme + "://…@" + u.Host
			}
		}
		d := fmt.Sprintf("%s %s", s.Type, host)
		if s.Type == "nats" {
			d += " subject " + s.Subject
			if s.JetStream {
				d += " (JetStream)"
			}
		}
		if s.KeyPrefix != "" || s.KeySuffix != "" {
			d += fmt.Sprintf(" for keys %s…%s", s.KeyPrefix, s.KeySuffix)
		}
		parts[i] = d
	}
	return strings.Join(parts, "; ")
}
