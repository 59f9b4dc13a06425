package fs

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	iofs "io/fs"
	"log/slog"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

// On-disk layout, relative to Root. Every name starting with
// reservedPrefix belongs to the store; keys using it are refused.
const (
	reservedPrefix = ".mizuchi"
	// ReservedDir holds metadata and multipart staging.
	ReservedDir = ".mizuchi"
	// MetaDir mirrors the object tree: the metadata of key k is the JSON
	// file MetaDir/k.
	MetaDir = ".mizuchi/meta"
	// UploadsDir holds one directory per open multipart upload.
	UploadsDir = ".mizuchi/uploads"
	// StaleDir receives stale records that were in the way of a new
	// object's record: moved aside, never deleted by a request;
	// CleanupStale removes them.
	StaleDir = ".mizuchi/stale"
	// TempPrefix starts the name of every temp file, which always lives
	// in the directory of the file it will become.
	TempPrefix = ".mizuchi-tmp-"

	dirPerm  = 0o755
	filePerm = 0o644
	// maxSegment is NAME_MAX on common Linux filesystems.
	maxSegment = 255
	// MaxKeyDepth is the most segments a key may have: every segment but
	// the last is a directory in the object tree and another in the
	// metadata tree, each created and fsynced, so depth is what a
	// one-byte upload can make the disk do. Real keys stay far below.
	MaxKeyDepth = 128
)

// Errors for keys a directory tree cannot hold although S3 could (409
// Conflict, with the codes other S3 implementations on POSIX storage use).
var (
	ErrObjectParentIsFile        = s3err.ErrObjectParentIsFile
	ErrExistingObjectIsDirectory = s3err.ErrExistingObjectIsDirectory
)

// Options configures a Store.
type Options struct {
	// Root is the directory objects are stored in; created if missing.
	Root string
	// MinPartSize is the smallest size of every multipart part but the
	// last; 0 means S3's 5 MiB.
	MinPartSize int64
	// Logger receives warnings about cleanup failures; nil discards.
	Logger *slog.Logger
}

// Store is the filesystem backend.
type Store struct {
	root        *os.Root
	minPartSize int64
	log         *slog.Logger
	locks       lockMap
	// afterMeta, when set by tests, runs between the metadata rename and
	// the object rename; an error stands for a crash at that point.
	afterMeta func(key string) error
	// beforeCommit, when set by tests, runs when a complete temp object
	// is about to be committed.
	beforeCommit func(key string)
}

