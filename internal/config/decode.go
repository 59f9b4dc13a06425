package config

import (
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// meta is what Parse learns about a file beyond the values themselves.
type meta struct {
	// lines maps a YAML path to the line of its key (or list item).
	lines map[string]int
	// set holds the paths written explicitly with a non-null value.
	set map[string]bool
	// failed holds paths that could not be decoded; validation stays
	// quiet about them so one mistake is reported once.
	failed map[string]bool
}

func newMeta() *meta {
	return &meta{lines: map[string]int{}, set: map[string]bool{}, failed: map[string]bool{}}
}

// decodeBudget bounds the nodes visited, so alias bombs cannot make a
// small file expensive.
const decodeBudget = 200_000

// decoder walks a yaml.Node tree alongside a Go value, driven by the Go
// type: unknown and duplicate keys, type errors and unset environment
// variables are collected with their line and path, and decoding goes on.
type decoder struct {
	source string
	lookup func(string) (string, bool)
	meta   *meta
	probs  []Problem
	budget int
}

var sizeType = reflect.TypeFor[Size]()

func (d *decoder) fail(line int, path, format string, args ...any) {
	d.meta.failed[path] = true
	d.probs = append(d.probs, Problem{Source: d.source, Line: line, Path: path, Message: fmt.Sprintf(format, args...)})
}

func (d *decoder) spend(n *yaml.Node) bool {
	d.budget--
	if d.budget == -1 {
		d.fail(n.Line, "", "document too large (too many nodes or aliases)")
	}
	return d.budget >= 0
}

// value decodes n into v (addressable) at path.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	if !d.spend(n) {
		return
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return
		}
		n = n.Alias
	}
	fromEnv := false
	if n.Kind == yaml.ScalarNode {
		var ok bool
		if n, fromEnv, ok = d.expand(n, path); !ok {
			return
		}
		if n.ShortTag() == "!!null" {
			return // same as omitting the key
		}
	}
	d.meta.set[path] = true
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		v = v.Elem()
	}

	if v.Type() == sizeType {
		if n.Kind != yaml.ScalarNode {
			d.fail(n.Line, path, "expected a size (bytes, or a number with KiB, MiB, GiB, TiB), got %s", kindName(n))
			return
		}
		sz, err := ParseSize(n.Value)
		if err != nil {
			d.fail(n.Line, path, "expected a size (bytes, or a number with KiB, MiB, GiB, TiB), got %s", shown(n, path, fromEnv))
			return
		}
		v.SetInt(int64(sz))
		return
	}

	switch v.Kind() {
	case reflect.Struct:
		d.mapping(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n.Line, path, "expected a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			d.meta.lines[p] = item.Line
			d.value(item, s.Index(i), p)
		}
		v.Set(s)
	case reflect.Map:
		d.stringMap(n, v, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(n.Line, path, "expected a string, got %s", kindName(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool, reflect.Int, reflect.Int64, reflect.Float64:
		want := map[reflect.Kind]string{reflect.Bool: "true or false", reflect.Int: "an integer", reflect.Int64: "an integer", reflect.Float64: "a number"}[v.Kind()]
		if n.Kind != yaml.ScalarNode {
			d.fail(n.Line, path, "expected %s, got %s", want, kindName(n))
			return
		}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.fail(n.Line, path, "expected %s, got %s", want, shown(n, path, fromEnv))
		}
	default:
		d.fail(n.Line, path, "cannot decode into %s", v.Type())
	}
}

// mapping decodes a YAML mapping into a struct, field by yaml tag.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n.Line, path, "expected a mapping (key: value), got %s", kindName(n))
		return
	}
	fields := yamlFields(v.Type())
	for _, kv := range d.pairs(n, path, 0) {
		k, val := kv[0], kv[1]
		p := joinPath(path, k.Value)
		if path == "" && strings.HasPrefix(k.Value, "x-") {
			continue // extension keys hold YAML anchors for reuse
		}
		idx, ok := fields[k.Value]
		if !ok {
			d.fail(k.Line, p, "unknown key%s", suggest(k.Value, fields))
			continue
		}
		d.meta.lines[p] = k.Line
		d.value(val, v.Field(idx), p)
	}
}

