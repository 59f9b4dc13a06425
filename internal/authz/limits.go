package authz

import (
	"bytes"
	"context"
	"encoding/json"
)

// Limits are per-subject limits a policy decision may set for the
// request's subject (docs/LIMITS.md). A nil field keeps the bucket's
// value; 0 is no limit. Sizes are bytes.
type Limits struct {
	RequestsPerSecond *float64 `json:"requests_per_second,omitempty"`
	Burst             *int64   `json:"burst,omitempty"`
	ConcurrentUploads *int64   `json:"concurrent_uploads,omitempty"`
	BytesPerSecond    *int64   `json:"bytes_per_second,omitempty"`
	BytesPerDay       *int64   `json:"bytes_per_day,omitempty"`
}

// valid reports whether no value is negative.
func (l *Limits) valid() bool {
	if l == nil {
		return true
	}
	for _, v := range []*int64{l.Burst, l.ConcurrentUploads, l.BytesPerSecond, l.BytesPerDay} {
		if v != nil && *v < 0 {
			return false
		}
	}
	return l.RequestsPerSecond == nil || *l.RequestsPerSecond >= 0
}

// LimitingAuthorizer is an Authorizer whose allows may carry limits (the
// OPA engines and the cache in front of them).
type LimitingAuthorizer interface {
	Authorizer
	AuthorizeLimits(ctx context.Context, in *Input) (allow bool, limits *Limits, err error)
}

// ParseDecision reads a policy result: exactly true allows; an object
// {"allow": true, "limits": {…}} allows with limits. Anything else
// (false, undefined, other types, an object whose allow is not true or
// whose limits are malformed or negative) denies.
func ParseDecision(raw []byte) (bool, *Limits) {
	raw = bytes.TrimSpace(raw)
	if bytes.Equal(raw, []byte("true")) {
		return true, nil
	}
	if len(raw) == 0 || raw[0] != '{' {
		return false, nil
	}
	var d struct {
		Allow  json.RawMessage `json:"allow"`
		Limits *Limits         `json:"limits"`
	}
	if err := json.Unmarshal(raw, &d); err != nil || !bytes.Equal(bytes.TrimSpace(d.Allow), []byte("true")) || !d.Limits.valid() {
		return false, nil
	}
	return true, d.Limits
}
