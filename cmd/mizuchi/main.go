// Command mizuchi is the Mizuchi Uploadr server: an upload-only,
// S3-compatible proxy. See README.md and docs/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/mizuchi-uploadr/mizuchi/internal/app"
	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

// Set at build time with -ldflags "-X main.version=… -X main.commit=…".
var (
	version = "dev"
	commit  = "unknown"
)

const usage = `Mizuchi Uploadr: an upload-only, S3-compatible proxy.

Usage:
  mizuchi [serve] [--config FILE] [--pid-file FILE]
                                    run the proxy; SIGHUP reloads the config
  mizuchi reload --pid-file FILE    make the running proxy reload its config
                                    (or --pid PID; same as kill -HUP)
  mizuchi validate --config FILE    check a configuration and print a summary
  mizuchi version                   print version, commit and Go version
  mizuchi healthcheck [--url URL]   exit 0 when the health endpoint answers 200
  mizuchi upload [flags] FILE... URL upload files (mizuchi upload -h)
  mizuchi token --sub S [...]       mint a JWT for testing (mizuchi token -h)

Without --config, the configuration comes from $MIZUCHI_CONFIG, else
./config.yaml, else the built-in default (loopback only, no authentication,
uploads stored under ./data/uploads).
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(args, stderr)
	case "validate":
		return validate(args, stdout, stderr)
	case "reload":
		return runReload(args, stdout, stderr)
	case "version":
		fmt.Fprintf(stdout, "mizuchi %s (commit %s, %s, %s/%s)\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0
	case "healthcheck":
		return runHealthcheck(args, stdout, stderr)
	case "upload":
		return runUpload(args, stdout, stderr, os.LookupEnv)
	case "token":
		return runToken(args, stdout, stderr, os.LookupEnv)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "mizuchi: unknown command %q\n\n%s", cmd, usage)
	return 2
}

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	pidFile := fs.String("pid-file", "", "write the process id to this file (for mizuchi reload)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	// From here on SIGHUP reloads instead of ending the process; one
	// arriving while starting is served once the server runs.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	cfg, err := config.Resolve(*path, os.LookupEnv)
	if err != nil {
		fmt.Fprintf(stderr, "mizuchi: %v\n", err)
		return 1
	}
	log := app.NewLogger(stderr, cfg.Logging)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := app.New(ctx, cfg, app.Options{Logger: log, Version: version, Commit: commit, LookupEnv: os.LookupEnv})
	if err != nil {
		log.Error("cannot start", "error", err)
		return 1
	}
	defer a.Close()
	if *pidFile != "" {
		if err := writePIDFile(*pidFile); err != nil {
			log.Error("cannot start", "error", err)
			return 1
		}
		defer os.Remove(*pidFile)
	}
	go a.ReloadOn(ctx, hup)
	if err := a.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("server failed", "error", err)
		return 1
	}
	return 0
}

func validate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Resolve(*path, os.LookupEnv)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	fmt.Fprintf(stdout, "%s: valid\n%s", cfg.Source, cfg.Summary())
	return 0
}
