// Package fs is the local-directory backend: objects are regular files at
// Root/<key>, written to a hidden temp file in the target directory,
// verified, fsynced and renamed into place, so a failed, cancelled or
// crashed upload never leaves a visible partial object.
//
// Every file operation goes through an os.Root opened on Root, so no key,
// symlink or upload id can reach outside it. Metadata and multipart
// staging live in the hidden Root/.mizuchi tree (see docs/FILESYSTEM.md
// for the on-disk layout and the guarantees).
//
// Wiring: app builds one *Store per filesystem bucket with New and hands
// it to the upload handlers as a backend.Backend; it also implements
// backend.Checker (for /readyz), backend.Closer and CleanupStale, which
// the application may call periodically.
package fs
