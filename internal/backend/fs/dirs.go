package fs

import (
	"errors"
	iofs "io/fs"
	"os"
	"path"
	"slices"
	"strings"
)

// Directory chains are walked one segment at a time, each step relative
// to the directory opened before (openat on the parent's descriptor
// through os.Root), so checking or creating a directory of depth d costs
// O(d) system calls rather than the O(d²) of resolving every prefix from
// the root again. At most two descriptors are open at a time, except
// while removing the directories of a failed upload (one per level).

// openDir opens dir (slash-separated, relative to the root; "." is the
// root) segment by segment. It refuses symbolic links (errSymlinkInKey)
// and files (a *conflictError) on the way. With create, missing
// directories are made; created lists them, shallowest first, also when
// an error is returned. Without create, a missing directory is an error
// satisfying errors.Is(err, fs.ErrNotExist). Close the result with
// s.release.
func (s *Store) openDir(dir string, create bool) (*os.Root, []string, error) {
	cur := s.root
	if dir == "." || dir == "" {
		return cur, nil, nil
	}
	var created []string
	walked := ""
	for seg := range strings.SplitSeq(dir, "/") {
		walked = path.Join(walked, seg)
		next, made, err := s.step(cur, seg, walked, create)
		if made {
			created = append(created, walked)
		}
		s.release(cur)
		if err != nil {
			return nil, created, err
		}
		cur = next
	}
	return cur, created, nil
}

// step opens the directory seg inside cur (walked is its path from the
// root, for errors), creating it when missing and create is set.
func (s *Store) step(cur *os.Root, seg, walked string, create bool) (next *os.Root, made bool, err error) {
	for attempt := 0; ; attempt++ {
		fi, err := cur.Lstat(seg)
		if errors.Is(err, iofs.ErrNotExist) && create && attempt < 3 {
			err = cur.Mkdir(seg, dirPerm)
			if err == nil {
				made = true
				continue
			}
			if errors.Is(err, iofs.ErrExist) {
				continue // made by a concurrent upload: look again
			}
			return nil, made, &conflictError{path: walked, err: classifyPathErr(err)}
		}
		if err != nil {
			if errors.Is(err, iofs.ErrNotExist) {
				return nil, made, err
			}
			return nil, made, &conflictError{path: walked, err: classifyPathErr(err)}
		}
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			return nil, made, &conflictError{path: walked, err: errSymlinkInKey}
		case !fi.IsDir():
			return nil, made, &conflictError{path: walked, file: true, err: ErrObjectParentIsFile}
		}
		next, err := cur.OpenRoot(seg)
		if err != nil {
			return nil, made, &conflictError{path: walked, err: classifyPathErr(err)}
		}
		// OpenRoot follows a symlink swapped in since the Lstat (within
		// cur); the directory opened must be the one looked at.
		if nfi, err := next.Stat("."); err != nil || !os.SameFile(fi, nfi) {
			_ = next.Close()
			return nil, made, &conflictError{path: walked, err: errSymlinkInKey}
		}
		return next, made, nil
	}
}

// release closes a directory opened by openDir (never the store's root).
func (s *Store) release(r *os.Root) {
	if r != nil && r != s.root {
		_ = r.Close()
	}
}

// removeDirs removes directories created by openDir for one upload,
// deepest first, each through a descriptor of its parent; it stops at the
// first that is not empty (another upload put something into it, so its
// parents are in use as well). The created directories lie on one path,
// so sorting them by depth orders them along it.
func (s *Store) removeDirs(created []string) {
	if len(created) == 0 {
		return
	}
	// Shallowest first; a retry may have appended shallower ones later.
	created = slices.Clone(created)
	slices.SortStableFunc(created, func(a, b string) int { return strings.Count(a, "/") - strings.Count(b, "/") })
	base := path.Dir(created[0])
	top, _, err := s.openDir(base, false)
	if err != nil {
		return
	}
	roots := map[string]*os.Root{base: top}
	defer func() {
		for _, r := range roots {
			s.release(r)
		}
	}()
	cur, walked := top, base
	for seg := range strings.SplitSeq(relTo(base, path.Dir(created[len(created)-1])), "/") {
		if seg == "" {
			break // the created directories are all children of base
		}
		walked = path.Join(walked, seg)
		next, _, err := s.step(cur, seg, walked, false)
		if err != nil {
			break
		}
		roots[walked] = next
		cur = next
	}
	for i := len(created) - 1; i >= 0; i-- {
		parent := roots[path.Dir(created[i])]
		if parent == nil {
			return
		}
		// Gone already is fine: a retry may list a directory twice.
		if err := parent.Remove(path.Base(created[i])); err != nil && !errors.Is(err, iofs.ErrNotExist) {
			return
		}
	}
}

// syncDirs fsyncs every directory from the parent of the first created
// one down to dir, so that new directory entries survive a crash.
func (s *Store) syncDirs(created []string, dir string) error {
	base := dir
	if len(created) > 0 {
		base = path.Dir(created[0])
	}
	cur, _, err := s.openDir(base, false)
	if err != nil {
		return err
	}
	defer func() { s.release(cur) }()
	if err := syncRoot(cur); err != nil {
		return err
	}
	rel := relTo(base, dir)
	if rel == "" {
		return nil
	}
	walked := base
	for seg := range strings.SplitSeq(rel, "/") {
		walked = path.Join(walked, seg)
		next, _, err := s.step(cur, seg, walked, false)
		if err != nil {
			return err
		}
		s.release(cur)
		cur = next
		if err := syncRoot(cur); err != nil {
			return err
		}
	}
	return nil
}

// relTo returns p relative to base (both slash paths from the root, p
// inside base), "" when they are equal.
func relTo(base, p string) string {
	switch {
	case p == base:
		return ""
	case base == "." || base == "":
		return p
	}
	return strings.TrimPrefix(p, base+"/")
}

// syncRoot makes the entries of the directory r durable.
func syncRoot(r *os.Root) error { return syncIn(r, ".") }

// syncIn makes the entries of the directory name (in r) durable.
func syncIn(r *os.Root, name string) error {
	d, err := r.Open(name)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