// New opens (and creates if missing) the storage root.
func New(opts Options) (*Store, error) {
	if opts.Root == "" {
		return nil, errors.New("fs: root directory is required")
	}
	if opts.MinPartSize < 0 {
		return nil, errors.New("fs: negative minimum part size")
	}
	if err := os.MkdirAll(opts.Root, dirPerm); err != nil {
		return nil, fmt.Errorf("fs: create root: %w", err)
	}
	r, err := os.OpenRoot(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("fs: open root: %w", err)
	}
	for _, d := range []string{MetaDir, UploadsDir, StaleDir} {
		if err := r.MkdirAll(d, dirPerm); err != nil {
			_ = r.Close()
			return nil, fmt.Errorf("fs: create %s: %w", d, err)
		}
	}
	s := &Store{root: r, minPartSize: opts.MinPartSize, log: opts.Logger}
	if s.minPartSize == 0 {
		s.minPartSize = backend.DefaultMinPartSize
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// Close releases the root directory handle.
func (s *Store) Close() error { return s.root.Close() }

// Check reports whether the root is writable by creating and removing a
// temp file in the reserved directory.
func (s *Store) Check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, name, err := s.createTemp(ReservedDir)
	if err != nil {
		return fmt.Errorf("fs: root not writable: %w", err)
	}
	_ = f.Close()
	if err := s.root.Remove(name); err != nil {
		return fmt.Errorf("fs: root not writable: %w", err)
	}
	return nil
}

// validateKey refuses keys that are not safe or not representable as a
// path of regular directories and one regular file.
func validateKey(key string) error {
	bad := func(why string) error {
		return s3err.ErrInvalidArgument.WithMessage("Invalid object key: %s.", why)
	}
	switch {
	case key == "":
		return bad("the key is empty")
	case len(key) > backend.MaxKeyLength:
		return s3err.ErrKeyTooLong
	case strings.IndexByte(key, 0) >= 0:
		return bad("the key contains NUL")
	case !utf8.ValidString(key):
		return bad("the key is not valid UTF-8")
	}
	if n := strings.Count(key, "/") + 1; n > MaxKeyDepth {
		return s3err.ErrInvalidArgument.WithMessage("Invalid object key: %d segments, the filesystem backend stores at most %d.", n, MaxKeyDepth)
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch {
		case seg == "..":
			return bad("'..' segments are not allowed")
		case seg == ".":
			return bad("'.' segments cannot be stored in a directory")
		case seg == "":
			return bad("empty segments (leading, trailing or double slashes) cannot be stored in a directory")
		case strings.HasPrefix(seg, reservedPrefix):
			return bad("names starting with " + reservedPrefix + " are reserved")
		case len(seg) > maxSegment:
			return s3err.ErrKeyTooLong.WithMessage("A segment of the key is longer than %d bytes.", maxSegment)
		}
	}
	return nil
}

var errSymlinkInKey = s3err.ErrAccessDenied.WithMessage("The object key traverses a symbolic link.")

// precheck reports, without changing anything, whether key could be
// stored: no parent is a file or symlink and key is not a directory. It
// walks the key's directories once (linear in depth).
func (s *Store) precheck(key string) error {
	d, _, err := s.openDir(path.Dir(key), false)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return unwrapConflict(err)
	}
	defer s.release(d)
	fi, err := d.Lstat(path.Base(key))
	switch {
	case errors.Is(err, iofs.ErrNotExist):
		return nil
	case err != nil:
		return classifyPathErr(err)
	case fi.IsDir():
		return ErrExistingObjectIsDirectory
	}
	return nil
}

// unwrapConflict returns the S3 error inside a *conflictError.
func unwrapConflict(err error) error {
	var ce *conflictError
	if errors.As(err, &ce) {
		return ce.err
	}
	return err
}

// classifyPathErr turns the errors of path resolution into S3 errors
// where the cause is the shape of the tree rather than the machine.
func classifyPathErr(err error) error {
	if errors.Is(err, syscall.ENOTDIR) {
		return ErrObjectParentIsFile.WithCause(err)
	}
	if errors.Is(err, syscall.EISDIR) {
		return ErrExistingObjectIsDirectory.WithCause(err)
	}
	if errors.Is(err, syscall.ENAMETOOLONG) {
		return s3err.ErrKeyTooLong.WithCause(err)
	}
	if errors.Is(err, syscall.ELOOP) || strings.Contains(err.Error(), "escapes from parent") {
		return errSymlinkInKey.WithCause(err)
	}
	return err
}

// ensureDir creates dir and its parents inside the root, refusing to go
// through files and symlinks. It returns the directories it created, in
// order, so that a failed upload can remove them again.
func (s *Store) ensureDir(dir string) ([]string, error) {
	d, created, err := s.openDir(dir, true)
	s.release(d)
	return created, err
}

// conflictError says which component of a path could not be a directory.
type conflictError struct {
	path string
	file bool // a regular file is in the way
	err  error
}

func (e *conflictError) Error() string { return e.err.Error() }
func (e *conflictError) Unwrap() error { return e.err }

func (s *Store) syncDir(dir string) error { return syncIn(s.root, dir) }

// randomName returns 26 characters of base32 from crypto/rand.
func randomName() string { return rand.Text() }

// createTemp creates a new hidden temp file in dir.
func (s *Store) createTemp(dir string) (*os.File, string, error) {
	for {
		name := path.Join(dir, TempPrefix+randomName())
		f, err := s.root.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, filePerm)
		if errors.Is(err, iofs.ErrExist) {
			continue
		}
		return f, name, err
	}
}

// objectRecord is the JSON sidecar of an object (MetaDir/<key>). Size
// and ETag say which upload it was written for: metadata is renamed into
// place just before its object, so after a crash between the two renames
// a record may describe an object that never became visible.
type objectRecord struct {
	Key          string            `json:"key"`
	Size         int64             `json:"size"`
	ETag         string            `json:"etag"`
	Checksum     *backend.Checksum `json:"checksum,omitempty"`
	LastModified time.Time         `json:"lastModified"`
	Metadata     backend.Metadata  `json:"metadata"`
}

