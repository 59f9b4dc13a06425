package config

import (
	"strings"
	"testing"
)

// fs is a bucket line block for a second bucket, starting at its "- name".
func fsBucket(name, prefix string) string {
	return "  - name: " + name + "\n    path_prefix: " + prefix + "\n    filesystem: { root: /tmp/second-" + name + " }\n"
}

func TestValidationErrors(t *testing.T) {
	const b = minimal // lines 1-4; bucket keys added from line 5 on
	tests := []struct {
		name string
		yml  string
		want []string
	}{
		{"no buckets", "buckets: []\n", []string{"t.yaml:1: buckets: at least one bucket is required"}},
		{"no buckets key", "logging: { level: info }\n", []string{"t.yaml: buckets: at least one bucket is required"}},
		{"duplicate name", b + fsBucket("a", "/b"), []string{`t.yaml:5: buckets[1].name: duplicate name "a" (also buckets[0])`}},
		{"duplicate prefix", b + fsBucket("b", "/a"), []string{`t.yaml:6: buckets[1].path_prefix: duplicate prefix "/a" (also buckets[0])`}},
		{"nested prefixes are allowed", b + fsBucket("b", "/a/b"), nil},
		{"name missing", "buckets:\n  - path_prefix: /a\n    filesystem: { root: /x }\n", []string{"t.yaml:2: buckets[0].name: required"}},
		{"name with a slash", b + fsBucket("a/b", "/b"), []string{`t.yaml:5: buckets[1].name: "a/b": use 1-63 letters`}},
		{"prefix missing", "buckets:\n  - name: a\n    filesystem: { root: /x }\n", []string{"t.yaml:2: buckets[0].path_prefix: required"}},
		{"prefix without leading slash", b + fsBucket("b", "b"), []string{`t.yaml:6: buckets[1].path_prefix: "b" must start with /`}},
		{"prefix with trailing slash", b + fsBucket("b", "/b/"), []string{`t.yaml:6: buckets[1].path_prefix: "/b/" must not end with /`}},
		{"prefix is root", b + fsBucket("b", "/"), []string{`t.yaml:6: buckets[1].path_prefix: "/" would take every path`}},
		{"prefix with dot-dot", b + fsBucket("b", "/b/../c"), []string{`buckets[1].path_prefix: "/b/../c" must not contain . or .. segments`}},
		{"prefix with dot segment", b + fsBucket("b", "/b/./c"), []string{`buckets[1].path_prefix: "/b/./c" must not contain . or .. segments`}},
		{"prefix with double slash", b + fsBucket("b", "/b//c"), []string{`buckets[1].path_prefix: "/b//c" must not contain //`}},
		{"prefix with query", b + fsBucket("b", "/b?x"), []string{`buckets[1].path_prefix: "/b?x" must not contain ?, #, % or \`}},
		{"prefix with percent", b + fsBucket("b", "/b%2Fc"), []string{`buckets[1].path_prefix: "/b%2Fc" must not contain ?`}},
		{"prefix with space", b + fsBucket("b", `"/b c"`), []string{`buckets[1].path_prefix: "/b c" must not contain spaces`}},
		{"prefix /health", b + fsBucket("b", "/health"), []string{`t.yaml:6: buckets[1].path_prefix: "/health" overlaps the health endpoints`}},
		{"prefix /healthz/x", b + fsBucket("b", "/healthz/x"), []string{`buckets[1].path_prefix: "/healthz/x" overlaps the health endpoints`}},
		{"prefix /readyz", b + fsBucket("b", "/readyz"), []string{`buckets[1].path_prefix: "/readyz" overlaps the health endpoints`}},
		{"prefix /healthy is fine", b + fsBucket("b", "/healthy"), nil},
		{"both backends", b + "    s3: { bucket: x, region: r }\n", []string{"t.yaml:2: buckets[0]: set exactly one of s3 and filesystem, not both"}},
		{"no backend", "buckets:\n  - name: a\n    path_prefix: /a\n", []string{"t.yaml:2: buckets[0]: a backend is required: set s3 or filesystem"}},
		{"filesystem without root", "buckets:\n  - name: a\n    path_prefix: /a\n    filesystem: { root: \"\" }\n", []string{"t.yaml:4: buckets[0].filesystem.root: required"}},
		{"s3 without bucket and region", "buckets:\n  - name: a\n    path_prefix: /a\n    s3:\n      endpoint: http://127.0.0.1:9000\n", []string{
			"t.yaml:4: buckets[0].s3.bucket: required", "t.yaml:4: buckets[0].s3.region: required"}},
		{"s3 access key without secret", s3b("access_key: AK"), []string{"t.yaml:4: buckets[0].s3.secret_key: required when access_key is set"}},
		{"s3 secret without access key", s3b("secret_key: SK"), []string{"t.yaml:4: buckets[0].s3.access_key: required when secret_key is set"}},
		{"s3 session token alone", s3b("session_token: T"), []string{"t.yaml:7: buckets[0].s3.session_token: needs access_key and secret_key"}},
		{"s3 endpoint not a URL", s3b("endpoint: 127.0.0.1:9000"), []string{"t.yaml:7: buckets[0].s3.endpoint: "}},
		{"s3 endpoint with other scheme", s3b("endpoint: ftp://h"), []string{`t.yaml:7: buckets[0].s3.endpoint: scheme "ftp" not allowed`}},
		{"s3 key prefix with dot-dot", s3b("key_prefix: a/../b"), []string{`t.yaml:7: buckets[0].s3.key_prefix: "a/../b" must not start with /`}},
		{"cors without origins", b + "    cors: { max_age_seconds: 1 }\n", []string{"t.yaml:5: buckets[0].cors.allowed_origins: required"}},
		{"cors origin with a path", b + "    cors: { allowed_origins: [\"https://a.example/x\"] }\n", []string{`buckets[0].cors.allowed_origins[0]: "https://a.example/x" is not an origin`}},
		{"cors origin without scheme", b + "    cors: { allowed_origins: [a.example] }\n", []string{`buckets[0].cors.allowed_origins[0]: "a.example" is not an origin`}},
		{"cors unknown method", b + "    cors: { allowed_origins: [\"*\"], allowed_methods: [PATCH] }\n", []string{`buckets[0].cors.allowed_methods[0]: "PATCH" is not one of`}},
		{"cors negative max age", b + "    cors: { allowed_origins: [\"*\"], max_age_seconds: -1 }\n", []string{"buckets[0].cors.max_age_seconds"}},
		{"cors is fine", b + "    cors: { allowed_origins: [\"https://a.example:8443\", \"*\"] }\n", nil},

		{"auth enabled without method", b + "    auth: { enabled: true }\n", []string{"t.yaml:5: buckets[0].auth: enabled without a method"}},
		{"jwt algorithm missing", jwtb("secret: x"), []string{"t.yaml:7: buckets[0].auth.jwt.algorithm: required"}},
		{"jwt algorithm none", jwtb("algorithm: none"), []string{`t.yaml:8: buckets[0].auth.jwt.algorithm: "none" is never accepted`}},
		{"jwt algorithm unknown", jwtb("algorithm: HS999", "secret: x"), []string{`t.yaml:8: buckets[0].auth.jwt.algorithm: unknown algorithm "HS999"`}},
		{"jwt algorithm wrong case", jwtb("algorithm: rs256", "jwks_url: https://i/j"), []string{`unknown algorithm "rs256" (did you mean "RS256"?)`}},
		{"HS256 without secret", jwtb("algorithm: HS256"), []string{"t.yaml:7: buckets[0].auth.jwt.secret: required for HS256"}},
		{"HS256 with a public key", jwtb("algorithm: HS512", "secret: s", "public_key_file: k.pem"), []string{"t.yaml:10: buckets[0].auth.jwt.public_key_file: not used by HS512"}},
		{"HS256 with JWKS", jwtb("algorithm: HS384", "secret: s", "jwks_url: https://i/j"), []string{"t.yaml:10: buckets[0].auth.jwt.jwks_url: not used by HS384"}},
		{"RS256 without key", jwtb("algorithm: RS256"), []string{"t.yaml:7: buckets[0].auth.jwt: RS256 needs public_key_file or jwks_url"}},
		{"RS256 with secret", jwtb("algorithm: RS256", "secret: s", "public_key_file: k.pem"), []string{"t.yaml:9: buckets[0].auth.jwt.secret: only for HS256/384/512"}},
		{"ES256 with both keys", jwtb("algorithm: ES256", "public_key_file: k.pem", "jwks_url: https://i/j"), []string{"t.yaml:7: buckets[0].auth.jwt: set one of public_key_file and jwks_url, not both"}},
		{"jwks_url not http", jwtb("algorithm: EdDSA", "jwks_url: file:///etc/jwks"), []string{`t.yaml:9: buckets[0].auth.jwt.jwks_url: not an absolute URL`}},
		{"negative leeway", jwtb("algorithm: PS256", "jwks_url: https://i/j", "leeway_seconds: -1"), []string{"t.yaml:10: buckets[0].auth.jwt.leeway_seconds: must be at least 0, got -1"}},
		{"empty token sources", jwtb("algorithm: PS256", "jwks_url: https://i/j", "token_sources: []"), []string{"t.yaml:10: buckets[0].auth.jwt.token_sources: at least one token source is required"}},
		{"token source unknown type", jwtb("algorithm: PS256", "jwks_url: https://i/j", "token_sources: [{type: form}]"), []string{`t.yaml:10: buckets[0].auth.jwt.token_sources[0].type: unknown type "form"`}},
		{"token source missing type", jwtb("algorithm: PS256", "jwks_url: https://i/j", "token_sources: [{name: x}]"), []string{`t.yaml:10: buckets[0].auth.jwt.token_sources[0].type: required`}},
		{"token source name missing", jwtb("algorithm: PS256", "jwks_url: https://i/j", "token_sources: [{type: bearer}, {type: cookie}]"), []string{"t.yaml:10: buckets[0].auth.jwt.token_sources[1].name: required for type cookie"}},
		{"bearer with a name", jwtb("algorithm: PS256", "jwks_url: https://i/j", "token_sources: [{type: bearer, name: x}]"), []string{"t.yaml:10: buckets[0].auth.jwt.token_sources[0].name: not used by type bearer"}},
		{"header name invalid", jwtb("algorithm: PS256", "jwks_url: https://i/j", `token_sources: [{type: header, name: "X Token"}]`), []string{`buckets[0].auth.jwt.token_sources[0].name: "X Token" is not a valid header name`}},
		{"duplicate token source", jwtb("algorithm: PS256", "jwks_url: https://i/j", "token_sources: [{type: query, name: t}, {type: query, name: t}]"), []string{"t.yaml:10: buckets[0].auth.jwt.token_sources[1]: duplicate token source"}},

		{"sigv4 without credentials", sigb("region: eu-west-1"), []string{"t.yaml:7: buckets[0].auth.sigv4.credentials: at least one credential is required"}},
		{"sigv4 duplicate access keys", sigb("credentials:", "  - { access_key: AK, secret_key: S1, subject: a }", "  - { access_key: AK, secret_key: S2, subject: b }"),
			[]string{"t.yaml:10: buckets[0].auth.sigv4.credentials[1].access_key: duplicate access key (also buckets[0].auth.sigv4.credentials[0])"}},
		{"sigv4 empty secret and subject", sigb("credentials:", "  - { access_key: AK, secret_key: \"\" }"),
			[]string{"t.yaml:9: buckets[0].auth.sigv4.credentials[0].secret_key: required", "t.yaml:9: buckets[0].auth.sigv4.credentials[0].subject: required"}},
		{"sigv4 empty access key", sigb("credentials:", "  - { secret_key: S, subject: a }"), []string{"t.yaml:9: buckets[0].auth.sigv4.credentials[0].access_key: required"}},
		{"sigv4 access key with slash", sigb("credentials:", "  - { access_key: A/K, secret_key: S, subject: a }"), []string{"buckets[0].auth.sigv4.credentials[0].access_key: must not contain '/'"}},
		{"sigv4 zero skew", sigb("max_clock_skew_seconds: 0", "credentials: [{ access_key: AK, secret_key: S, subject: a }]"), []string{"t.yaml:8: buckets[0].auth.sigv4.max_clock_skew_seconds: must be at least 1, got 0"}},

		{"authz without engine", b + "    authz: { enabled: true }\n", []string{"t.yaml:5: buckets[0].authz: enabled without an engine"}},
		{"authz with both engines", b + "    authz:\n      enabled: true\n      opa: { url: \"http://o\" }\n      openfga: { url: \"h:1\", store_id: s }\n", []string{"t.yaml:5: buckets[0].authz: set one of opa and openfga, not both"}},
		{"opa with neither", opab("timeout_seconds: 1"), []string{"t.yaml:7: buckets[0].authz.opa: set url"}},
		{"opa with both", opab("url: http://o", "policy_file: p.rego"), []string{"t.yaml:7: buckets[0].authz.opa: set one of url and policy_file, not both"}},
		{"opa url not http", opab("url: o:8181"), []string{"t.yaml:8: buckets[0].authz.opa.url: "}},
		{"opa remote with query", opab("url: http://o", "query: data.x"), []string{"t.yaml:9: buckets[0].authz.opa.query: only for an embedded policy_file"}},
		{"opa policy path with data", opab("url: http://o", "policy_path: data.mizuchi.allow"), []string{`t.yaml:9: buckets[0].authz.opa.policy_path: "data.mizuchi.allow": write the path without data`}},
		{"opa policy path with slash", opab("url: http://o", "policy_path: /mizuchi/allow"), []string{`t.yaml:9: buckets[0].authz.opa.policy_path: "/mizuchi/allow" must be a slash-separated package path`}},
		{"opa embedded with policy path", opab("policy_file: p.rego", "policy_path: a/b"), []string{"t.yaml:9: buckets[0].authz.opa.policy_path: only for a remote url"}},
		{"opa embedded query not a rule", opab("policy_file: p.rego", "query: allow"), []string{`t.yaml:9: buckets[0].authz.opa.query: "allow" must be a rule reference`}},
		{"opa zero timeout", opab("url: http://o", "timeout_seconds: 0"), []string{"t.yaml:9: buckets[0].authz.opa.timeout_seconds: must be at least 1, got 0"}},
		{"opa negative cache", opab("url: http://o", "cache_ttl_seconds: -5", "cache_max_entries: -1"), []string{
			"t.yaml:9: buckets[0].authz.opa.cache_ttl_seconds: must be at least 0", "t.yaml:10: buckets[0].authz.opa.cache_max_entries: must be at least 0"}},
		{"openfga unknown transport", fgab("transport: rest", "url: h:1", "store_id: s"), []string{`t.yaml:8: buckets[0].authz.openfga.transport: unknown transport "rest"`}},
		{"openfga missing url and store", fgab("model_id: m"), []string{"t.yaml:7: buckets[0].authz.openfga.url: required", "t.yaml:7: buckets[0].authz.openfga.store_id: required"}},
		{"openfga grpc with scheme", fgab("url: http://h:1", "store_id: s"), []string{`t.yaml:8: buckets[0].authz.openfga.url: "http://h:1": the grpc transport takes host:port`}},
		{"openfga http without scheme", fgab("transport: http", "url: h:1", "store_id: s"), []string{"t.yaml:9: buckets[0].authz.openfga.url: "}},
		{"openfga unknown placeholder", fgab("url: h:1", "store_id: s", "object: \"bucket:{name}\""), []string{"t.yaml:10: buckets[0].authz.openfga.object: unknown placeholder {name}"}},
		{"openfga unbalanced", fgab("url: h:1", "store_id: s", "user: \"user:{subject\""), []string{`t.yaml:10: buckets[0].authz.openfga.user: "user:{subject" has an unbalanced`}},
		{"openfga user without type", fgab("url: h:1", "store_id: s", "user: \"{subject}\""), []string{`t.yaml:10: buckets[0].authz.openfga.user: "{subject}" must have the form type:id`}},
		{"openfga relation with colon", fgab("url: h:1", "store_id: s", "relation: \"can:write\""), []string{`t.yaml:10: buckets[0].authz.openfga.relation: "can:write" is not a relation name`}},
		{"openfga contextual tuple placeholder", fgab("url: h:1", "store_id: s", "contextual_tuples: [{ user: \"user:{subject}\", relation: member, object: \"team:{tenant}\" }]"),
			[]string{"t.yaml:10: buckets[0].authz.openfga.contextual_tuples[0].object: unknown placeholder {tenant}"}},

		{"part size below 5MiB", upb("part_size: 4MiB"), []string{"t.yaml:6: buckets[0].upload.part_size: must be between 5MiB (min_part_size) and 5GiB, got 4MiB"}},
		{"part size above 5GiB", upb("part_size: 6GiB"), []string{"t.yaml:6: buckets[0].upload.part_size: must be between 5MiB (min_part_size) and 5GiB, got 6GiB"}},
		{"part size may follow a lowered min_part_size", upb("min_part_size: 1KiB", "part_size: 64KiB", "multipart_threshold: 128KiB"), nil},
		{"min part size above 5MiB", upb("min_part_size: 6MiB"), []string{"t.yaml:6: buckets[0].upload.min_part_size: must be between 1 byte and 5MiB, got 6MiB"}},
		{"threshold above 5GiB", upb("multipart_threshold: 6GiB"), []string{"t.yaml:6: buckets[0].upload.multipart_threshold: must be between 5MiB (min_part_size) and 5GiB"}},
		{"threshold below min part size", upb("multipart_threshold: 1MiB"), []string{"t.yaml:6: buckets[0].upload.multipart_threshold: must be between 5MiB"}},
		{"concurrent parts zero", upb("concurrent_parts: 0"), []string{"t.yaml:6: buckets[0].upload.concurrent_parts: must be between 1 and 256, got 0"}},
		{"max object size above 5TiB", upb("max_object_size: 6TiB"), []string{"t.yaml:6: buckets[0].upload.max_object_size: must be between 1 byte and 5TiB, got 6TiB"}},
		{"max object size zero", upb("max_object_size: 0"), []string{"t.yaml:6: buckets[0].upload.max_object_size: must be between 1 byte and 5TiB, got 0"}},
		{"bad content type", upb(`allowed_content_types: ["image/png", "png", "text/plain; charset=utf-8"]`), []string{
			`t.yaml:6: buckets[0].upload.allowed_content_types[1]: "png" is not a media type`,
			`t.yaml:6: buckets[0].upload.allowed_content_types[2]: "text/plain; charset=utf-8" is not a media type`}},

		{"server address not host:port", b + "server: { address: \"8080\" }\n", []string{`t.yaml:5: server.address: "8080" is not host:port`}},
		{"server port not a number", b + "server: { address: \"h:http\" }\n", []string{`t.yaml:5: server.address: "h:http": port must be a number`}},
		{"tls with only cert", b + "server:\n  tls: { cert_file: c.pem }\n", []string{"t.yaml:6: server.tls.key_file: required when server.tls.cert_file is set"}},
		{"tls with only key", b + "server:\n  tls: { key_file: k.pem }\n", []string{"t.yaml:6: server.tls.cert_file: required when server.tls.key_file is set"}},
		{"trusted proxy not a CIDR", b + "server:\n  trusted_proxies: [10.0.0.0/8, 192.168.1.7, \"10.0.0.0/33\", eth0]\n", []string{
			`t.yaml:6: server.trusted_proxies[2]: "10.0.0.0/33" is not a CIDR`, `t.yaml:6: server.trusted_proxies[3]: "eth0" is not a CIDR`}},
		{"zero timeouts", b + "server:\n  read_header_timeout_seconds: 0\n  idle_timeout_seconds: -1\n  shutdown_grace_seconds: -1\n", []string{
			"t.yaml:6: server.read_header_timeout_seconds: must be at least 1, got 0",
			"t.yaml:7: server.idle_timeout_seconds: must be at least 1, got -1",
			"t.yaml:8: server.shutdown_grace_seconds: must be at least 0, got -1"}},
		{"max header bytes too small", b + "server:\n  max_header_bytes: 100\n", []string{"t.yaml:6: server.max_header_bytes: must be between 4096 and 16777216, got 100"}},
		{"pipe buffer too small", b + "server:\n  zero_copy: { pipe_buffer_size: 1KiB }\n", []string{"t.yaml:6: server.zero_copy.pipe_buffer_size: must be between 4KiB and 1GiB, got 1KiB"}},
		{"metrics address", b + "metrics:\n  address: localhost\n", []string{`t.yaml:6: metrics.address: "localhost" is not host:port`}},
		{"metrics on the S3 listener", b + "server: { address: \"127.0.0.1:8080\" }\nmetrics: { address: \"127.0.0.1:8080\" }\n", []string{"t.yaml:6: metrics.address: must differ from server.address"}},
		{"metrics address ignored when off", b + "metrics: { enabled: false, address: nonsense }\n", nil},
		{"ratio above 1", b + "tracing:\n  sampling:\n    ratio: 1.5\n", []string{"t.yaml:7: tracing.sampling.ratio: must be between 0 and 1, got 1.5"}},
		{"ratio below 0", b + "tracing:\n  sampling:\n    ratio: -0.1\n", []string{"t.yaml:7: tracing.sampling.ratio: must be between 0 and 1, got -0.1"}},
		{"ratio NaN", b + "tracing:\n  sampling:\n    ratio: .nan\n", []string{"t.yaml:7: tracing.sampling.ratio: must be between 0 and 1, got NaN"}},
		{"unknown enums", b + "tracing:\n  fallback: stdout\n  otlp: { protocol: http/json, compression: zstd }\n  sampling: { strategy: sometimes }\nlogging: { level: trace, format: xml }\n", []string{
			`t.yaml:6: tracing.fallback: unknown value "stdout" (want none, console)`,
			`t.yaml:7: tracing.otlp.protocol: unknown value "http/json" (want grpc, http/protobuf)`,
			`t.yaml:7: tracing.otlp.compression: unknown value "zstd" (want gzip, none)`,
			`t.yaml:8: tracing.sampling.strategy: unknown value "sometimes" (want always, never, ratio, parent_based)`,
			`t.yaml:9: logging.level: unknown level "trace"`,
			`t.yaml:9: logging.format: unknown format "xml"`}},
		{"otlp endpoint", b + "tracing:\n  otlp: { endpoint: \"collector\" }\n", []string{`t.yaml:6: tracing.otlp.endpoint: "collector" is not host:port`}},
		{"otlp endpoint host:port", b + "tracing:\n  otlp: { endpoint: \"collector:4317\" }\n", nil},
		{"batch sizes", b + "tracing:\n  batch: { max_queue_size: 10, max_export_batch_size: 20, scheduled_delay_millis: 0 }\n", []string{
			"t.yaml:6: tracing.batch.scheduled_delay_millis: must be at least 1, got 0",
			"t.yaml:6: tracing.batch.max_export_batch_size: must not exceed max_queue_size (10)"}},
		{"otlp header name", b + "tracing:\n  otlp:\n    headers: { \"bad header\": x }\n", []string{"t.yaml:7: tracing.otlp.headers.bad header: not a valid header name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yml), "t.yaml", env(nil))
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("want valid, got:\n%v", err)
				}
				if err := c.Validate(); err != nil {
					t.Fatalf("Validate after Parse: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want errors %q, got none", tt.want)
			}
			got := err.Error()
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

// s3b is a bucket on an S3 backend with extra s3 keys from line 7.
func s3b(lines ...string) string {
	return "buckets:\n  - name: a\n    path_prefix: /a\n    s3:\n      bucket: b\n      region: r\n" + indent("      ", lines)
}

// jwtb is a bucket with jwt keys from line 8.
func jwtb(lines ...string) string {
	return minimal + "    auth:\n      enabled: true\n      jwt:\n" + indent("        ", lines)
}

// sigb is a bucket with sigv4 keys from line 8.
func sigb(lines ...string) string {
	return minimal + "    auth:\n      enabled: true\n      sigv4:\n" + indent("        ", lines)
}

// opab is a bucket with opa keys from line 8.
func opab(lines ...string) string {
	return minimal + "    authz:\n      enabled: true\n      opa:\n" + indent("        ", lines)
}

// fgab is a bucket with openfga keys from line 8.
func fgab(lines ...string) string {
	return minimal + "    authz:\n      enabled: true\n      openfga:\n" + indent("        ", lines)
}

// upb is a bucket with upload keys from line 6.
func upb(lines ...string) string {
	return minimal + "    upload:\n" + indent("      ", lines)
}

func indent(prefix string, lines []string) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(prefix + l + "\n")
	}
	return b.String()
}

func TestValidateProgrammaticConfig(t *testing.T) {
	c := &Config{Buckets: []Bucket{
		{Name: "a", PathPrefix: "/a", Filesystem: &FilesystemBackend{Root: "/x"}},
		{Name: "b", PathPrefix: "/a", Filesystem: &FilesystemBackend{Root: "/y"}, Upload: Upload{ConcurrentParts: -1}},
	}, Source: "test"}
	c.ApplyDefaults()
	err := c.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	want := "test: buckets[1].path_prefix: duplicate prefix \"/a\" (also buckets[0])\ntest: buckets[1].upload.concurrent_parts: must be between 1 and 256, got -1"
	if err.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", err, want)
	}
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		name string
		yml  string
		want []string
	}{
		{"loopback anonymous bucket is quiet", minimal, nil},
		{"anonymous bucket on a public address", minimal + "server: { address: \"0.0.0.0:8080\" }\n", []string{
			`t.yaml:2: buckets[0]: bucket "a" accepts anonymous uploads on 0.0.0.0:8080, which is not a loopback address`}},
		{"anonymous bucket on every interface", minimal + "server: { address: \":8080\" }\n", []string{`bucket "a" accepts anonymous uploads on :8080`}},
		{"metrics on a public address", minimal + "metrics: { address: \"0.0.0.0:9090\" }\n", []string{
			"t.yaml:5: metrics.address: metrics are served on 0.0.0.0:9090, which is not a loopback address"}},
		{"auth disabled with methods", minimal + "    auth: { enabled: false, jwt: { algorithm: HS256, secret: 0123456789abcdef0123456789abcdef } }\n", []string{
			"t.yaml:5: buckets[0].auth.enabled: authentication is disabled"}},
		{"short HMAC secret", jwtb("algorithm: HS256", "secret: short"), []string{"t.yaml:9: buckets[0].auth.jwt.secret: shorter than 32 bytes"}},
		{"plain HTTP JWKS", jwtb("algorithm: RS256", "jwks_url: http://idp.example/jwks"), []string{"t.yaml:9: buckets[0].auth.jwt.jwks_url: fetched over plain HTTP"}},
		{"credentials without TLS on a public address", jwtb("algorithm: RS256", "jwks_url: https://idp.example/jwks") + "server: { address: \"0.0.0.0:8080\" }\n", []string{
			"t.yaml:5: buckets[0].auth: credentials travel over plain HTTP on 0.0.0.0:8080"}},
		{"authz disabled with an engine", minimal + "    authz: { enabled: false, opa: { url: \"http://o\" } }\n", []string{"t.yaml:5: buckets[0].authz.enabled: authorization is disabled"}},
		{"authz without auth", minimal + "    authz: { enabled: true, opa: { url: \"http://o\" } }\n", []string{"t.yaml:5: buckets[0].authz: authorization without authentication"}},
		{"S3 with small parts", s3b() + "    upload: { min_part_size: 1MiB }\n", []string{"t.yaml:7: buckets[0].upload.min_part_size: below 5MiB"}},
		{"parts too small for the max object", upb("max_object_size: 5TiB"), []string{"buckets[0].upload.part_size: 64MiB × 10000 parts is less than max_object_size 5TiB"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, tt.yml, nil)
			var got []string
			for _, w := range c.Warnings() {
				got = append(got, w.String())
			}
			all := strings.Join(got, "\n")
			for _, w := range tt.want {
				if !strings.Contains(all, w) {
					t.Errorf("warnings lack %q:\n%s", w, all)
				}
			}
			if len(got) != len(tt.want) {
				t.Errorf("got %d warnings, want %d:\n%s", len(got), len(tt.want), all)
			}
		})
	}
}

func TestSummaryShowsNoSecrets(t *testing.T) {
	c := mustParse(t, `server:
  address: "0.0.0.0:8443"
  tls: { cert_file: /etc/c.pem, key_file: /etc/k.pem }
buckets:
  - name: media
    path_prefix: /media
    s3: { bucket: store, region: eu-west-1, endpoint: "http://minio:pw-in-url@127.0.0.1:9000", access_key: AKIDSECRET, secret_key: topsecret }
    auth:
      enabled: true
      jwt: { algorithm: HS256, secret: "${JWT_SECRET}", token_sources: [{ type: bearer }, { type: query, name: token }] }
      sigv4: { credentials: [{ access_key: AK1, secret_key: sigsecret, subject: alice }] }
    authz: { enabled: true, openfga: { url: "127.0.0.1:8081", store_id: S } }
    upload: { allowed_content_types: [image/*] }
metrics: { enabled: false }
tracing: { enabled: true, sampling: { strategy: ratio, ratio: 0.5 } }
`, map[string]string{"JWT_SECRET": "jwt-secret-jwt-secret-jwt-secret-42"})
	s := c.Summary()
	for _, want := range []string{
		"configuration: t.yaml",
		"listen: https://0.0.0.0:8443 (certificate /etc/c.pem)",
		"media at /media",
		"backend: s3 bucket store in eu-west-1 at http://minio:xxxxx@127.0.0.1:9000, static credentials",
		"auth: jwt HS256 with secret, from bearer, query token; sigv4 us-east-1 with 1 key(s)",
		"authz: openfga grpc 127.0.0.1:8081 (plaintext), check user:{subject} writer bucket:{bucket}, cache 60s",
		"limits: max object 5GiB; PUTs over 50MiB split into 64MiB parts, 4 at a time; content types: image/*",
		"metrics: off",
		"tracing: OTLP grpc to http://127.0.0.1:4317 as \"mizuchi-uploadr\", sampling ratio 0.5, fallback none",
		"logging: info, json",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
	for _, secret := range []string{"topsecret", "pw-in-url", "jwt-secret", "sigsecret", "AKIDSECRET", "AK1", "alice"} {
		if strings.Contains(s, secret) {
			t.Errorf("summary shows %q:\n%s", secret, s)
		}
	}
}
