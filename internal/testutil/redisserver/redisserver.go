// Package redisserver runs a real redis-server (Debian's package, see
// scripts/install-tools.sh) on a free loopback port for tests. It can be
// stopped and started again on the same port, with nothing persisted.
package redisserver

import (
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/testproc"
)

// Server is a redis-server for one test.
type Server struct {
	// Addr is 127.0.0.1:PORT.
	Addr string
	// Password is required from clients when set at Start.
	Password string
	Proc     *testproc.Proc

	t   testing.TB
	bin string
	dir string
}

// Start runs redis-server until the test ends. A non-empty password is
// required from clients (requirepass).
func Start(t testing.TB, password string) *Server {
	t.Helper()
	s := &Server{
		Addr:     "127.0.0.1:" + strconv.Itoa(testproc.FreePort(t)),
		Password: password,
		t:        t,
		bin:      testproc.LookPath(t, "redis-server"),
		dir:      t.TempDir(),
	}
	s.start()
	return s
}

func (s *Server) start() {
	s.t.Helper()
	_, port, _ := splitPort(s.Addr)
	args := []string{
		"--bind", "127.0.0.1",
		"--port", port,
		"--dir", s.dir,
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--protected-mode", "yes",
		"--loglevel", "warning",
		"--maxmemory", "64mb",
		"--maxmemory-policy", "noeviction",
	}
	if s.Password != "" {
		args = append(args, "--requirepass", s.Password)
	}
	s.Proc = testproc.Start(s.t, s.bin, args)
	testproc.WaitTCP(s.t, s.Proc, s.Addr, 10*time.Second)
}

// Stop kills the server (SIGKILL: no goodbye to clients) and waits for it.
func (s *Server) Stop() {
	if s.Proc != nil && !s.Proc.Exited() {
		_ = s.Proc.Signal(syscall.SIGKILL)
		<-s.Proc.Done()
	}
}

// Restart starts a stopped server again on the same port, empty.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// URL is redis://[:password@]addr/0.
func (s *Server) URL() string {
	if s.Password != "" {
		return "redis://:" + s.Password + "@" + s.Addr + "/0"
	}
	return "redis://" + s.Addr + "/0"
}

func splitPort(addr string) (host, port string, ok bool) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[:i], addr[i+1:], true
		}
	}
	return addr, "", false
}
