// Package backendtest is the conformance suite every backend.Backend must
// pass. It states S3's upload semantics as tests: streamed puts of any
// size, ETags, Content-MD5 and additional checksums, failures that store
// nothing, and the multipart rules (part numbers, minimum part size,
// ordering, ETag matching, NoSuchUpload, ListParts paging, concurrency).
//
// A backend's own test calls Run with a constructor and an Inspector that
// reads the store directly (the filesystem, or the S3 server behind the
// backend), so the suite checks what was really stored rather than what
// the backend claims:
//
//	backendtest.Run(t, func(t *testing.T) backend.Backend { ... },
//		backendtest.Options{MinPartSize: 64 << 10, Inspect: inspector})
//
// Every subtest uses keys under its own prefix (Options.Prefix plus the
// subtest's name) and aborts every upload it opens, so the suite can run
// against a shared S3 server.
package backendtest
