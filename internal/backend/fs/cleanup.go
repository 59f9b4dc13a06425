package fs

import (
	"context"
	"errors"
	iofs "io/fs"
	"path"
	"strings"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

// CleanupStale removes what crashed or abandoned uploads left behind and
// that has not changed for olderThan: temp files anywhere under the root
// (modification time), multipart uploads whose staging directory and
// parts were last written before that (S3 would keep them until aborted
// or a lifecycle rule expires them), and the remains of interrupted
// Complete or Abort calls, and stale metadata records that commits moved
// to StaleDir. It returns how many entries it removed. Live
// uploads keep touching their files, so a slow upload is not affected as
// long as olderThan is longer than its longest pause.
func (s *Store) CleanupStale(ctx context.Context, olderThan time.Duration) (int, error) {
	cutoff := time.Now().Add(-olderThan)
	removed := 0
	var errs []error

	var temps []string
	err := iofs.WalkDir(s.root.FS(), ".", func(name string, d iofs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, iofs.ErrNotExist) {
				return nil // removed while walking
			}
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if d.IsDir() || !strings.HasPrefix(d.Name(), TempPrefix) {
			return nil
		}
		if info, err := d.Info(); err == nil && info.ModTime().Before(cutoff) {
			temps = append(temps, name)
		}
		return nil
	})
	if err != nil {
		return removed, err
	}
	for _, name := range temps {
		if err := s.root.Remove(name); err == nil {
			removed++
		} else if !errors.Is(err, iofs.ErrNotExist) {
			errs = append(errs, err)
		}
	}

	// Stale records moved aside by commits (their age counts from the
	// move).
	stale, err := iofs.ReadDir(s.root.FS(), StaleDir)
	if err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return removed, err
	}
	for _, e := range stale {
		if info, err := e.Info(); err != nil || !info.ModTime().Before(cutoff) {
			continue
		}
		if err := s.root.RemoveAll(path.Join(StaleDir, e.Name())); err != nil {
			errs = append(errs, err)
			continue
		}
		removed++
	}

	entries, err := iofs.ReadDir(s.root.FS(), UploadsDir)
	if err != nil {
		return removed, err
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		name := e.Name()
		id := name
		switch {
		case strings.HasPrefix(name, claimedPrefix):
			id = strings.TrimPrefix(name, claimedPrefix)
		case strings.HasPrefix(name, trashPrefix):
			id = strings.TrimPrefix(name, trashPrefix)
		}
		if i := strings.IndexByte(id, '-'); i >= 0 {
			id = id[:i]
		}
		ok, err := s.removeIfStale(name, id, cutoff)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			removed++
			s.log.Info("removed abandoned multipart upload staging", "entry", name)
		}
	}
	return removed, errors.Join(errs...)
}

// removeIfStale removes UploadsDir/name when nothing in it changed since
// cutoff, holding the lock of upload id so that a Complete or Abort of
// this process is not running on it.
func (s *Store) removeIfStale(name, id string, cutoff time.Time) (bool, error) {
	unlock := s.locks.lock(id)
	defer unlock()
	p := path.Join(UploadsDir, name)
	fi, err := s.root.Lstat(p)
	if errors.Is(err, iofs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	newest := fi.ModTime()
	if fi.IsDir() {
		entries, err := iofs.ReadDir(s.root.FS(), p)
		if err != nil && !errors.Is(err, iofs.ErrNotExist) {
			return false, err
		}
		for _, e := range entries {
			if info, err := e.Info(); err == nil && info.ModTime().After(newest) {
				newest = info.ModTime()
			}
		}
	}
	if !newest.Before(cutoff) {
		return false, nil
	}
	if validID(name) {
		err := s.discard(name)
		if errors.Is(err, s3err.ErrNoSuchUpload) {
			return false, nil // completed or aborted meanwhile
		}
		return err == nil, err
	}
	if err := s.root.RemoveAll(p); err != nil {
		return false, err
	}
	return true, nil
}
