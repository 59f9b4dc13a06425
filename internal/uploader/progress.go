package uploader

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Progress draws a one-line progress bar (bytes, percent, rate, ETA) for one
// object on a terminal, redrawn in place with a carriage return. Add may be
// called from any goroutine; Object.Progress is Add.
type Progress struct {
	w     io.Writer
	name  string
	total int64
	done  atomic.Int64
	now   func() time.Time

	mu      sync.Mutex
	start   time.Time
	samples []sample // recent (time, bytes) pairs for the rate
	stop    chan struct{}
	stopped chan struct{}
}

type sample struct {
	t time.Time
	n int64
}

// rateWindow is how far back the rate looks: long enough to smooth bursts
// of parts finishing together, short enough to follow a changing link.
const rateWindow = 3 * time.Second

// NewProgress returns a bar for an object of total bytes named name.
func NewProgress(w io.Writer, name string, total int64) *Progress {
	return &Progress{w: w, name: name, total: total, now: time.Now}
}

// Add records n more bytes sent (negative when a retry takes them back).
func (p *Progress) Add(n int64) { p.done.Add(n) }

// Start redraws the line every interval until Stop.
func (p *Progress) Start(interval time.Duration) {
	p.mu.Lock()
	p.start = p.now()
	p.stop, p.stopped = make(chan struct{}), make(chan struct{})
	stop, stopped := p.stop, p.stopped
	p.mu.Unlock()
	p.draw()
	go func() {
		defer close(stopped)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				p.draw()
			}
		}
	}()
}

// Stop ends the redraws and erases the line, leaving the cursor at its start.
func (p *Progress) Stop() {
	p.mu.Lock()
	stop, stopped := p.stop, p.stopped
	p.mu.Unlock()
	if stop == nil {
		return
	}
	close(stop)
	<-stopped
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stop = nil
	io.WriteString(p.w, "\r\x1b[K")
}

// Writer returns a writer for log lines that erases the bar first, so that
// a message printed during an upload does not land in the middle of it.
func (p *Progress) Writer() io.Writer { return progressWriter{p} }

type progressWriter struct{ p *Progress }

func (w progressWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	io.WriteString(w.p.w, "\r\x1b[K")
	return w.p.w.Write(b)
}

func (p *Progress) draw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	io.WriteString(p.w, "\r"+p.lineLocked(p.now())+"\x1b[K")
}

// lineLocked samples the byte count at now and renders the line.
func (p *Progress) lineLocked(now time.Time) string {
	done := max(0, min(p.done.Load(), p.total))
	p.samples = append(p.samples, sample{now, done})
	for len(p.samples) > 2 && now.Sub(p.samples[1].t) >= rateWindow {
		p.samples = p.samples[1:]
	}
	var rate float64 // bytes per second
	if first := p.samples[0]; now.Sub(first.t) > 0 {
		rate = float64(done-first.n) / now.Sub(first.t).Seconds()
	} else if el := now.Sub(p.start); el > 0 {
		rate = float64(done) / el.Seconds()
	}
	pct := 100.0
	if p.total > 0 {
		pct = 100 * float64(done) / float64(p.total)
	}
	const width = 24
	fill := width
	if p.total > 0 {
		fill = int(int64(width) * done / p.total)
	}
	bar := strings.Repeat("=", fill) + strings.Repeat(" ", width-fill)
	if fill > 0 && fill < width {
		bar = strings.Repeat("=", fill-1) + ">" + strings.Repeat(" ", width-fill)
	}
	eta := "--:--"
	if done >= p.total {
		eta = "00:00"
	} else if rate > 0 {
		eta = formatETA(time.Duration(float64(p.total-done) / rate * float64(time.Second)))
	}
	return fmt.Sprintf("%s [%s] %s / %s %5.1f%% %s/s ETA %s",
		shorten(p.name, 32), bar, FormatBytes(done), FormatBytes(p.total), pct, FormatBytes(int64(rate)), eta)
}

func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return "…" + string(r[len(r)-n+1:])
}

func formatETA(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	if s >= 100*3600 {
		return ">99h"
	}
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%02d:%02d", s/60, s%60)
}

// FormatBytes renders n with a binary unit: 512 B, 1.5 KiB, 20.0 MiB.
func FormatBytes(n int64) string {
	const units = "KMGTPE"
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/1024, 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, units[i])
}
