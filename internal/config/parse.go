package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"regexp"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// SourceBuiltin is Config.Source when no configuration file was found.
const SourceBuiltin = "built-in default"

// EnvConfig names the environment variable consulted by Resolve.
const EnvConfig = "MIZUCHI_CONFIG"

// DefaultFile is the file Resolve uses when present in the working
// directory.
const DefaultFile = "config.yaml"

// Resolve finds and loads the configuration: flagPath when not empty, else
// $MIZUCHI_CONFIG when set and not empty, else ./config.yaml when it exists,
// else Default(). lookupEnv nil means os.LookupEnv; it is used both for
// $MIZUCHI_CONFIG and for ${VAR} expansion.
func Resolve(flagPath string, lookupEnv func(string) (string, bool)) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	if flagPath != "" {
		return Load(flagPath, lookupEnv)
	}
	if p, ok := lookupEnv(EnvConfig); ok && p != "" {
		return Load(p, lookupEnv)
	}
	switch _, err := os.Stat(DefaultFile); {
	case err == nil:
		return Load(DefaultFile, lookupEnv)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("config: %w", err)
	}
	return Default(), nil
}

// Load reads and parses the file at path. lookupEnv, when given, resolves
// ${VAR}; the default is os.LookupEnv.
func Load(path string, lookupEnv ...func(string) (string, bool)) (*Config, error) {
	lookup := os.LookupEnv
	if len(lookupEnv) > 0 && lookupEnv[0] != nil {
		lookup = lookupEnv[0]
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, path, lookup)
}

// Default is the built-in configuration used when no file exists: listen
// on 127.0.0.1:8080, one anonymous bucket "uploads" at /uploads stored in
// ./data/uploads, metrics on 127.0.0.1:9090.
func Default() *Config {
	on := true
	c := &Config{
		Source: SourceBuiltin,
		Server: Server{Address: "127.0.0.1:8080"},
		Buckets: []Bucket{{
			Name:       "uploads",
			PathPrefix: "/uploads",
			Filesystem: &FilesystemBackend{Root: "./data/uploads"},
		}},
		Metrics: Metrics{Enabled: &on, Address: "127.0.0.1:9090"},
	}
	c.ApplyDefaults()
	return c
}

var yamlErrLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Parse turns YAML into a validated *Config: ${VAR} expansion in scalar
// values, strict decoding, ApplyDefaults and Validate. source names the
// file in messages. lookupEnv nil means os.LookupEnv. Every problem is
// returned at once as an *Errors.
func Parse(data []byte, source string, lookupEnv func(string) (string, bool)) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	fail := func(line int, msg string) error {
		return &Errors{Problems: []Problem{{Source: source, Line: line, Message: msg}}}
	}

	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		if m := yamlErrLine.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			return nil, fail(line, "invalid YAML: "+m[2])
		}
		return nil, fail(0, "invalid YAML: "+err.Error())
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, fail(extra.Line, "more than one YAML document (---); write one")
	} else if !errors.Is(err, io.EOF) {
		return nil, fail(0, "invalid YAML after the first document: "+err.Error())
	}

	c := &Config{Source: source, meta: newMeta()}
	d := &decoder{source: source, lookup: lookupEnv, meta: c.meta, budget: decodeBudget}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	if root.Kind != yaml.DocumentNode && root.Kind != 0 && root.ShortTag() != "!!null" {
		d.value(root, reflect.ValueOf(c).Elem(), "")
	}

	c.ApplyDefaults()
	probs := d.probs
	for _, p := range c.check().errs {
		if !c.meta.covered(p.Path) {
			probs = append(probs, p)
		}
	}
	if len(probs) > 0 {
		return nil, &Errors{Problems: sortProblems(probs)}
	}
	return c, nil
}

// covered reports whether path, or a path above it, already failed to
// decode, so a validation message about it would only repeat the cause.
func (m *meta) covered(path string) bool {
	if m == nil {
		return false
	}
	for {
		if m.failed[path] {
			return true
		}
		if path == "" {
			return false
		}
		path = parentPath(path)
	}
}

// parentPath drops the last element of a YAML path: a.b[2].c → a.b[2] →
// a.b → a → "".
func parentPath(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		switch p[i] {
		case '.':
			return p[:i]
		case '[':
			return p[:i]
		}
	}
	return ""
}

// isSet reports whether the key at path was written in the file.
func (c *Config) isSet(path string) bool {
	return c.meta != nil && c.meta.set[path]
}

// lineOf is the line of path's key, or of its nearest ancestor that has
// one (values filled by defaults have no line of their own).
func (c *Config) lineOf(path string) int {
	if c.meta == nil {
		return 0
	}
	for {
		if l, ok := c.meta.lines[path]; ok {
			return l
		}
		if path == "" {
			return 0
		}
		path = parentPath(path)
	}
}
