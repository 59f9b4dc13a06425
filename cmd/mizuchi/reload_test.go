package main

import (
	"bytes"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestReloadArguments(t *testing.T) {
	for _, args := range [][]string{nil, {"--pid", "12", "--pid-file", "x"}, {"--pid", "1"}, {"extra"}} {
		var out, errb bytes.Buffer
		if code := run(append([]string{"reload"}, args...), &out, &errb); code != 2 {
			t.Errorf("reload %v: exit %d, want 2 (%s)", args, code, errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"reload", "--pid-file", filepath.Join(t.TempDir(), "missing.pid")}, &out, &errb); code != 1 {
		t.Errorf("missing pid file: exit %d, want 1", code)
	}
}

// The pid file written by serve is read by reload, which sends SIGHUP.
func TestReloadSignalsThePIDFromTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mizuchi.pid")
	if err := writePIDFile(path); err != nil {
		t.Fatal(err)
	}
	if n, err := readPIDFile(path); err != nil || n != os.Getpid() {
		t.Fatalf("read %d, %v; want %d", n, err, os.Getpid())
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var out, errb bytes.Buffer
	if code := run([]string{"reload", "--pid-file", path}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "reload requested") {
		t.Fatalf("output %q", out.String())
	}
	select {
	case <-hup:
	case <-time.After(10 * time.Second):
		t.Fatal("no SIGHUP received")
	}
}
