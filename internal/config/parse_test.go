package config

import (
	"errors"
	"strings"
	"testing"
)

// env builds a lookupEnv from a map.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// minimal is a valid file; tests append to or replace parts of it.
const minimal = `buckets:
  - name: a
    path_prefix: /a
    filesystem: { root: /tmp/a }
`

func mustParse(t *testing.T, yml string, vars map[string]string) *Config {
	t.Helper()
	c, err := Parse([]byte(yml), "t.yaml", env(vars))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

// parseErr parses and returns the error text, failing if there is none.
func parseErr(t *testing.T, yml string, vars map[string]string) string {
	t.Helper()
	c, err := Parse([]byte(yml), "t.yaml", env(vars))
	if err == nil {
		t.Fatalf("Parse succeeded, want an error; summary:\n%s", c.Summary())
	}
	var e *Errors
	if !errors.As(err, &e) {
		t.Fatalf("error is %T, want *Errors", err)
	}
	if c != nil {
		t.Fatalf("Parse returned a config with an error")
	}
	return err.Error()
}

func TestEnvExpansion(t *testing.T) {
	tests := []struct {
		name string
		yml  string
		vars map[string]string
		get  func(*Config) any
		want any
	}{
		{
			name: "plain variable",
			yml:  minimal + "logging:\n  level: ${LVL}\n",
			vars: map[string]string{"LVL": "debug"},
			get:  func(c *Config) any { return c.Logging.Level },
			want: "debug",
		},
		{
			name: "default when unset",
			yml:  minimal + "logging:\n  level: ${LVL:-warn}\n",
			get:  func(c *Config) any { return c.Logging.Level },
			want: "warn",
		},
		{
			name: "default when set but empty",
			yml:  minimal + "logging: { level: \"${LVL:-error}\" }\n",
			vars: map[string]string{"LVL": ""},
			get:  func(c *Config) any { return c.Logging.Level },
			want: "error",
		},
		{
			name: "value wins over default",
			yml:  minimal + "logging:\n  level: ${LVL:-warn}\n",
			vars: map[string]string{"LVL": "error"},
			get:  func(c *Config) any { return c.Logging.Level },
			want: "error",
		},
		{
			name: "inside a double-quoted string",
			yml:  minimal + "server: { address: \"${HOST}:${PORT}\" }\n",
			vars: map[string]string{"HOST": "0.0.0.0", "PORT": "9000"},
			get:  func(c *Config) any { return c.Server.Address },
			want: "0.0.0.0:9000",
		},
		{
			name: "inside a single-quoted string",
			yml:  minimal + "tracing: { service_name: 'svc-${ENV}' }\n",
			vars: map[string]string{"ENV": "prod"},
			get:  func(c *Config) any { return c.Tracing.ServiceName },
			want: "svc-prod",
		},
		{
			name: "unset variable in a comment is ignored",
			yml:  "# ${NOT_SET}\n" + minimal + "logging: { level: info } # ${ALSO_NOT_SET}\n",
			get:  func(c *Config) any { return c.Logging.Level },
			want: "info",
		},
		{
			name: "plain variable fills an integer",
			yml:  minimal + "server:\n  max_header_bytes: ${MHB}\n",
			vars: map[string]string{"MHB": "70000"},
			get:  func(c *Config) any { return c.Server.MaxHeaderBytes },
			want: 70000,
		},
		{
			name: "plain variable fills a boolean",
			yml:  minimal + "metrics:\n  enabled: ${M}\n",
			vars: map[string]string{"M": "false"},
			get:  func(c *Config) any { return c.Metrics.On() },
			want: false,
		},
		{
			name: "plain variable fills a float",
			yml:  minimal + "tracing:\n  sampling:\n    ratio: ${R}\n",
			vars: map[string]string{"R": "0.25"},
			get:  func(c *Config) any { return c.Tracing.Sampling.Ratio },
			want: 0.25,
		},
		{
			name: "plain variable fills a size",
			yml:  minimal + "    upload:\n      part_size: ${PS}\n",
			vars: map[string]string{"PS": "8MiB"},
			get:  func(c *Config) any { return c.Buckets[0].Upload.PartSize },
			want: Size(8 << 20),
		},
		{
			name: "empty expansion of a plain scalar means omitted",
			yml:  minimal + "server:\n  max_header_bytes: ${MHB:-}\n",
			get:  func(c *Config) any { return c.Server.MaxHeaderBytes },
			want: DefaultMaxHeaderBytes,
		},
		{
			name: "value that looks like a YAML mapping stays a string",
			yml:  minimal + "tracing:\n  service_name: ${SVC}\n",
			vars: map[string]string{"SVC": "{a: b, c: [1, 2]}"},
			get:  func(c *Config) any { return c.Tracing.ServiceName },
			want: "{a: b, c: [1, 2]}",
		},
		{
			name: "value with a comment marker and newline stays whole",
			yml:  minimal + "tracing:\n  service_name: ${SVC}\n",
			vars: map[string]string{"SVC": "a # b\nc: d"},
			get:  func(c *Config) any { return c.Tracing.ServiceName },
			want: "a # b\nc: d",
		},
		{
			name: "value that looks like a number stays a string in a string field",
			yml:  minimal + "tracing:\n  service_name: ${SVC}\n",
			vars: map[string]string{"SVC": "0x10"},
			get:  func(c *Config) any { return c.Tracing.ServiceName },
			want: "0x10",
		},
		{
			name: "null from a variable is text, not null",
			yml:  minimal + "tracing:\n  service_name: ${SVC}\n",
			vars: map[string]string{"SVC": "null"},
			get:  func(c *Config) any { return c.Tracing.ServiceName },
			want: "null",
		},
		{
			name: "expanded value is not expanded again",
			yml:  minimal + "tracing:\n  service_name: ${SVC}\n",
			vars: map[string]string{"SVC": "${OTHER}"},
			get:  func(c *Config) any { return c.Tracing.ServiceName },
			want: "${OTHER}",
		},
		{
			name: "$${ is a literal ${",
			yml:  minimal + "tracing: { service_name: \"a$${NOT_SET}b\" }\n",
			get:  func(c *Config) any { return c.Tracing.ServiceName },
			want: "a${NOT_SET}b",
		},
		{
			name: "a lone $ is literal",
			yml:  minimal + "tracing: { service_name: \"pa$$w$rd$\" }\n",
			get:  func(c *Config) any { return c.Tracing.ServiceName },
			want: "pa$$w$rd$",
		},
		{
			name: "keys are not expanded but values under aliases are",
			yml: minimal + `    auth: &auth
      enabled: true
      jwt: { algorithm: HS256, secret: "${SECRET}" }
  - name: b
    path_prefix: /b
    filesystem: { root: /tmp/b }
    auth: *auth
`,
			vars: map[string]string{"SECRET": "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t"},
			get:  func(c *Config) any { return c.Buckets[1].Auth.JWT.Secret },
			want: "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t",
		},
		{
			name: "block scalar",
			yml:  minimal + "tracing:\n  service_name: |-\n    svc-${ENV}\n",
			vars: map[string]string{"ENV": "x"},
			get:  func(c *Config) any { return c.Tracing.ServiceName },
			want: "svc-x",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, tt.yml, tt.vars)
			if got := tt.get(c); got != tt.want {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestEnvExpansionErrors(t *testing.T) {
	tests := []struct {
		name string
		yml  string
		vars map[string]string
		want []string
		not  []string
	}{
		{
			name: "unset variable names the variable and line",
			yml:  minimal + "logging:\n  level: ${LOG_LEVEL}\n",
			want: []string{"t.yaml:6: logging.level: environment variable LOG_LEVEL is not set"},
		},
		{
			name: "every unset variable is reported",
			yml:  minimal + "logging:\n  level: ${A}\n  format: \"${B}\"\n",
			want: []string{"t.yaml:6: logging.level: environment variable A is not set", "t.yaml:7: logging.format: environment variable B is not set"},
		},
		{
			name: "unterminated reference",
			yml:  minimal + "logging: { level: \"${A\" }\n",
			want: []string{"t.yaml:5: logging.level: unterminated ${"},
		},
		{
			name: "invalid name",
			yml:  minimal + "logging: { level: \"${1A}\" }\n",
			want: []string{"t.yaml:5: logging.level: invalid variable reference"},
		},
		{
			name: "shell forms other than :- are refused",
			yml:  minimal + "logging: { level: \"${A-x}\" }\n",
			want: []string{"t.yaml:5: logging.level: invalid variable reference"},
		},
		{
			name: "quoted variable cannot fill an integer",
			yml:  minimal + "server: { max_header_bytes: \"${MHB}\" }\n",
			vars: map[string]string{"MHB": "70000"},
			want: []string{"t.yaml:5: server.max_header_bytes: expected an integer, got a value from the environment"},
		},
		{
			name: "a secret from the environment in the wrong type is not echoed",
			yml:  minimal + "server:\n  max_header_bytes: ${MHB}\n",
			vars: map[string]string{"MHB": "hunter2"},
			want: []string{"server.max_header_bytes: expected an integer, got a value from the environment"},
			not:  []string{"hunter2"},
		},
		{
			name: "an unset variable under an unused section is still an error",
			yml:  minimal + "tracing: { enabled: false, otlp: { endpoint: \"${OTLP}\" } }\n",
			want: []string{"tracing.otlp.endpoint: environment variable OTLP is not set"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseErr(t, tt.yml, tt.vars)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("error lacks %q:\n%s", w, got)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(got, n) {
					t.Errorf("error contains %q:\n%s", n, got)
				}
			}
			if n := strings.Count(got, "\n") + 1; n != len(tt.want) {
				t.Errorf("got %d problems, want %d:\n%s", n, len(tt.want), got)
			}
		})
	}
}

func TestStrictDecode(t *testing.T) {
	tests := []struct {
		name string
		yml  string
		want []string
	}{
		{
			name: "unknown top-level key",
			yml:  minimal + "metric:\n  enabled: true\n",
			want: []string{`t.yaml:5: metric: unknown key (did you mean "metrics"?)`},
		},
		{
			name: "unknown key at depth with its line",
			yml: minimal + `    auth:
      enabled: true
      jwt:
        algorithm: HS256
        secret: "0123456789abcdef0123456789abcdef"
        token_sources:
          - type: query
            nam: token
`,
			want: []string{
				`t.yaml:11: buckets[0].auth.jwt.token_sources[0].name: required for type query`,
				`t.yaml:12: buckets[0].auth.jwt.token_sources[0].nam: unknown key (did you mean "name"?)`,
			},
		},
		{
			name: "unknown key without a close match",
			yml:  minimal + "    colour: blue\n",
			want: []string{"t.yaml:5: buckets[0].colour: unknown key"},
		},
		{
			name: "type error with line",
			yml:  minimal + "server:\n  idle_timeout_seconds: soon\n",
			want: []string{`t.yaml:6: server.idle_timeout_seconds: expected an integer, got "soon"`},
		},
		{
			name: "boolean expected",
			yml:  minimal + "metrics:\n  enabled: maybe\n",
			want: []string{`t.yaml:6: metrics.enabled: expected true or false, got "maybe"`},
		},
		{
			name: "bad size",
			yml:  minimal + "    upload:\n      part_size: 64 MB/s\n",
			want: []string{`t.yaml:6: buckets[0].upload.part_size: expected a size`},
		},
		{
			name: "list where a mapping is expected",
			yml:  minimal + "server: [a, b]\n",
			want: []string{"t.yaml:5: server: expected a mapping (key: value), got a list"},
		},
		{
			name: "mapping where a string is expected",
			yml:  minimal + "logging:\n  level: { a: b }\n",
			want: []string{"t.yaml:6: logging.level: expected a string, got a mapping"},
		},
		{
			name: "scalar where a list is expected",
			yml:  "buckets: uploads\n",
			want: []string{"t.yaml:1: buckets: expected a list, got a scalar"},
		},
		{
			name: "duplicate key",
			yml:  minimal + "logging:\n  level: info\n  level: debug\n",
			want: []string{"t.yaml:7: logging.level: duplicate key (first at line 6)"},
		},
		{
			name: "secret value of the wrong type is not echoed",
			yml:  minimal + "    s3: { bucket: b, region: r, secret_key: [x] }\n",
			want: []string{"buckets[0].s3.secret_key: expected a string, got a list", "set exactly one of s3 and filesystem"},
		},
		{
			name: "invalid YAML syntax",
			yml:  minimal + "logging:\n\tlevel: info\n",
			want: []string{"t.yaml:6: invalid YAML"},
		},
		{
			name: "two documents",
			yml:  minimal + "---\n" + minimal,
			want: []string{"more than one YAML document"},
		},
		{
			name: "top level is not a mapping",
			yml:  "- a\n- b\n",
			want: []string{"t.yaml:1: expected a mapping (key: value), got a list"},
		},
		{
			name: "several problems at once",
			yml:  minimal + "serer: {}\nlogging: { level: loud, fromat: json }\n",
			want: []string{
				`t.yaml:5: serer: unknown key (did you mean "server"?)`,
				`t.yaml:6: logging.fromat: unknown key (did you mean "format"?)`,
				`t.yaml:6: logging.level: unknown level "loud"`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseErr(t, tt.yml, nil)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("error lacks %q:\n%s", w, got)
				}
			}
			if n := strings.Count(got, "\n") + 1; n != len(tt.want) {
				t.Errorf("got %d problems, want %d:\n%s", n, len(tt.want), got)
			}
		})
	}
}

func TestTypeErrorIsNotRepeatedByValidation(t *testing.T) {
	got := parseErr(t, minimal+"    upload: { concurrent_parts: many }\n", nil)
	if strings.Count(got, "concurrent_parts") != 1 {
		t.Errorf("want one problem about concurrent_parts:\n%s", got)
	}
}

func TestMergeKeys(t *testing.T) {
	c := mustParse(t, `x-limits: &limits
  max_object_size: 1GiB
  part_size: 8MiB
buckets:
  - name: a
    path_prefix: /a
    filesystem: { root: /tmp/a }
    upload:
      <<: *limits
      part_size: 16MiB
`, nil)
	u := c.Buckets[0].Upload
	if u.MaxObjectSize != 1<<30 || u.PartSize != 16<<20 {
		t.Errorf("merged upload: max_object_size %s part_size %s", u.MaxObjectSize, u.PartSize)
	}
}

func TestEmptyDocumentNeedsABucket(t *testing.T) {
	for _, doc := range []string{"", "# only a comment\n", "~\n", "{}\n"} {
		got := parseErr(t, doc, nil)
		if !strings.Contains(got, "t.yaml: buckets: at least one bucket is required") {
			t.Errorf("%q: %s", doc, got)
		}
	}
}

func TestExplicitValuesAreKept(t *testing.T) {
	c := mustParse(t, minimal+`    authz:
      enabled: true
      opa:
        url: http://127.0.0.1:8181
        cache_ttl_seconds: 0
  - name: b
    path_prefix: /b
    filesystem: { root: /tmp/b }
    authz:
      enabled: true
      opa: { url: "http://127.0.0.1:8181" }
server:
  shutdown_grace_seconds: 0
tracing:
  sampling: { strategy: ratio, ratio: 0 }
`, nil)
	if got := c.Buckets[0].Authz.OPA.CacheTTLSeconds; got != 0 {
		t.Errorf("explicit cache_ttl_seconds 0 became %d", got)
	}
	if got := c.Buckets[1].Authz.OPA.CacheTTLSeconds; got != DefaultAuthzCacheTTL {
		t.Errorf("omitted cache_ttl_seconds is %d, want %d", got, DefaultAuthzCacheTTL)
	}
	if got := c.Buckets[1].Authz.OPA.PolicyPath; got != DefaultOPAPolicyPath {
		t.Errorf("policy_path %q", got)
	}
	if c.Server.ShutdownGraceSeconds != 0 {
		t.Errorf("explicit shutdown_grace_seconds 0 became %d", c.Server.ShutdownGraceSeconds)
	}
	if c.Tracing.Sampling.Ratio != 0 {
		t.Errorf("explicit ratio 0 became %v", c.Tracing.Sampling.Ratio)
	}
}

func TestDefaultsFillOmittedKeys(t *testing.T) {
	c := mustParse(t, minimal+`    auth:
      enabled: true
      jwt: { algorithm: RS256, jwks_url: "https://idp.example/jwks" }
      sigv4:
        credentials: [{ access_key: AK, secret_key: SK, subject: alice }]
    authz:
      enabled: true
      openfga: { url: "127.0.0.1:8081", store_id: S }
`, nil)
	b := c.Buckets[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"server.address", c.Server.Address, "127.0.0.1:8080"},
		{"read_header_timeout", c.Server.ReadHeaderTimeoutSeconds, 10},
		{"idle_timeout", c.Server.IdleTimeoutSeconds, 120},
		{"shutdown_grace", c.Server.ShutdownGraceSeconds, 30},
		{"max_header_bytes", c.Server.MaxHeaderBytes, 65536},
		{"zero_copy.enabled", c.Server.ZeroCopy.On(), true},
		{"pipe_buffer_size", c.Server.ZeroCopy.PipeBufferSize, Size(1 << 20)},
		{"metrics", c.Metrics.On(), true},
		{"metrics.address", c.Metrics.Address, "127.0.0.1:9090"},
		{"tracing.enabled", c.Tracing.Enabled, false},
		{"fallback", c.Tracing.Fallback, "none"},
		{"service_name", c.Tracing.ServiceName, "mizuchi-uploadr"},
		{"otlp.endpoint", c.Tracing.OTLP.Endpoint, "http://127.0.0.1:4317"},
		{"otlp.protocol", c.Tracing.OTLP.Protocol, "grpc"},
		{"otlp.timeout", c.Tracing.OTLP.TimeoutSeconds, 10},
		{"otlp.compression", c.Tracing.OTLP.Compression, "gzip"},
		{"sampling.strategy", c.Tracing.Sampling.Strategy, "parent_based"},
		{"sampling.ratio", c.Tracing.Sampling.Ratio, 1.0},
		{"batch.queue", c.Tracing.Batch.MaxQueueSize, 2048},
		{"batch.delay", c.Tracing.Batch.ScheduledDelayMillis, 5000},
		{"batch.export", c.Tracing.Batch.MaxExportBatchSize, 512},
		{"logging.level", c.Logging.Level, "info"},
		{"logging.format", c.Logging.Format, "json"},
		{"max_object_size", b.Upload.MaxObjectSize, Size(5 << 30)},
		{"multipart_threshold", b.Upload.MultipartThreshold, Size(50 << 20)},
		{"part_size", b.Upload.PartSize, Size(64 << 20)},
		{"concurrent_parts", b.Upload.ConcurrentParts, 4},
		{"max_memory_buffer", b.Upload.MaxMemoryBuffer, Size(32 << 20)},
		{"min_part_size", b.Upload.MinPartSize, Size(5 << 20)},
		{"jwt.cache_ttl", b.Auth.JWT.CacheTTLSeconds, 3600},
		{"jwt.leeway", b.Auth.JWT.LeewaySeconds, 30},
		{"jwt.token_sources", len(b.Auth.JWT.TokenSources), 1},
		{"jwt.token_sources[0]", b.Auth.JWT.TokenSources[0], TokenSource{Type: "bearer"}},
		{"sigv4.region", b.Auth.SigV4.Region, "us-east-1"},
		{"sigv4.skew", b.Auth.SigV4.MaxClockSkewSeconds, 900},
		{"openfga.transport", b.Authz.OpenFGA.Transport, "grpc"},
		{"openfga.user", b.Authz.OpenFGA.User, "user:{subject}"},
		{"openfga.relation", b.Authz.OpenFGA.Relation, "writer"},
		{"openfga.object", b.Authz.OpenFGA.Object, "bucket:{bucket}"},
		{"openfga.timeout", b.Authz.OpenFGA.TimeoutSeconds, 2},
		{"openfga.cache_ttl", b.Authz.OpenFGA.CacheTTLSeconds, 60},
		{"openfga.cache_max", b.Authz.OpenFGA.CacheMaxEntries, 10000},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %#v, want %#v", ck.name, ck.got, ck.want)
		}
	}
}

func TestEmbeddedOPADefaults(t *testing.T) {
	c := mustParse(t, minimal+"    authz: { enabled: true, opa: { policy_file: p.rego } }\n", nil)
	o := c.Buckets[0].Authz.OPA
	if o.Query != "data.mizuchi.allow" || o.PolicyPath != "" || o.TimeoutSeconds != 2 || o.CacheTTLSeconds != 60 || o.CacheMaxEntries != 10000 {
		t.Errorf("embedded OPA defaults: %+v", *o)
	}
}

func TestOmittedAuthMeansDisabled(t *testing.T) {
	c := mustParse(t, minimal, nil)
	if c.Buckets[0].Auth != nil || c.Buckets[0].Authz != nil {
		t.Errorf("auth/authz created for an omitted section")
	}
}
