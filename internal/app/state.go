package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api"
	"github.com/mizuchi-uploadr/mizuchi/internal/state"
)

// buildState makes what replicas share and the process keeps across
// reloads: the state store, and the key generated for upload ids when none
// is configured.
func (a *App) buildState() error {
	ids, err := s3api.NewUploadIDs(nil)
	if err != nil {
		return err
	}
	a.uploadIDs = ids
	if len(a.cfg.Server.UploadIDKeys) == 0 {
		a.log.Warn("server.upload_id_keys is not set: multipart upload ids are sealed with a key generated at start, so open multipart uploads do not survive a restart and do not work on another replica")
	}
	st, err := state.New(a.cfg.State, state.Options{
		Metrics: a.metrics,
		Tracer:  a.tracing.Provider().Tracer("github.com/mizuchi-uploadr/mizuchi/internal/state"),
	})
	if err != nil {
		return err
	}
	a.shared = st
	a.closers = append(a.closers, st.Close)
	if st.Name() != "memory" {
		a.log.Info("shared state", slog.String("backend", st.Name()))
	}
	return nil
}

// uploadIDsFor is the upload id sealer of a configuration: its keys (a
// reload may rotate them), or the process's generated key, so ids survive
// reloads either way.
func (a *App) uploadIDsFor(cfg *config.Config) (*s3api.UploadIDs, error) {
	if len(cfg.Server.UploadIDKeys) == 0 {
		return a.uploadIDs, nil
	}
	ids, err := s3api.NewUploadIDs(cfg.Server.UploadIDKeys)
	if err != nil {
		return nil, fmt.Errorf("server.upload_id_keys: %w", err)
	}
	return ids, nil
}

// ReplayStore is the store the SigV4 authenticators claim signatures in
// (sigv4.Options.ReplayStore, buckets.go): nil with the memory backend, so each
// authenticator keeps its own in-process store with fair shares between
// access keys; the shared store with redis, so a signature used on one
// replica is a replay on every other. A Claim that gets no answer fails
// the request closed (503 SlowDown) and is counted in
// mizuchi_state_errors_total{op="claim"}.
func (a *App) ReplayStore() state.Store {
	if a.shared == nil || a.shared.Name() == "memory" {
		return nil
	}
	return a.shared
}

// readyState adds the store to /readyz: a store that does not answer
// makes the replica unready, so the load balancer stops sending it the
// requests it would refuse.
func (a *App) readyState(ctx context.Context, details map[string]string) bool {
	if a.shared == nil {
		return true
	}
	if err := a.shared.Check(ctx); err != nil {
		details["state"] = err.Error()
		a.log.Warn("state store not ready", slog.Any("error", err))
		return false
	}
	details["state"] = "ok (" + a.shared.Name() + ")"
	return true
}