// writeJSON writes v atomically to name (temp file in the same
// directory, fsync, rename, fsync directory).
func (s *Store) writeJSON(name string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	dir := path.Dir(name)
	f, tmp, err := s.createTemp(dir)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.root.Rename(tmp, name)
	}
	if err != nil {
		_ = s.root.Remove(tmp)
		return err
	}
	return s.syncDir(dir)
}

// stagedMeta is an object's record written to a temp file in its place
// in the metadata tree, not yet renamed into place.
type stagedMeta struct {
	s       *Store
	tmp     string // the temp file
	name    string // MetaDir/<key>
	fi      os.FileInfo
	created []string // metadata directories made for it
	placed  bool     // renamed to name
	keep    bool     // committed (or a simulated crash): nothing to undo
}

// stageMeta writes rec to a temp file beside its place in the metadata
// tree, creating the directories it needs. The metadata tree mirrors the
// object tree, and the caller's object sits in directories that exist in
// the object tree, so a record found where one of those directories is
// needed describes no object (left over from objects removed by hand, or
// from an upload that is failing): it is moved to StaleDir, not deleted.
func (s *Store) stageMeta(rec *objectRecord) (*stagedMeta, error) {
	m := &stagedMeta{s: s, name: path.Join(MetaDir, rec.Key)}
	dir := path.Dir(m.name)
	for attempt := 0; ; attempt++ {
		created, err := s.ensureDir(dir)
		m.created = append(m.created, created...)
		var ce *conflictError
		if err != nil && errors.As(err, &ce) && ce.file && attempt < 8 {
			if qerr := s.quarantine(ce.path); qerr != nil {
				m.discard()
				return nil, qerr
			}
			continue
		}
		if err != nil {
			m.discard()
			return nil, unwrapConflict(err)
		}
		break
	}
	data, err := json.Marshal(rec)
	if err != nil {
		m.discard()
		return nil, err
	}
	f, tmp, err := s.createTemp(dir)
	if err != nil {
		m.discard()
		return nil, err
	}
	m.tmp = tmp
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		m.fi, err = f.Stat()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		m.discard()
		return nil, err
	}
	return m, nil
}

// place renames the record into place. It reports false, changing
// nothing, when a directory of records is there (objects below the key).
func (m *stagedMeta) place() (bool, error) {
	err := m.s.root.Rename(m.tmp, m.name)
	if errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.ENOTEMPTY) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	m.placed = true
	return true, nil
}

// discard undoes what stageMeta and place did unless the record was
// kept: the temp file, the record if it is still this one, and the
// directories made for it.
func (m *stagedMeta) discard() {
	if m.keep {
		return
	}
	s := m.s
	if m.placed {
		if fi, err := s.root.Lstat(m.name); err == nil && os.SameFile(fi, m.fi) {
			_ = s.root.Remove(m.name)
		}
	} else if m.tmp != "" {
		_ = s.root.Remove(m.tmp)
	}
	s.removeDirs(m.created)
}

// quarantine moves a stale entry of the metadata tree to StaleDir.
func (s *Store) quarantine(p string) error {
	dst := path.Join(StaleDir, randomName())
	if err := s.root.Rename(p, dst); err != nil {
		if errors.Is(err, iofs.ErrNotExist) {
			return nil // moved or removed meanwhile
		}
		return err
	}
	now := time.Now()
	_ = s.root.Chtimes(dst, now, now) // CleanupStale counts its age from now
	s.log.Warn("moved stale metadata out of the way of a new object", "path", p, "to", dst)
	return nil
}

// tempObject is an object being written to a hidden temp file in its
// key's directory. Until commit succeeds, discard (deferred by every
// writer) removes the file and the directories created for it, so a failed
// or cancelled upload leaves nothing visible.
type tempObject struct {
	s       *Store
	key     string
	f       *os.File
	name    string
	created []string // directories made for the key, shallowest first
	done    bool
}

