package app

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

// watchInterval is how often watched files are looked at.
const watchInterval = time.Second

// watchedFiles lists the configuration file and every file it names that
// a reload reads again.
func watchedFiles(c *config.Config) []string {
	var files []string
	add := func(p string) {
		if p != "" {
			files = append(files, p)
		}
	}
	if c.Source != config.SourceBuiltin {
		add(c.Source)
	}
	add(c.Server.TLS.CertFile)
	add(c.Server.TLS.KeyFile)
	add(c.Server.TLS.ClientCA)
	for _, b := range c.Buckets {
		if b.Auth != nil && b.Auth.JWT != nil {
			add(b.Auth.JWT.PublicKeyFile)
		}
		if z := b.Authz; z != nil {
			if z.OPA != nil {
				add(z.OPA.PolicyFile)
			}
			if z.OpenFGA != nil {
				add(z.OpenFGA.CAFile)
			}
		}
		for _, e := range b.Events {
			add(e.CredentialsFile)
			add(e.CAFile)
			add(e.CertFile)
			add(e.KeyFile)
		}
	}
	return files
}

// fileState is what a poll remembers of a file: a change of any part
// (a rewrite, a rename over it, a Kubernetes ConfigMap symlink swap, a
// deletion) counts.
type fileState struct {
	info os.FileInfo // nil: missing
}

func (s fileState) same(o fileState) bool {
	if s.info == nil || o.info == nil {
		return s.info == nil && o.info == nil
	}
	return os.SameFile(s.info, o.info) && s.info.Size() == o.info.Size() && s.info.ModTime().Equal(o.info.ModTime())
}

func snapshot(files []string) map[string]fileState {
	m := make(map[string]fileState, len(files))
	for _, f := range files {
		info, err := os.Stat(f) // follows symlinks
		if err != nil {
			info = nil
		}
		m[f] = fileState{info: info}
	}
	return m
}

func sameSnapshot(a, b map[string]fileState) bool {
	if len(a) != len(b) {
		return false
	}
	for f, s := range a {
		o, ok := b[f]
		if !ok || !s.same(o) {
			return false
		}
	}
	return true
}

// watchFiles reloads the configuration when server.watch_config is on and
// a watched file differs from what the running generation read (its
// snapshot is taken before it reads them). A change is acted on once the
// files have stayed the same for one more interval, so a certificate and
// its key replaced one after the other are read together. A reload that
// fails is not retried until the files change again.
func (a *App) watchFiles(ctx context.Context) {
	t := time.NewTicker(watchInterval)
	defer t.Stop()
	var (
		running    *generation
		base, prev map[string]fileState
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		g := a.gen.Load()
		if !g.cfg.Server.WatchConfig {
			running = nil
			continue
		}
		if g != running {
			running, base, prev = g, g.files, nil
		}
		now := snapshot(watchedFiles(g.cfg))
		if !sameSnapshot(base, now) && prev != nil && sameSnapshot(prev, now) {
			a.log.Info("reloading the configuration: a watched file changed", slog.String("config", g.cfg.Source))
			if err := a.Reload(ctx); err != nil {
				base = now
			}
		}
		prev = now
	}
}
