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
	// TempPrefix starts the name of every temp file, which always lives
	// in the directory of the file it will become.
	TempPrefix = ".mizuchi-tmp-"

	dirPerm  = 0o755
	filePerm = 0o644
	// maxSegment is NAME_MAX on common Linux filesystems.
	maxSegment = 255
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
	for _, d := range []string{MetaDir, UploadsDir} {
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
// stored: no parent is a file or symlink and key is not a directory.
func (s *Store) precheck(key string) error {
	cur := ""
	for seg := range strings.SplitSeq(key, "/") {
		cur = path.Join(cur, seg)
		fi, err := s.root.Lstat(cur)
		if errors.Is(err, iofs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return classifyPathErr(err)
		}
		last := cur == key
		switch {
		case fi.Mode()&os.ModeSymlink != 0 && !last:
			return errSymlinkInKey
		case last && fi.IsDir():
			return ErrExistingObjectIsDirectory
		case !last && !fi.IsDir():
			return ErrObjectParentIsFile
		}
	}
	return nil
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
	if dir == "." || dir == "" {
		return nil, nil
	}
	var created []string
	cur := ""
	for seg := range strings.SplitSeq(dir, "/") {
		cur = path.Join(cur, seg)
		err := s.root.Mkdir(cur, dirPerm)
		if err == nil {
			created = append(created, cur)
			continue
		}
		if !errors.Is(err, iofs.ErrExist) {
			return created, &conflictError{path: cur, err: classifyPathErr(err)}
		}
		fi, lerr := s.root.Lstat(cur)
		if lerr != nil {
			return created, &conflictError{path: cur, err: classifyPathErr(lerr)}
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return created, &conflictError{path: cur, err: errSymlinkInKey}
		}
		if !fi.IsDir() {
			return created, &conflictError{path: cur, file: true, err: ErrObjectParentIsFile}
		}
	}
	return created, nil
}

// conflictError says which component of a path could not be a directory.
type conflictError struct {
	path string
	file bool // a regular file is in the way
	err  error
}

func (e *conflictError) Error() string { return e.err.Error() }
func (e *conflictError) Unwrap() error { return e.err }

// removeDirs removes directories created by ensureDir, deepest first; a
// directory another upload has meanwhile put something into stays.
func (s *Store) removeDirs(created []string) {
	for i := len(created) - 1; i >= 0; i-- {
		if err := s.root.Remove(created[i]); err != nil {
			return
		}
	}
}

// syncDirs fsyncs the parents of created directories and then dir, so
// that the new directory entries survive a crash.
func (s *Store) syncDirs(created []string, dir string) error {
	for _, c := range created {
		if err := s.syncDir(path.Dir(c)); err != nil {
			return err
		}
	}
	return s.syncDir(dir)
}

func (s *Store) syncDir(dir string) error {
	d, err := s.root.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

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

// writeMeta stores rec as the metadata of rec.Key. The metadata tree
// mirrors the object tree, so a conflict in it can only be left over from
// objects removed from the object tree by hand: such stale entries are
// removed.
func (s *Store) writeMeta(rec *objectRecord) error {
	name := path.Join(MetaDir, rec.Key)
	dir := path.Dir(name)
	for attempt := 0; ; attempt++ {
		created, err := s.ensureDir(dir)
		var ce *conflictError
		if err != nil && errors.As(err, &ce) && ce.file && attempt < 8 {
			s.log.Warn("removing stale metadata in the way of a new object", "path", ce.path)
			if rerr := s.root.Remove(ce.path); rerr != nil && !errors.Is(rerr, iofs.ErrNotExist) {
				return rerr
			}
			continue
		}
		if err != nil {
			return err
		}
		if fi, err := s.root.Lstat(name); err == nil && fi.IsDir() {
			s.log.Warn("removing stale metadata directory in the way of a new object", "path", name)
			if err := s.root.RemoveAll(name); err != nil {
				return err
			}
		}
		if err := s.writeJSON(name, rec); err != nil {
			return err
		}
		return s.syncDirs(created, dir)
	}
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
// the key: metadata first, then the object, each by rename. The caller
// then fsyncs the directories (syncDirs).
func (t *tempObject) commit(rec *objectRecord) error {
	if err := t.f.Sync(); err != nil {
		return err
	}
	if err := t.f.Close(); err != nil {
		return err
	}
	s := t.s
	if err := s.writeMeta(rec); err != nil {
		return fmt.Errorf("write metadata: %w", err)
	}
	if s.afterMeta != nil {
		if err := s.afterMeta(rec.Key); err != nil {
			return err
		}
	}
	if err := s.root.Rename(t.name, rec.Key); err != nil {
		if errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.ENOTEMPTY) {
			return ErrExistingObjectIsDirectory.WithCause(err)
		}
		return classifyPathErr(err)
	}
	t.done = true
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
