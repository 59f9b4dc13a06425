package config

import "strings"

// Cleanup is the periodic removal of incomplete multipart uploads (on the
// filesystem also of abandoned temp files) of a bucket.
type Cleanup struct {
	// AbortIncompleteAfterSeconds: incomplete multipart uploads started
	// (S3) or last written (filesystem) this long ago are aborted; 0
	// turns the cleanup off.
	AbortIncompleteAfterSeconds int `yaml:"abort_incomplete_after_seconds"`
	// IntervalSeconds is the time between two runs; the first runs at
	// start.
	IntervalSeconds int `yaml:"interval_seconds"`
}

// Cleanup defaults: a day is longer than any upload in flight.
const (
	DefaultAbortIncompleteAfter = 86400
	DefaultCleanupInterval      = 3600
)

// On reports whether the cleanup runs.
func (c *Cleanup) On() bool { return c != nil && c.AbortIncompleteAfterSeconds > 0 }

// applyCleanupDefaults completes the cleanup section. A filesystem bucket
// always has one (its deprecated filesystem.stale_upload_seconds is the
// age when written); an S3 bucket only when the section is written, since
// the cleanup lists and aborts on a store that may be shared.
func (b *Bucket) applyCleanupDefaults(d defaulter, p string) {
	alias := b.Filesystem != nil && d.c.isSet(p+".filesystem.stale_upload_seconds")
	if b.Cleanup == nil && b.Filesystem != nil {
		b.Cleanup = &Cleanup{}
	}
	c := b.Cleanup
	if c == nil {
		return
	}
	if !d.c.isSet(p + ".cleanup.abort_incomplete_after_seconds") {
		if alias {
			c.AbortIncompleteAfterSeconds = b.Filesystem.StaleUploadSeconds
		} else if c.AbortIncompleteAfterSeconds == 0 {
			c.AbortIncompleteAfterSeconds = DefaultAbortIncompleteAfter
		}
	}
	d.int(&c.IntervalSeconds, p+".cleanup.interval_seconds", DefaultCleanupInterval)
}

// cleanup checks a bucket's cleanup section.
func (k *checker) cleanup(b *Bucket, p string) {
	stale := p + ".filesystem.stale_upload_seconds"
	if b.Filesystem != nil && k.c.isSet(stale) {
		if k.c.isSet(p + ".cleanup.abort_incomplete_after_seconds") {
			k.errf(stale, "deprecated name of cleanup.abort_incomplete_after_seconds: set only that one")
		} else {
			k.warnf(stale, "deprecated: write cleanup.abort_incomplete_after_seconds instead")
		}
	}
	c := b.Cleanup
	if c == nil {
		return
	}
	if c.AbortIncompleteAfterSeconds < 0 {
		k.errf(p+".cleanup.abort_incomplete_after_seconds", "must not be negative (0 turns the cleanup off), got %d", c.AbortIncompleteAfterSeconds)
	}
	k.atLeast(p+".cleanup.interval_seconds", c.IntervalSeconds, 1)
	if s := b.S3; s != nil && c.On() {
		if s.KeyPrefix == "" {
			k.warnf(p+".cleanup", "the cleanup covers every multipart upload of store bucket %q, also those of other writers: set s3.key_prefix if the store bucket is shared", s.Bucket)
		}
		for i := range k.c.Buckets {
			o := &k.c.Buckets[i]
			if o == b || o.S3 == nil || o.S3.Bucket != s.Bucket || o.S3.Endpoint != s.Endpoint {
				continue
			}
			if o.S3.KeyPrefix != s.KeyPrefix && strings.HasPrefix(o.S3.KeyPrefix, s.KeyPrefix) {
				k.warnf(p+".s3.key_prefix", "key prefix %q also covers bucket %q's key prefix %q: this bucket's cleanup leaves those uploads to that bucket (and its own cleanup, if any)", s.KeyPrefix, o.Name, o.S3.KeyPrefix)
			}
		}
	}
}

// CleanupSkipPrefixes returns the longer key prefixes of the other S3
// buckets on the same store bucket that fall under b's key prefix: their
// uploads belong to them, not to b, in b's cleanup.
func (c *Config) CleanupSkipPrefixes(b *Bucket) []string {
	if b.S3 == nil {
		return nil
	}
	var out []string
	for i := range c.Buckets {
		o := &c.Buckets[i]
		if o.Name == b.Name || o.S3 == nil || o.S3.Bucket != b.S3.Bucket || o.S3.Endpoint != b.S3.Endpoint {
			continue
		}
		if len(o.S3.KeyPrefix) > len(b.S3.KeyPrefix) && strings.HasPrefix(o.S3.KeyPrefix, b.S3.KeyPrefix) {
			out = append(out, o.S3.KeyPrefix)
		}
	}
	return out
}
