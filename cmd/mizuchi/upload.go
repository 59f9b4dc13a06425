package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/uploader"
)

const uploadUsage = `Usage: mizuchi upload [flags] FILE... URL

Uploads files to Mizuchi (or any S3-compatible endpoint, path style).
URL is http(s)://host:port/<prefix>/[key-or-dir/]. A single FILE goes to
URL itself when URL names a key (it has a path below the prefix and does
not end in "/"); otherwise each FILE goes to URL/<base name of FILE>.

Files below --multipart-threshold are sent in one PutObject, larger ones
as a multipart upload of --part-size parts, --concurrency at a time. Each
request is retried on network errors, 5xx and SlowDown, and a multipart
upload that fails or is interrupted (Ctrl-C) is aborted on the server.

Credentials, first match wins: --token, --access-key/--secret-key,
$MIZUCHI_TOKEN, $AWS_ACCESS_KEY_ID/$AWS_SECRET_ACCESS_KEY; none (or
--anonymous) uploads anonymously. Prefer the variables: command lines are
visible to other users.

One line per uploaded file on stdout: key, size in bytes and ETag,
separated by tabs.

Exit status: 0 all files uploaded; 1 an upload failed (the S3 error code
and message are printed); 2 usage error (bad flag, URL or file);
3 authentication or authorization refused (401/403); 4 server or network
unavailable after the retries; 130 interrupted. With several files the
status is that of the first failure.

Flags:
`

// Exit statuses of "mizuchi upload".
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitAuth        = 3
	exitUnavailable = 4
	exitInterrupted = 130
)

// metadataFlag collects repeated --metadata k=v.
type metadataFlag map[string]string

func (m metadataFlag) String() string { return "" }

func (m metadataFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	k = strings.ToLower(strings.TrimSpace(k))
	if !ok || k == "" {
		return errors.New("want key=value")
	}
	for _, c := range k {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("metadata key %q: only letters, digits, '-', '_' and '.'", k)
		}
	}
	for _, c := range v {
		if c < 0x20 || c > 0x7e {
			return fmt.Errorf("metadata value for %q: printable ASCII only", k)
		}
	}
	m[k] = v
	return nil
}

// sizeFlag is a byte count written as 16777216 or 16MiB.
type sizeFlag int64

func (s *sizeFlag) String() string { return uploader.FormatBytes(int64(*s)) }

func (s *sizeFlag) Set(v string) error {
	n, err := config.ParseSize(v)
	if err != nil {
		return err
	}
	*s = sizeFlag(n)
	return nil
}

type uploadFlags struct {
	token, accessKey, secretKey, region, caFile, contentType string
	anonymous, quiet, progress                               bool
	metadata                                                 metadataFlag
	threshold, partSize                                      sizeFlag
	concurrency, retries                                     int
}

// runUpload implements "mizuchi upload". It returns the exit status
// documented in uploadUsage.
func runUpload(args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills at once
	}()
	return uploadMain(ctx, args, stdout, stderr, lookupEnv)
}

func uploadMain(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	f := uploadFlags{metadata: metadataFlag{}, threshold: uploader.DefaultMultipartThreshold, partSize: uploader.DefaultPartSize}
	fs := flag.NewFlagSet("upload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, uploadUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&f.token, "token", "", "bearer token (JWT) (default $MIZUCHI_TOKEN)")
	fs.StringVar(&f.accessKey, "access-key", "", "SigV4 access key id (default $AWS_ACCESS_KEY_ID)")
	fs.StringVar(&f.secretKey, "secret-key", "", "SigV4 secret key (default $AWS_SECRET_ACCESS_KEY)")
	fs.StringVar(&f.region, "region", "us-east-1", "SigV4 signing region")
	fs.BoolVar(&f.anonymous, "anonymous", false, "send no credentials, whatever the environment holds")
	fs.StringVar(&f.caFile, "ca-file", "", "PEM file of extra CA certificates trusted for https")
	fs.StringVar(&f.contentType, "content-type", "", "Content-Type of every file (default: by file extension)")
	fs.Var(f.metadata, "metadata", "user metadata `key=value`, sent as x-amz-meta-key (repeatable)")
	fs.Var(&f.threshold, "multipart-threshold", "files this large or larger use a multipart upload")
	fs.Var(&f.partSize, "part-size", "multipart part size, 5MiB to 5GiB (grown when a file needs more than 10000 parts)")
	fs.IntVar(&f.concurrency, "concurrency", uploader.DefaultConcurrency, "parts uploaded in parallel")
	fs.IntVar(&f.retries, "retries", 3, "retries per request on network errors, 5xx and SlowDown")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress line and no retry notices")
	fs.BoolVar(&f.progress, "progress", false, "progress line even when stderr is not a terminal")

	pos, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "mizuchi upload: "+format+"\n", a...)
		fmt.Fprintln(stderr, "Run 'mizuchi upload -h' for usage.")
		return exitUsage
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	switch {
	case len(pos) < 2:
		return usageErr("want at least one FILE and a URL")
	case f.quiet && f.progress:
		return usageErr("--quiet and --progress are mutually exclusive")
	case f.partSize < uploader.MinPartSize || f.partSize > uploader.MaxPartSize:
		return usageErr("--part-size must be between 5MiB and 5GiB")
	case f.threshold < 1 || f.threshold > uploader.MaxPartSize:
		return usageErr("--multipart-threshold must be between 1 byte and 5GiB (the largest single PUT)")
	case f.concurrency < 1 || f.concurrency > 64:
		return usageErr("--concurrency must be between 1 and 64")
	case f.retries < 0 || f.retries > 20:
		return usageErr("--retries must be between 0 and 20")
	case f.token != "" && (f.accessKey != "" || f.secretKey != ""):
		return usageErr("--token and --access-key/--secret-key are mutually exclusive")
	case f.anonymous && (f.token != "" || f.accessKey != "" || f.secretKey != ""):
		return usageErr("--anonymous excludes --token and --access-key/--secret-key")
	}
	signer, err := chooseSigner(f, lookupEnv)
	if err != nil {
		return usageErr("%v", err)
	}
	targets, err := uploader.Targets(pos[:len(pos)-1], pos[len(pos)-1])
	if err != nil {
		return usageErr("%v", err)
	}
	for _, t := range targets {
		st, err := os.Stat(t.File)
		if err != nil {
			return usageErr("%v", err)
		}
		if !st.Mode().IsRegular() {
			return usageErr("%s is not a regular file", t.File)
		}
	}
	var tlsConfig *tls.Config
	if f.caFile != "" {
		if tlsConfig, err = loadCAFile(f.caFile); err != nil {
			return usageErr("%v", err)
		}
	}

	showProgress := f.progress || (!f.quiet && isTerminal(stderr))
	logOut := &switchWriter{w: stderr}
	level := slog.LevelWarn
	if f.quiet {
		level = slog.LevelError
	}
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level, ReplaceAttr: dropTime}))
	up, err := uploader.New(uploader.Options{
		Client:             uploader.NewHTTPClient(uploader.TransportOptions{MaxConnsPerHost: f.concurrency + 1, TLSConfig: tlsConfig}),
		Signer:             signer,
		MultipartThreshold: int64(f.threshold),
		PartSize:           int64(f.partSize),
		Concurrency:        f.concurrency,
		Retries:            f.retries,
		UserAgent:          "mizuchi-upload/" + version,
		Logger:             log,
	})
	if err != nil {
		return usageErr("%v", err)
	}

	status := exitOK
	for _, t := range targets {
		code := uploadOne(ctx, up, t, f, showProgress, logOut, stdout, stderr)
		if code == exitInterrupted {
			fmt.Fprintln(stderr, "mizuchi upload: interrupted")
			return exitInterrupted
		}
		if status == exitOK {
			status = code
		}
	}
	return status
}

