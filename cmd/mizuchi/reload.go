package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// runReload asks a running server to reload its configuration by sending
// it SIGHUP. The outcome is in the server's log and in
// mizuchi_config_reloads_total / mizuchi_config_last_reload_success: a
// signal has no answer.
func runReload(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pidFile := fs.String("pid-file", "", "the file `mizuchi serve --pid-file` wrote")
	pid := fs.Int("pid", 0, "the process id of the server")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if (*pidFile == "") == (*pid == 0) || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "mizuchi reload: give exactly one of --pid-file FILE and --pid PID")
		return 2
	}
	if *pidFile != "" {
		n, err := readPIDFile(*pidFile)
		if err != nil {
			fmt.Fprintf(stderr, "mizuchi reload: %v\n", err)
			return 1
		}
		*pid = n
	}
	if *pid <= 1 {
		fmt.Fprintf(stderr, "mizuchi reload: %d is not a server's process id\n", *pid)
		return 2
	}
	if err := syscall.Kill(*pid, syscall.SIGHUP); err != nil {
		fmt.Fprintf(stderr, "mizuchi reload: signalling process %d: %v\n", *pid, err)
		return 1
	}
	fmt.Fprintf(stdout, "reload requested from process %d; the server logs the outcome and counts it in mizuchi_config_reloads_total\n", *pid)
	return 0
}

// writePIDFile writes the process id atomically (a temp file renamed), so
// mizuchi reload never reads half a number.
func writePIDFile(path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".mizuchi-pid-*")
	if err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	_, werr := fmt.Fprintf(tmp, "%d\n", os.Getpid())
	merr := tmp.Chmod(0o644)
	cerr := tmp.Close()
	if err := errors.Join(werr, merr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("pid file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("pid file: %w", err)
	}
	return nil
}

func readPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("pid file: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("pid file %s: not a process id", path)
	}
	return n, nil
}
