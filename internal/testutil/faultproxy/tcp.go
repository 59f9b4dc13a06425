package faultproxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Action is what a TCP fault does to the connection that trips it.
type Action int

const (
	// Reset closes both sides with RST (SO_LINGER 0).
	Reset Action = iota + 1
	// Stall stops forwarding towards the server and never closes: the
	// client's writes block once the socket buffers are full.
	Stall
)

// Fault trips when AfterBytes more bytes (client→server, all connections
// together) have been forwarded since it was armed.
type Fault struct {
	Action     Action
	AfterBytes int64
	// Times the fault trips before it disarms itself (0: forever).
	Times int
}

// TCP is a TCP proxy to one target address.
type TCP struct {
	// Addr is the proxy's host:port.
	Addr   string
	target string
	ln     net.Listener

	mu      sync.Mutex
	fault   *Fault
	sent    int64 // upstream bytes since the fault was armed
	tripped int
	latency time.Duration
	conns   []net.Conn
	total   int
	closed  bool
	stop    chan struct{}
}

// StartTCP proxies a free loopback port to target until the test ends.
func StartTCP(t testing.TB, target string) *TCP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("faultproxy: listen: %v", err)
	}
	p := &TCP{Addr: ln.Addr().String(), target: target, ln: ln, stop: make(chan struct{})}
	go p.serve()
	t.Cleanup(p.Close)
	return p
}

// Arm installs a fault (replacing any other) and restarts its count.
func (p *TCP) Arm(f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault, p.sent, p.tripped = &f, 0, 0
}

// Disarm removes the fault; stalled connections stay stalled.
func (p *TCP) Disarm() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault = nil
}

// Tripped says how often the armed fault fired.
func (p *TCP) Tripped() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tripped
}

// SetLatency delays every forwarded chunk, both ways.
func (p *TCP) SetLatency(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.latency = d
}

// Accepted counts the connections accepted so far.
func (p *TCP) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total
}

// Close stops the proxy and drops every connection.
func (p *TCP) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.stop)
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	_ = p.ln.Close()
	for _, c := range conns {
		_ = c.Close()
	}
}

func (p *TCP) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = c.Close()
			return
		}
		p.total++
		p.conns = append(p.conns, c)
		p.mu.Unlock()
		go p.handle(c)
	}
}

func (p *TCP) handle(client net.Conn) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = client.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, server)
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { p.pipe(server, client, true); done <- struct{}{} }()
	go func() { p.pipe(client, server, false); done <- struct{}{} }()
	<-done
	_ = client.Close()
	_ = server.Close()
	<-done
}

// pipe copies src to dst; upstream copies are subject to the fault.
func (p *TCP) pipe(dst, src net.Conn, upstream bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		chunk := buf[:n]
		for len(chunk) > 0 {
			allow, act := p.account(int64(len(chunk)), upstream)
			if d := p.delay(); d > 0 {
				time.Sleep(d)
			}
			if allow > 0 {
				if _, werr := dst.Write(chunk[:allow]); werr != nil {
					return
				}
				chunk = chunk[allow:]
			}
			switch act {
			case Reset:
				resetConn(src)
				resetConn(dst)
				return
			case Stall:
				// Keep both connections open, forward nothing more.
				<-p.stop
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
			} else {
				// Pass a reset on as a reset.
				resetConn(dst)
			}
			return
		}
	}
}

func (p *TCP) delay() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.latency
}

// account returns how many of n bytes may pass and whether the fault
// trips after them.
func (p *TCP) account(n int64, upstream bool) (int64, Action) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.fault
	if !upstream || f == nil {
		return n, 0
	}
	left := f.AfterBytes - p.sent
	if left >= n {
		p.sent += n
		return n, 0
	}
	if left < 0 {
		left = 0
	}
	p.tripped++
	p.sent = 0
	if f.Times > 0 && p.tripped >= f.Times {
		p.fault = nil
	}
	return left, f.Action
}

func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