func uploadOne(ctx context.Context, up *uploader.Uploader, t uploader.Target, f uploadFlags, showProgress bool, logOut *switchWriter, stdout, stderr io.Writer) int {
	file, err := os.Open(t.File)
	if err != nil {
		fmt.Fprintf(stderr, "mizuchi upload: %v\n", err)
		return exitFailed
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		fmt.Fprintf(stderr, "mizuchi upload: %v\n", err)
		return exitFailed
	}
	ct := f.contentType
	if ct == "" {
		ct = mime.TypeByExtension(filepath.Ext(t.File))
	}
	if ct == "" {
		ct = "application/octet-stream"
	}
	obj := uploader.Object{URL: t.URL, Body: file, Size: st.Size(), ContentType: ct, Metadata: f.metadata}
	var bar *uploader.Progress
	if showProgress {
		bar = uploader.NewProgress(stderr, t.Key, st.Size())
		obj.Progress = bar.Add
		logOut.set(bar.Writer())
		bar.Start(250 * time.Millisecond)
	}
	res, err := up.Upload(ctx, obj)
	if bar != nil {
		bar.Stop() // erases the line before the summary or the error
		logOut.set(stderr)
	}
	kind := uploader.Classify(err)
	if kind == uploader.KindOK {
		fmt.Fprintf(stdout, "%s\t%d\t%s\n", t.Key, res.Size, res.ETag)
		return exitOK
	}
	if kind != uploader.KindCanceled {
		fmt.Fprintf(stderr, "mizuchi upload: %s: %v\n", t.File, err)
	}
	switch kind {
	case uploader.KindCanceled:
		return exitInterrupted
	case uploader.KindAuth:
		return exitAuth
	case uploader.KindUnavailable:
		return exitUnavailable
	}
	return exitFailed
}

// chooseSigner picks the credentials: flags first, then the environment.
func chooseSigner(f uploadFlags, lookupEnv func(string) (string, bool)) (uploader.Signer, error) {
	env := func(k string) string { v, _ := lookupEnv(k); return v }
	sigv4 := func(ak, sk string) (uploader.Signer, error) {
		if ak == "" || sk == "" {
			return nil, errors.New("SigV4 needs both an access key and a secret key")
		}
		return uploader.SigV4{AccessKey: ak, SecretKey: sk, Region: f.region}, nil
	}
	switch {
	case f.anonymous:
		return nil, nil
	case f.token != "":
		return uploader.Bearer(f.token), nil
	case f.accessKey != "" || f.secretKey != "":
		ak, sk := f.accessKey, f.secretKey
		if ak == "" {
			ak = env("AWS_ACCESS_KEY_ID")
		}
		if sk == "" {
			sk = env("AWS_SECRET_ACCESS_KEY")
		}
		return sigv4(ak, sk)
	case env("MIZUCHI_TOKEN") != "":
		return uploader.Bearer(env("MIZUCHI_TOKEN")), nil
	case env("AWS_ACCESS_KEY_ID") != "" || env("AWS_SECRET_ACCESS_KEY") != "":
		return sigv4(env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))
	}
	return nil, nil
}

// parseInterspersed parses flags found anywhere among the arguments
// ("FILE --quiet URL"); everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for i, a := range args {
		if a == "--" {
			args, rest = args[:i], args[i+1:]
			break
		}
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return append(pos, rest...), nil
}

func loadCAFile(path string) (*tls.Config, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate found", path)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// switchWriter lets log lines go through the current progress line's
// writer (which erases the line first) and back to plain stderr.
type switchWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *switchWriter) set(w io.Writer) {
	s.mu.Lock()
	s.w = w
	s.mu.Unlock()
}

func (s *switchWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}
