package config

import (
	"strings"
	"testing"
)

// Addresses are echoed in validation messages to help fix them, except
// when they embed credentials (user:password@): those are never printed,
// whether written in the file or taken from the environment.
func TestAddressMessagesHideCredentials(t *testing.T) {
	b := minimal
	tests := []struct {
		name string
		yml  string
		env  map[string]string
		want string // the problem is still reported
	}{
		{"openfga grpc url with scheme and password", fgab(`url: "grpc://admin:hunter2@fga:8081"`, "store_id: s"), nil, "buckets[0].authz.openfga.url:"},
		{"openfga grpc address with password", fgab(`url: "admin:hunter2@fga:8081"`, "store_id: s"), nil, "buckets[0].authz.openfga.url:"},
		{"openfga grpc url from the environment", fgab(`url: "${FGA_URL}"`, "store_id: s"), map[string]string{"FGA_URL": "https://admin:hunter2@fga:8081"}, "buckets[0].authz.openfga.url:"},
		{"otlp endpoint with password", b + "tracing:\n  otlp: { endpoint: \"admin:hunter2@collector:4317\" }\n", nil, "tracing.otlp.endpoint:"},
		{"server address with password", b + "server: { address: \"admin:hunter2@h:8080\" }\n", nil, "server.address:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yml), "t.yaml", env(tt.env))
			if err == nil {
				t.Fatal("want an error")
			}
			got := err.Error()
			if !strings.Contains(got, tt.want) {
				t.Errorf("error lacks %q:\n%s", tt.want, got)
			}
			if strings.Contains(got, "hunter2") {
				t.Errorf("error shows the password:\n%s", got)
			}
		})
	}
}
