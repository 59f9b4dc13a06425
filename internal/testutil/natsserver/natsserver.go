// Package natsserver runs the real nats-server with JetStream (file
// storage in a test temp dir) on a free loopback port for tests, and reads
// back what was published to its streams.
package natsserver

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/testproc"
)

// Server is a running nats-server.
type Server struct {
	// URL is nats://127.0.0.1:PORT.
	URL  string
	Addr string
	Dir  string
	Proc *testproc.Proc
	args []string
}

// Start runs nats-server with JetStream until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := testproc.LookPath(t, "nats-server")
	s := &Server{Dir: t.TempDir()}
	port := testproc.FreePort(t)
	s.Addr = "127.0.0.1:" + strconv.Itoa(port)
	s.URL = "nats://" + s.Addr
	s.args = []string{
		"-a", "127.0.0.1", "-p", strconv.Itoa(port),
		"-js", "-sd", s.Dir,
		"-n", "mizuchi-test",
	}
	s.Proc = testproc.Start(t, bin, s.args)
	testproc.WaitTCP(t, s.Proc, s.Addr, 20*time.Second)
	return s
}

// Stop kills the server (SIGKILL); its streams stay on disk.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	_ = s.Proc.Cmd.Process.Kill()
	<-s.Proc.Done()
}

// Restart runs the server again on the same port and store directory.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Proc = testproc.Start(t, testproc.LookPath(t, "nats-server"), s.args)
	testproc.WaitTCP(t, s.Proc, s.Addr, 20*time.Second)
}

// Connect returns a client connection closed when the test ends.
func (s *Server) Connect(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.URL, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("nats connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// CreateStream creates a file-backed stream on subjects.
func (s *Server) CreateStream(t testing.TB, name string, subjects ...string) {
	t.Helper()
	js, err := jetstream.New(s.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: subjects}); err != nil {
		t.Fatalf("create stream %s: %v", name, err)
	}
}

// Messages returns every message stored in a stream, oldest first.
func (s *Server) Messages(t testing.TB, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	js, err := jetstream.New(s.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s info: %v", stream, err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("stream %s message %d: %v", stream, seq, err)
		}
		out = append(out, m)
	}
	return out
}