// pairs lists a mapping's key/value nodes, reporting non-string and
// duplicate keys, and resolving merge keys (<<: *anchor) with the
// mapping's own keys taking precedence.
func (d *decoder) pairs(n *yaml.Node, path string, depth int) [][2]*yaml.Node {
	if d.budget < 0 {
		return nil
	}
	var own, merged [][2]*yaml.Node
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if !d.spend(k) {
			return nil
		}
		if k.Kind != yaml.ScalarNode {
			d.fail(k.Line, path, "mapping keys must be strings, got %s", kindName(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			if depth > 8 {
				d.fail(k.Line, path, "merge keys nested too deeply")
				continue
			}
			merged = append(merged, d.mergeSources(val, path, depth)...)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.fail(k.Line, joinPath(path, k.Value), "duplicate key (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		own = append(own, [2]*yaml.Node{k, val})
	}
	for _, kv := range merged {
		if _, ok := seen[kv[0].Value]; !ok {
			seen[kv[0].Value] = kv[0].Line
			own = append(own, kv)
		}
	}
	return own
}

func (d *decoder) mergeSources(val *yaml.Node, path string, depth int) [][2]*yaml.Node {
	if val.Kind == yaml.AliasNode && val.Alias != nil {
		val = val.Alias
	}
	switch val.Kind {
	case yaml.MappingNode:
		return d.pairs(val, path, depth+1)
	case yaml.SequenceNode:
		var out [][2]*yaml.Node
		seen := map[string]bool{}
		for _, m := range val.Content {
			if !d.spend(m) {
				return nil
			}
			for _, kv := range d.mergeSources(m, path, depth+1) {
				if !seen[kv[0].Value] { // earlier sources win, as in YAML 1.1
					seen[kv[0].Value] = true
					out = append(out, kv)
				}
			}
		}
		return out
	default:
		d.fail(val.Line, path, "a merge key (<<) needs a mapping or a list of mappings, got %s", kindName(val))
		return nil
	}
}

func (d *decoder) stringMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n.Line, path, "expected a mapping (key: value), got %s", kindName(n))
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		d.fail(n.Line, path, "cannot decode into %s", v.Type())
		return
	}
	m := reflect.MakeMap(v.Type())
	for _, kv := range d.pairs(n, path, 0) {
		p := joinPath(path, kv[0].Value)
		d.meta.lines[p] = kv[0].Line
		elem := reflect.New(v.Type().Elem()).Elem()
		d.value(kv[1], elem, p)
		m.SetMapIndex(reflect.ValueOf(kv[0].Value).Convert(v.Type().Key()), elem)
	}
	v.Set(m)
}

// expand applies ${VAR} expansion to a scalar value node. It returns a copy
// (the tree is never modified, so an aliased node is expanded once per use
// from its original text). A plain scalar's tag is resolved again from the
// expanded text, so ${PORT} can fill an integer; anything that does not
// resolve to a number or boolean stays a string, never parsed as YAML.
func (d *decoder) expand(n *yaml.Node, path string) (*yaml.Node, bool, bool) {
	if !strings.Contains(n.Value, "$") {
		return n, false, true
	}
	val, err := expand(n.Value, d.lookup)
	if err != nil {
		d.fail(n.Line, path, "%v", err)
		return nil, false, false
	}
	if val == n.Value {
		return n, false, true
	}
	cp := *n
	cp.Value = val
	const explicit = yaml.TaggedStyle | yaml.DoubleQuotedStyle | yaml.SingleQuotedStyle | yaml.LiteralStyle | yaml.FoldedStyle
	if n.Style&explicit == 0 {
		cp.Tag = ""
		switch cp.ShortTag() {
		case "!!int", "!!float", "!!bool":
		case "!!null":
			if val != "" {
				cp.Tag = "!!str" // "null" or "~" from a variable is text
			}
		default:
			cp.Tag = "!!str"
		}
	}
	return &cp, true, true
}

// yamlFields maps yaml key → field index for a struct type.
func yamlFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		if name, ok := yamlName(t.Field(i)); ok {
			m[name] = i
		}
	}
	return m
}

// yamlName is the YAML key of a struct field, or false for fields that
// are not part of the file.
func yamlName(f reflect.StructField) (string, bool) {
	if !f.IsExported() {
		return "", false
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" || name == "" {
		return "", false
	}
	return name, true
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a scalar"
	case yaml.AliasNode:
		return "an alias"
	}
	return "nothing"
}

// sensitiveKeys are keys whose values never appear in messages.
var sensitiveKeys = map[string]bool{"secret": true, "secret_key": true, "session_token": true, "access_key": true, "api_token": true, "password": true, "token": true,
	"subject_hash_key": true}

// shown renders a scalar for an error message, unless it is secret or came
// from the environment (which may hold secrets).
func shown(n *yaml.Node, path string, fromEnv bool) string {
	last := path[strings.LastIndexAny(path, ".]")+1:]
	switch {
	case fromEnv:
		return "a value from the environment"
	case sensitiveKeys[last] || strings.Contains(path, ".headers.") || strings.Contains(path, "upload_id_keys"):
		return "a value that is not shown"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:40] + "…"
	}
	return fmt.Sprintf("%q", v)
}

// suggest proposes the closest known key for a misspelt one.
func suggest(key string, fields map[string]int) string {
	best, bestD := "", 3
	for name := range fields {
		if dist := editDistance(key, name); dist < bestD || dist == bestD && name < best {
			best, bestD = name, dist
		}
	}
	if best == "" || bestD > 2 {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
