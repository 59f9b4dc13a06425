package config

import (
	"strings"
	"testing"
)

func TestEventsDefaults(t *testing.T) {
	c := mustParse(t, minimal+`    events:
      - type: webhook
        url: "https://app.example/hook"
        secret: "s"
      - type: nats
        url: "nats://127.0.0.1:4222"
`, nil)
	e := c.Events
	if e.OutboxDir != DefaultEventsOutboxDir || e.MaxPending != 100000 || e.OnFull != "refuse" || e.HashSubjects || e.MaxRetryIntervalSeconds != 20 {
		t.Errorf("events defaults: %+v", e)
	}
	w, n := c.Buckets[0].Events[0], c.Buckets[0].Events[1]
	if len(w.Events) != 1 || w.Events[0] != "s3:ObjectCreated:*" || w.TimeoutSeconds != 5 {
		t.Errorf("webhook defaults: %+v", w)
	}
	if n.Subject != "mizuchi.{bucket}" || n.JetStream {
		t.Errorf("nats defaults: %+v", n)
	}
}

func TestEventsValidation(t *testing.T) {
	tests := []struct {
		name, yml, want string
	}{
		{"unknown type", minimal + "    events:\n      - type: kafka\n", "buckets[0].events[0].type: unknown sink"},
		{"webhook without secret", minimal + "    events:\n      - { type: webhook, url: \"https://h/x\" }\n", "buckets[0].events[0].secret: required"},
		{"webhook bad scheme", minimal + "    events:\n      - { type: webhook, url: \"ftp://h/x\", secret: s }\n", "buckets[0].events[0].url: scheme"},
		{"webhook reserved header", minimal + "    events:\n      - { type: webhook, url: \"https://h/x\", secret: s, headers: { x-mizuchi-signature: a } }\n", "is set by Mizuchi"},
		{"unknown event", minimal + "    events:\n      - { type: webhook, url: \"https://h/x\", secret: s, events: [\"s3:ObjectRemoved:*\"] }\n", "unknown event"},
		{"nats wildcard subject", minimal + "    events:\n      - { type: nats, url: \"nats://h:4222\", subject: \"up.>\" }\n", "without wildcards"},
		{"nats unknown placeholder", minimal + "    events:\n      - { type: nats, url: \"nats://h:4222\", subject: \"up.{key}\" }\n", "unknown placeholder"},
		{"nats http url", minimal + "    events:\n      - { type: nats, url: \"http://h:4222\" }\n", "scheme"},
		{"nats secret", minimal + "    events:\n      - { type: nats, url: \"nats://h:4222\", secret: s }\n", "not used by a nats sink"},
		{"on_full", minimal + "events: { on_full: block }\n", "events.on_full: unknown value"},
		{"max_pending", minimal + "events: { max_pending: 0 }\n", "events.max_pending: must be at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseErr(t, tt.yml, nil); !strings.Contains(got, tt.want) {
				t.Errorf("error lacks %q:\n%s", tt.want, got)
			}
		})
	}
}

func TestEventsSecretsNotEchoed(t *testing.T) {
	got := parseErr(t, minimal+"    events:\n      - { type: nats, url: \"nats://h:4222\", token: [hunter2], password: {a: hunter3} }\n", nil)
	if strings.Contains(got, "hunter") {
		t.Errorf("error shows a secret:\n%s", got)
	}
}

func TestEventsSummaryHidesSecrets(t *testing.T) {
	c := mustParse(t, minimal+`    events:
      - type: webhook
        url: "https://user:pw@app.example/hook?token=hunter2"
        secret: "hunter3"
      - type: nats
        url: "nats://u:hunter4@127.0.0.1:4222"
        jetstream: true
`, nil)
	s := c.Summary()
	if !strings.Contains(s, "webhook https://…@app.example") || !strings.Contains(s, "nats nats://…@127.0.0.1:4222 subject mizuchi.{bucket} (JetStream)") ||
		!strings.Contains(s, "events outbox: ./data/.events") {
		t.Errorf("summary:\n%s", s)
	}
	if strings.Contains(s, "hunter") || strings.Contains(s, "pw") {
		t.Errorf("summary shows a secret:\n%s", s)
	}
}
