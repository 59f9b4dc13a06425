package config

import (
	"path/filepath"
	"strconv"
	"strings"
)

// storageOverlaps refuses filesystem buckets whose roots are the same
// directory or nested in one another, and warns about S3 buckets writing
// to overlapping key prefixes of one store bucket. Either lets one bucket
// (perhaps anonymous) overwrite the objects of another (perhaps
// authenticated), whatever the second one's authentication says.
func (k *checker) storageOverlaps() {
	type fsRoot struct {
		bucket, path, dir string
	}
	var roots []fsRoot
	type s3Root struct {
		bucket, path, store, prefix string
	}
	var prefixes []s3Root
	for i := range k.c.Buckets {
		b := &k.c.Buckets[i]
		p := "buckets[" + strconv.Itoa(i) + "]"
		if f := b.Filesystem; f != nil && f.Root != "" {
			dir := canonicalDir(f.Root)
			for _, o := range roots {
				switch {
				case dir == o.dir:
					k.errf(p+".filesystem.root", "%q is the same directory as the root of bucket %q (%s): bucket %q could overwrite the objects of bucket %q; give each bucket its own directory",
						f.Root, o.bucket, o.path, b.Name, o.bucket)
				case within(dir, o.dir):
					k.errf(p+".filesystem.root", "%q is inside the root of bucket %q (%s): bucket %q could overwrite objects of bucket %q and the other way round; give each bucket its own directory",
						f.Root, o.bucket, o.path, o.bucket, b.Name)
				case within(o.dir, dir):
					k.errf(p+".filesystem.root", "%q contains the root of bucket %q (%s): bucket %q could overwrite objects of bucket %q and the other way round; give each bucket its own directory",
						f.Root, o.bucket, o.path, b.Name, o.bucket)
				}
			}
			roots = append(roots, fsRoot{bucket: b.Name, path: p + ".filesystem.root", dir: dir})
		}
		if s := b.S3; s != nil && s.Bucket != "" {
			store := strings.ToLower(strings.TrimRight(s.Endpoint, "/")) + "|" + s.Region + "|" + s.Bucket
			for _, o := range prefixes {
				if o.store != store || !(strings.HasPrefix(s.KeyPrefix, o.prefix) || strings.HasPrefix(o.prefix, s.KeyPrefix)) {
					continue
				}
				k.warnf(p+".s3.key_prefix", "bucket %q and bucket %q (%s) write to the same store bucket %q with overlapping key prefixes %q and %q: each can overwrite the other's objects; use disjoint key_prefix values unless that is intended",
					b.Name, o.bucket, o.path, s.Bucket, s.KeyPrefix, o.prefix)
			}
			prefixes = append(prefixes, s3Root{bucket: b.Name, path: p + ".s3", store: store, prefix: s.KeyPrefix})
		}
	}
}

// canonicalDir makes root absolute (relative to the working directory, as
// the server resolves it), cleans it and resolves symbolic links in the
// longest part of it that exists, so that two spellings of one directory
// compare equal. (A directory it cannot read is compared as written.)
func canonicalDir(root string) string {
	abs, err := filepath.Abs(root)
	if err != nil {
		abs = filepath.Clean(root)
	}
	existing, rest := abs, ""
	for {
		if resolved, err := filepath.EvalSymlinks(existing); err == nil {
			return filepath.Join(resolved, rest)
		}
		parent := filepath.Dir(existing)
		if parent == existing {
			return abs
		}
		rest = filepath.Join(filepath.Base(existing), rest)
		existing = parent
	}
}

// within reports whether dir is strictly inside parent.
func within(dir, parent string) bool {
	rel, err := filepath.Rel(parent, dir)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}
