package fs

import (
	"context"
	"errors"
	iofs "io/fs"
	"os"
	"path"
	"strings"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

// Cleanup is backend.Cleaner: CleanupStale, counting the multipart
// uploads discarded apart from the other entries removed. Kept counts
// the multipart uploads seen that are still in use.
func (s *Store) Cleanup(ctx context.Context, olderThan time.Duration) (backend.CleanupResult, error) {
	return s.cleanup(ctx, olderThan)
}

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
	r, err := s.cleanup(ctx, olderThan)
	return r.Aborted + r.Removed, err
}

func (s *Store) cleanup(ctx context.Context, olderThan time.Duration) (backend.CleanupResult, error) {
	cutoff := time.Now().Add(-olderThan)
	var res backend.CleanupResult
	var errs []error

	n, err := s.removeStaleTemps(ctx, s.root, ".", cutoff, &errs)
	res.Removed += n
	if err != nil {
		return res, err
	}

	// Stale records moved aside by commits (their age counts from the
	// move).
	stale, err := iofs.ReadDir(s.root.FS(), StaleDir)
	if err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return res, err
	}
	for _, e := range stale {
		if info, err := e.Info(); err != nil || !info.ModTime().Before(cutoff) {
			continue
		}
		if err := s.root.RemoveAll(path.Join(StaleDir, e.Name())); err != nil {
			errs = append(errs, err)
			continue
		}
		res.Removed++
	}

	entries, err := iofs.ReadDir(s.root.FS(), UploadsDir)
	if err != nil {
		return res, err
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return res, err
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
		switch {
		case ok && validID(name):
			res.Aborted++
			s.log.Info("removed abandoned multipart upload staging", "entry", name)
		case ok:
			res.Removed++
			s.log.Info("removed abandoned multipart upload staging", "entry", name)
		case err == nil && validID(name):
			res.Kept++
		}
	}
	return res, errors.Join(errs...)
}

// removeStaleTemps removes the temp files older than cutoff in the
// directory r (at rel from the root) and below it. Every directory is
// opened relative to its parent's descriptor, so the walk costs O(1)
// system calls per entry whatever the depth (resolving each directory from
// the root again would be quadratic in the depth of deep keys); it holds
// one descriptor per level. Symbolic links are not followed.
func (s *Store) removeStaleTemps(ctx context.Context, r *os.Root, rel string, cutoff time.Time, errs *[]error) (int, error) {
	d, err := r.Open(".")
	if err != nil {
		return 0, err
	}
	entries, err := d.ReadDir(-1)
	_ = d.Close()
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		name := e.Name()
		p := path.Join(rel, name)
		switch {
		case e.IsDir():
			sub, _, err := s.step(r, name, p, false)
			if errors.Is(err, iofs.ErrNotExist) {
				continue // removed while walking
			}
			if err != nil {
				*errs = append(*errs, err)
				continue
			}
			n, err := s.removeStaleTemps(ctx, sub, p, cutoff, errs)
			_ = sub.Close()
			removed += n
			if err != nil && !errors.Is(err, iofs.ErrNotExist) {
				if ctx.Err() != nil {
					return removed, err
				}
				*errs = append(*errs, err)
			}
		case strings.HasPrefix(name, TempPrefix):
			info, err := r.Lstat(name)
			if err != nil || info.IsDir() || !info.ModTime().Before(cutoff) {
				continue
			}
			if err := r.Remove(name); err == nil {
				removed++
			} else if !errors.Is(err, iofs.ErrNotExist) {
				*errs = append(*errs, err)
			}
		}
	}
	return removed, nil
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
