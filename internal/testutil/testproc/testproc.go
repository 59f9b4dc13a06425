// Package testproc starts real servers (versitygw, opa, openfga, jaeger,
// the mizuchi binary) for tests, on free loopback ports, and stops them
// when the test ends. A missing binary fails the test loudly: the tools
// are installed by scripts/install-tools.sh (make test runs it).
package testproc

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// handedOut are the ports FreePort returned in this test process: the
// kernel may offer a port again as soon as its probe listener closed, so
// two servers started together could otherwise be given the same one.
var handedOut sync.Map

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago and
// that it never returned before in this process.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if _, taken := handedOut.LoadOrStore(port, true); !taken {
			return port
		}
	}
	t.Fatal("free port: every port offered was handed out before")
	return 0
}

// LookPath finds a tool or fails the test with the install hint.
func LookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found on PATH: run scripts/install-tools.sh and put ~/.cache/mizuchi/tools/bin on PATH (make test does both)", name)
	}
	return p
}

// Proc is a running server.
type Proc struct {
	Cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error
}

// Output returns what the process wrote so far (stdout and stderr).
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Write implements io.Writer for the process output.
func (p *Proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process ends.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the process's exit error once Done is closed.
func (p *Proc) Err() error { <-p.done; return p.err }

// Signal sends sig to the process.
func (p *Proc) Signal(sig syscall.Signal) error { return p.Cmd.Process.Signal(sig) }

// Start runs path with args and env (added to the test's environment).
// The process is killed at cleanup; its output is logged if the test failed.
func Start(t testing.TB, path string, args []string, env ...string) *Proc {
	t.Helper()
	return StartDir(t, "", path, args, env...)
}

// StartDir is Start with the working directory dir ("" for the current).
func StartDir(t testing.TB, dir, path string, args []string, env ...string) *Proc {
	t.Helper()
	p := &Proc{done: make(chan struct{})}
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), env...)
	cmd.Stdout = p
	cmd.Stderr = p
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	p.Cmd = cmd
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		if !p.Exited() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		if t.Failed() {
			t.Logf("output of %s:\n%s", path, p.Output())
		}
	})
	return p
}

// WaitHTTP waits until url answers any HTTP status, the process exits, or
// timeout passes (then the test fails).
func WaitHTTP(t testing.TB, p *Proc, url string, timeout time.Duration) {
	t.Helper()
	wait(t, p, timeout, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
}

// WaitTCP waits until addr accepts connections.
func WaitTCP(t testing.TB, p *Proc, addr string, timeout time.Duration) {
	t.Helper()
	wait(t, p, timeout, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

func wait(t testing.TB, p *Proc, timeout time.Duration, try func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if p != nil && p.Exited() {
			t.Fatalf("%s exited early (%v):\n%s", p.Cmd.Path, p.err, p.Output())
		}
		if last = try(); last == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	name := "server"
	if p != nil {
		name = p.Cmd.Path
	}
	t.Fatalf("%s not ready after %v: %v", name, timeout, fmt.Sprint(last))
}

// Hole is a loopback listener that accepts connections and never answers:
// a server that is up but hangs.
type Hole struct {
	// Addr is host:port.
	Addr     string
	accepted chan struct{}
}

// Accepted receives (without blocking the listener) when a connection was
// accepted.
func (h *Hole) Accepted() <-chan struct{} { return h.accepted }

// BlackHole starts a Hole that reads and discards what it is sent and
// closes its connections when the test ends.
func BlackHole(t testing.TB) *Hole {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("black hole: %v", err)
	}
	h := &Hole{Addr: l.Addr().String(), accepted: make(chan struct{}, 1)}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() { _, _ = io.Copy(io.Discard, c) }()
			select {
			case h.accepted <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return h
}
