package uploader

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestProgressLine(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := NewProgress(&bytes.Buffer{}, "big.bin", 100<<20)
	p.start = t0
	if got := p.lineLocked(t0); !strings.Contains(got, "0 B / 100.0 MiB") || !strings.Contains(got, "0.0%") || !strings.Contains(got, "ETA --:--") {
		t.Fatalf("start: %q", got)
	}
	p.Add(25 << 20)
	got := p.lineLocked(t0.Add(time.Second))
	for _, want := range []string{"big.bin [=====>", "25.0 MiB / 100.0 MiB", " 25.0%", "25.0 MiB/s", "ETA 00:03"} {
		if !strings.Contains(got, want) {
			t.Errorf("after 1s: %q lacks %q", got, want)
		}
	}
	p.Add(75 << 20)
	got = p.lineLocked(t0.Add(2 * time.Second))
	if !strings.Contains(got, "[========================]") || !strings.Contains(got, "100.0%") || !strings.Contains(got, "ETA 00:00") {
		t.Fatalf("done: %q", got)
	}
}

func TestProgressRateFollowsRecentWindow(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := NewProgress(&bytes.Buffer{}, "x", 1<<30)
	p.start = t0
	p.lineLocked(t0)
	p.Add(100 << 20) // fast first second
	p.lineLocked(t0.Add(time.Second))
	for i := 2; i <= 10; i++ { // then 1 MiB/s
		p.Add(1 << 20)
		p.lineLocked(t0.Add(time.Duration(i) * time.Second))
	}
	p.Add(1 << 20)
	if got := p.lineLocked(t0.Add(11 * time.Second)); !strings.Contains(got, " 1.0 MiB/s") {
		t.Fatalf("rate should reflect the last seconds: %q", got)
	}
}

func TestProgressStartStopAndLogWriter(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	w := writerFunc(func(b []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return buf.Write(b) })
	p := NewProgress(w, "file", 10)
	p.Start(time.Hour) // draws once, at once
	p.Add(10)
	p.Writer().Write([]byte("retrying\n"))
	p.Stop()
	p.Stop() // idempotent
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if !strings.HasPrefix(out, "\rfile [    ") || !strings.Contains(out, "\r\x1b[Kretrying\n") || !strings.HasSuffix(out, "\r\x1b[K") {
		t.Fatalf("output %q", out)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

func TestFormatBytesAndETA(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"bytes", FormatBytes(512), "512 B"},
		{"kib", FormatBytes(1536), "1.5 KiB"},
		{"gib", FormatBytes(3 << 30), "3.0 GiB"},
		{"eta minutes", formatETA(125 * time.Second), "02:05"},
		{"eta hours", formatETA(3*time.Hour + 61*time.Second), "3:01:01"},
		{"eta huge", formatETA(200 * time.Hour), ">99h"},
		{"long name", shorten("a/very/long/directory/name/for/a/file.bin", 12), "…/a/file.bin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Fatalf("%q, want %q", tt.got, tt.want)
			}
		})
	}
}
