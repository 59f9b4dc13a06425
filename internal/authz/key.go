package authz

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"slices"
)

// MaxKeyBytes bounds the size of a cache key. An input whose key would be
// larger (e.g. a token carrying very large claims) is decided by the
// engine every time instead of being cached, so that MaxEntries also
// bounds the cache's memory.
const MaxKeyBytes = 16 << 10

// keyVersion is the first byte of every key, so that a change of the
// encoding can never be confused with an older one.
const keyVersion = 1

// KeyBuilder encodes an Input into its cache key: a canonical byte string
// that holds every field of the input document, so two inputs share a key
// only if a policy would see the same document. There is no hashing.
//
// The encoding is prefix-free and therefore injective: the top-level
// fields come in a fixed order, each string is preceded by its length,
// content_length is a fixed 8 bytes, and claim values carry a type tag,
// with maps written in sorted key order and preceded by their size. A nil
// map or slice is encoded as JSON null, distinct from an empty one. Values
// that JSON renders identically but that have different Go types (1 as an
// int and as a float64) get different keys: that only costs a cache miss.
//
// A KeyBuilder reuses its buffers; it is not safe for concurrent use.
type KeyBuilder struct {
	buf  []byte
	keys []string
}

// Key returns the key of in, valid until the next call. ok is false when
// the input cannot be keyed: a claim value of a type the encoding does not
// know, or a key longer than MaxKeyBytes. Such an input must not be cached.
func (b *KeyBuilder) Key(in *Input) (key []byte, ok bool) {
	b.buf = append(b.buf[:0], keyVersion)
	b.str(in.Subject)
	b.str(in.Action)
	b.str(in.Resource.Bucket)
	b.str(in.Resource.Key)
	b.str(in.Context.Method)
	b.str(in.Context.Path)
	b.str(in.Context.IP)
	b.buf = binary.BigEndian.AppendUint64(b.buf, uint64(in.Context.ContentLength))
	b.str(in.Context.ContentType)
	b.str(in.Context.AuthMethod)
	if in.Context.Claims == nil {
		b.buf = append(b.buf, 'z')
		ok = true
	} else {
		ok = b.object(in.Context.Claims, 0)
	}
	if !ok || len(b.buf) > MaxKeyBytes {
		return nil, false
	}
	return b.buf, true
}

func (b *KeyBuilder) str(s string) {
	b.buf = binary.AppendUvarint(b.buf, uint64(len(s)))
	b.buf = append(b.buf, s...)
}

// maxDepth stops a claim that contains itself (only possible for values
// built in Go, not decoded from a token) from recursing forever.
const maxDepth = 32

func (b *KeyBuilder) object(m map[string]any, depth int) bool {
	b.buf = append(b.buf, 'm')
	b.buf = binary.AppendUvarint(b.buf, uint64(len(m)))
	start := len(b.keys)
	for k := range m {
		b.keys = append(b.keys, k)
	}
	end := len(b.keys)
	slices.Sort(b.keys[start:end])
	ok := true
	for i := start; i < end && ok; i++ {
		k := b.keys[i]
		b.str(k)
		ok = b.value(m[k], depth+1)
	}
	clear(b.keys[start:])
	b.keys = b.keys[:start]
	return ok
}

func (b *KeyBuilder) value(v any, depth int) bool {
	if depth > maxDepth || len(b.buf) > MaxKeyBytes {
		return false
	}
	switch v := v.(type) {
	case nil:
		b.buf = append(b.buf, 'z')
	case string:
		b.buf = append(b.buf, 's')
		b.str(v)
	case bool:
		if v {
			b.buf = append(b.buf, 't')
		} else {
			b.buf = append(b.buf, 'f')
		}
	case float64:
		b.buf = append(b.buf, 'd')
		b.buf = binary.BigEndian.AppendUint64(b.buf, math.Float64bits(v))
	case float32:
		b.buf = append(b.buf, 'e')
		b.buf = binary.BigEndian.AppendUint32(b.buf, math.Float32bits(v))
	case int:
		b.int(int64(v))
	case int64:
		b.int(v)
	case int32:
		b.int(int64(v))
	case json.Number:
		b.buf = append(b.buf, 'N')
		b.str(string(v))
	case map[string]any:
		if v == nil {
			b.buf = append(b.buf, 'z')
			return true
		}
		return b.object(v, depth)
	case []any:
		if v == nil {
			b.buf = append(b.buf, 'z')
			return true
		}
		b.buf = append(b.buf, 'a')
		b.buf = binary.AppendUvarint(b.buf, uint64(len(v)))
		for _, e := range v {
			if !b.value(e, depth+1) {
				return false
			}
		}
	case []string:
		if v == nil {
			b.buf = append(b.buf, 'z')
			return true
		}
		// A []string is the same JSON as a []any of strings, but it is
		// tagged apart: a different key for an equal document is only a miss.
		b.buf = append(b.buf, 'S')
		b.buf = binary.AppendUvarint(b.buf, uint64(len(v)))
		for _, e := range v {
			b.str(e)
		}
	default:
		return false
	}
	return true
}

func (b *KeyBuilder) int(v int64) {
	b.buf = append(b.buf, 'i')
	b.buf = binary.BigEndian.AppendUint64(b.buf, uint64(v))
}