// openTemp creates key's directory and a temp file in it. A directory
// removed by a concurrently failing upload is created again.
func (s *Store) openTemp(key string) (*tempObject, error) {
	dir := path.Dir(key)
	var all []string
	for attempt := 0; ; attempt++ {
		created, err := s.ensureDir(dir)
		all = append(all, created...)
		if err != nil {
			s.removeDirs(all)
			return nil, err
		}
		f, tmp, err := s.createTemp(dir)
		if err == nil {
			return &tempObject{s: s, key: key, f: f, name: tmp, created: all}, nil
		}
		if !errors.Is(err, iofs.ErrNotExist) || attempt >= 3 {
			s.removeDirs(all)
			return nil, classifyPathErr(err)
		}
	}
}

// discard removes the temp file unless it was committed.
func (t *tempObject) discard() {
	if t.done {
		return
	}
	_ = t.f.Close()
	_ = t.s.root.Remove(t.name)
	t.s.removeDirs(t.created)
}

// commit fsyncs and closes the complete temp file and makes it visible as
// the key: metadata first, then the object, each by rename. A refused or
// failed commit changes nothing outside what this upload created: it is
// refused before any record is touched when the key has become a
// directory, and when the key becomes one between the two renames its
// record is taken back. The caller then fsyncs the object's directories
// (syncDirs).
func (t *tempObject) commit(rec *objectRecord) error {
	if err := t.f.Sync(); err != nil {
		return err
	}
	if err := t.f.Close(); err != nil {
		return err
	}
	s := t.s
	if s.beforeCommit != nil {
		s.beforeCommit(rec.Key)
	}
	if fi, err := s.root.Lstat(rec.Key); err == nil && fi.IsDir() {
		return ErrExistingObjectIsDirectory
	}
	m, err := s.stageMeta(rec)
	if err != nil {
		return fmt.Errorf("write metadata: %w", err)
	}
	defer m.discard()
	placed, err := m.place()
	if err != nil {
		return fmt.Errorf("write metadata: %w", err)
	}
	if s.afterMeta != nil {
		if err := s.afterMeta(rec.Key); err != nil {
			m.keep = true // a simulated crash undoes nothing
			return err
		}
	}
	if err := s.root.Rename(t.name, rec.Key); err != nil {
		if errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.ENOTEMPTY) {
			return ErrExistingObjectIsDirectory.WithCause(err)
		}
		return classifyPathErr(err)
	}
	t.done, m.keep = true, true
	if !placed {
		// The key is a file now, so no object can exist below it: the
		// records in the way are stale. They are moved aside, not deleted.
		if err := s.quarantine(m.name); err != nil {
			_ = s.root.Remove(m.tmp)
			return fmt.Errorf("write metadata: %w", err)
		}
		if err := s.root.Rename(m.tmp, m.name); err != nil {
			_ = s.root.Remove(m.tmp)
			return fmt.Errorf("write metadata: %w", err)
		}
	}
	if err := s.syncDirs(m.created, path.Dir(m.name)); err != nil {
		return fmt.Errorf("write metadata: %w", err)
	}
	return nil
}

// lockMap hands out one RWMutex per multipart upload id.
type lockMap struct {
	mu sync.Mutex
	m  map[string]*lockEntry
}

type lockEntry struct {
	sync.RWMutex
	refs int
}

func (l *lockMap) acquire(id string) *lockEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]*lockEntry{}
	}
	e := l.m[id]
	if e == nil {
		e = &lockEntry{}
		l.m[id] = e
	}
	e.refs++
	return e
}

func (l *lockMap) release(id string, e *lockEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.refs--
	if e.refs == 0 {
		delete(l.m, id)
	}
}

// lock takes the exclusive lock of an upload; the returned func unlocks.
func (l *lockMap) lock(id string) func() {
	e := l.acquire(id)
	e.Lock()
	return func() { e.Unlock(); l.release(id, e) }
}

// rlock takes the shared lock of an upload.
func (l *lockMap) rlock(id string) func() {
	e := l.acquire(id)
	e.RLock()
	return func() { e.RUnlock(); l.release(id, e) }
}

var _ backend.Backend = (*Store)(nil)
var _ backend.Checker = (*Store)(nil)
var _ backend.Closer = (*Store)(nil)
