package config

import (
	"fmt"
	"math"
)

// Bounds of the limits section.
const (
	maxRequestsPerSecond = 1_000_000
	minBytesPerSecond    = 1 << 10
)

// Limits are a bucket's fair-use limits (docs/LIMITS.md).
type Limits struct {
	// PerSubject applies to each authenticated subject (SigV4 access key,
	// JWT sub, anonymous client address) separately.
	PerSubject LimitSet `yaml:"per_subject"`
	// PerBucket applies to all requests on the bucket together.
	PerBucket LimitSet `yaml:"per_bucket"`
}

// LimitSet is one block of limits; zero means no limit.
type LimitSet struct {
	RequestsPerSecond float64 `yaml:"requests_per_second"`
	// Burst defaults to requests_per_second rounded up.
	Burst             int  `yaml:"burst"`
	ConcurrentUploads int  `yaml:"concurrent_uploads"`
	BytesPerSecond    Size `yaml:"bytes_per_second"`
	BytesPerDay       Size `yaml:"bytes_per_day"`
}

// IsZero reports whether the set limits nothing.
func (s LimitSet) IsZero() bool { return s == LimitSet{} }

func (b *Bucket) applyLimitsDefaults(d defaulter, p string) {
	for _, s := range []struct {
		set  *LimitSet
		path string
	}{{&b.Limits.PerSubject, p + ".limits.per_subject"}, {&b.Limits.PerBucket, p + ".limits.per_bucket"}} {
		if s.set.RequestsPerSecond > 0 && s.set.RequestsPerSecond <= maxRequestsPerSecond {
			d.int(&s.set.Burst, s.path+".burst", int(math.Ceil(s.set.RequestsPerSecond)))
		}
	}
}

func (k *checker) limits(b *Bucket, p string) {
	k.limitSet(b.Limits.PerSubject, p+".limits.per_subject")
	k.limitSet(b.Limits.PerBucket, p+".limits.per_bucket")
}

func (k *checker) limitSet(s LimitSet, p string) {
	if s.RequestsPerSecond < 0 || s.RequestsPerSecond > maxRequestsPerSecond || math.IsNaN(s.RequestsPerSecond) {
		k.errf(p+".requests_per_second", "must be between 0 and %d, got %v", maxRequestsPerSecond, s.RequestsPerSecond)
	}
	switch {
	case s.Burst < 0:
		k.errf(p+".burst", "must not be negative, got %d", s.Burst)
	case s.Burst > 0 && s.RequestsPerSecond == 0:
		k.errf(p+".burst", "needs requests_per_second")
	case s.Burst == 0 && s.RequestsPerSecond > 0:
		k.errf(p+".burst", "must be at least 1 with requests_per_second (0 would refuse every request)")
	}
	if s.ConcurrentUploads < 0 {
		k.errf(p+".concurrent_uploads", "must not be negative, got %d", s.ConcurrentUploads)
	}
	if s.BytesPerSecond != 0 && s.BytesPerSecond < minBytesPerSecond {
		k.errf(p+".bytes_per_second", "must be 0 (no limit) or at least 1KiB, got %s", s.BytesPerSecond)
	}
	if s.BytesPerDay < 0 {
		k.errf(p+".bytes_per_day", "must not be negative")
	}
}

// limitsSummary describes a bucket's limits in one line ("" for none).
func (l Limits) summary() string {
	if l.PerSubject.IsZero() && l.PerBucket.IsZero() {
		return ""
	}
	return fmt.Sprintf("per subject %s; per bucket %s", l.PerSubject.summary(), l.PerBucket.summary())
}

func (s LimitSet) summary() string {
	if s.IsZero() {
		return "none"
	}
	out := ""
	add := func(v string) {
		if out != "" {
			out += ", "
		}
		out += v
	}
	if s.RequestsPerSecond > 0 {
		add(fmt.Sprintf("%v req/s (burst %d)", s.RequestsPerSecond, s.Burst))
	}
	if s.ConcurrentUploads > 0 {
		add(fmt.Sprintf("%d concurrent uploads", s.ConcurrentUploads))
	}
	if s.BytesPerSecond > 0 {
		add(s.BytesPerSecond.String() + "/s")
	}
	if s.BytesPerDay > 0 {
		add(s.BytesPerDay.String() + "/day")
	}
	return out
}
