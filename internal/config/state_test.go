package config

import (
	"strings"
	"testing"
)

func TestStateAndScaleOutKeys(t *testing.T) {
	long := strings.Repeat("k", 32)
	tests := []struct {
		name string
		yml  string
		want string // "" = valid
	}{
		{"defaults", minimal, ""},
		{"redis address", minimal + "state: { backend: redis, redis: { address: 10.0.0.5:6379 } }\n", ""},
		{"redis url", minimal + "state: { backend: redis, redis: { url: \"rediss://u:p@cache:6380/2\" } }\n", ""},
		{"unknown backend", minimal + "state: { backend: etcd }\n", `state.backend: unknown value "etcd"`},
		{"url and address", minimal + "state: { backend: redis, redis: { url: \"redis://h:1/0\", address: h:1 } }\n", "state.redis.address: set either address or url"},
		{"url scheme", minimal + "state: { backend: redis, redis: { url: \"http://h:1\" } }\n", `state.redis.url: scheme "http" not allowed`},
		{"bad address", minimal + "state: { backend: redis, redis: { address: cache } }\n", "state.redis.address"},
		{"timeout zero", minimal + "state: { backend: redis, redis: { timeout_seconds: 0 } }\n", "state.redis.timeout_seconds"},
		{"negative db", minimal + "state: { backend: redis, redis: { db: -1 } }\n", "state.redis.db"},
		{"short upload id key", minimal + "server: { upload_id_keys: [short-secret] }\n", "server.upload_id_keys[0]: must be at least 32 bytes"},
		{"upload id keys", minimal + "server: { upload_id_keys: [" + long + ", " + long + "x] }\n", ""},
		{"short subject hash key", minimal + "tracing: { subject_hash_key: short-secret }\n", "tracing.subject_hash_key: must be at least 32 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yml), "t.yaml", func(string) (string, bool) { return "", false })
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			for _, secret := range []string{"short-secret", "u:p"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("message shows a secret: %v", err)
				}
			}
			_ = c
		})
	}
	c, _ := Parse([]byte(minimal), "t.yaml", nil)
	if c.State.Backend != "memory" || c.State.Redis.KeyPrefix != "mizuchi:" || c.State.Redis.TimeoutSeconds != 2 {
		t.Fatalf("state defaults %+v", c.State)
	}
}
