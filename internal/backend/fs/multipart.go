package fs

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
	"github.com/mizuchi-uploadr/mizuchi/internal/checksum"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

// Staging layout of one upload, inside UploadsDir/<id>/:
//
//	upload.json         uploadRecord, written at Create
//	part-00001.json     partRecord of the current part 1
//	data-00001-<rand>   the bytes that record points to
//	.mizuchi-tmp-<rand> a part or record being written
//
// Complete and Abort first rename the whole directory to a name that is
// not an upload id (claimedPrefix / trashPrefix): that rename is the one
// atomic step deciding which of two racing calls wins, also across
// processes sharing the root.
const (
	uploadFile    = "upload.json"
	claimedPrefix = ".completing-"
	trashPrefix   = ".trash-"
	idLength      = 26
)

type uploadRecord struct {
	Key               string           `json:"key"`
	Metadata          backend.Metadata `json:"metadata"`
	ChecksumAlgorithm string           `json:"checksumAlgorithm,omitempty"`
	ChecksumType      string           `json:"checksumType,omitempty"`
	Created           time.Time        `json:"created"`
}

type partRecord struct {
	Number   int32     `json:"number"`
	File     string    `json:"file"`
	Size     int64     `json:"size"`
	MD5      string    `json:"md5"`
	Checksum string    `json:"checksum,omitempty"`
	Modified time.Time `json:"modified"`
}

// validID reports whether id could have been issued by this store
// (base32 from crypto/rand), which also keeps it a single safe name.
func validID(id string) bool {
	if len(id) != idLength {
		return false
	}
	for _, c := range id {
		if (c < 'A' || c > 'Z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

func uploadDir(id string) string { return path.Join(UploadsDir, id) }

func partRecordName(n int32) string { return fmt.Sprintf("part-%05d.json", n) }

// fullObject reports whether the upload's checksum covers the whole
// object rather than being a checksum of part checksums.
func (u *uploadRecord) fullObject() bool {
	return u.ChecksumAlgorithm != "" &&
		(strings.EqualFold(u.ChecksumType, "FULL_OBJECT") || u.ChecksumAlgorithm == checksum.CRC64NVME)
}

// CreateMultipartUpload records the key and metadata under a new id.
func (s *Store) CreateMultipartUpload(ctx context.Context, in *backend.CreateMultipartUploadInput) (*backend.CreateMultipartUploadOutput, error) {
	if err := validateKey(in.Key); err != nil {
		return nil, err
	}
	alg := strings.ToUpper(in.ChecksumAlgorithm)
	if alg != "" && checksum.New(alg) == nil {
		return nil, s3err.ErrInvalidRequest.WithMessage("Checksum algorithm %q is not supported.", in.ChecksumAlgorithm)
	}
	switch strings.ToUpper(in.ChecksumType) {
	case "", "COMPOSITE", "FULL_OBJECT":
	default:
		return nil, s3err.ErrInvalidRequest.WithMessage("Checksum type %q is not supported.", in.ChecksumType)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.precheck(in.Key); err != nil {
		return nil, err
	}
	var id string
	for {
		id = randomName()
		err := s.root.Mkdir(uploadDir(id), dirPerm)
		if err == nil {
			break
		}
		if !errors.Is(err, iofs.ErrExist) {
			return nil, err
		}
	}
	rec := &uploadRecord{
		Key: in.Key, Metadata: in.Metadata, ChecksumAlgorithm: alg,
		ChecksumType: strings.ToUpper(in.ChecksumType), Created: time.Now().UTC(),
	}
	if err := s.writeJSON(path.Join(uploadDir(id), uploadFile), rec); err != nil {
		_ = s.root.RemoveAll(uploadDir(id))
		return nil, err
	}
	if err := s.syncDir(UploadsDir); err != nil {
		return nil, err
	}
	return &backend.CreateMultipartUploadOutput{UploadID: id}, nil
}

// loadUpload reads the record of an open upload in dir and checks that
// it belongs to key.
func (s *Store) loadUpload(dir, key string) (*uploadRecord, error) {
	data, err := s.root.ReadFile(path.Join(dir, uploadFile))
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, s3err.ErrNoSuchUpload
	}
	if err != nil {
		return nil, err
	}
	var rec uploadRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("upload record: %w", err)
	}
	if rec.Key != key {
		return nil, s3err.ErrNoSuchUpload
	}
	return &rec, nil
}

func (s *Store) openUpload(id, key string) (*uploadRecord, error) {
	if !validID(id) {
		return nil, s3err.ErrNoSuchUpload
	}
	return s.loadUpload(uploadDir(id), key)
}

func validPartNumber(n int32) error {
	if n < backend.MinPartNumber || n > backend.MaxPartNumber {
		return s3err.ErrInvalidArgument.WithMessage("Part number must be an integer between %d and %d, inclusive", backend.MinPartNumber, backend.MaxPartNumber)
	}
	return nil
}

// UploadPart stages one part; uploading a part number again replaces it.
func (s *Store) UploadPart(ctx context.Context, in *backend.UploadPartInput) (*backend.UploadPartOutput, error) {
	if err := validPartNumber(in.PartNumber); err != nil {
		return nil, err
	}
	if in.Size < 0 {
		return nil, s3err.ErrMissingContentLength
	}
	up, err := s.openUpload(in.UploadID, in.Key)
	if err != nil {
		return nil, err
	}
	v, err := newVerifier(in.Integrity, up.ChecksumAlgorithm)
	if err != nil {
		return nil, err
	}
	dir := uploadDir(in.UploadID)
	f, tmp, err := s.createTemp(dir)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, s3err.ErrNoSuchUpload
	}
	if err != nil {
		return nil, err
	}
	dataName := path.Join(dir, fmt.Sprintf("data-%05d-%s", in.PartNumber, randomName()))
	done := false
	defer func() {
		if !done {
			_ = f.Close()
			_ = s.root.Remove(tmp)
			_ = s.root.Remove(dataName)
		}
	}()
	if err := copyBody(ctx, f, in.Body, in.Size, v); err != nil {
		return nil, err
	}
	if err := v.verify(); err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if err := s.root.Rename(tmp, dataName); err != nil {
		if errors.Is(err, iofs.ErrNotExist) {
			return nil, s3err.ErrNoSuchUpload
		}
		return nil, err
	}
	rec := &partRecord{
		Number: in.PartNumber, File: path.Base(dataName), Size: in.Size,
		MD5: v.md5Hex(), Checksum: v.checksum(), Modified: time.Now().UTC(),
	}
	if err := s.commitPart(in.UploadID, rec); err != nil {
		return nil, err
	}
	done = true
	out := &backend.UploadPartOutput{ETag: v.etag()}
	if v.alg != "" {
		out.Checksum = backend.Checksum{Algorithm: v.alg, Value: rec.Checksum}
	}
	return out, nil
}

// commitPart points the part's record at its new data file and removes
// the data it replaces. It holds the upload's shared lock so that a
// Complete or Abort in this process sees either the old or the new part.
func (s *Store) commitPart(id string, rec *partRecord) error {
	unlock := s.locks.rlock(id)
	defer unlock()
	dir := uploadDir(id)
	name := path.Join(dir, partRecordName(rec.Number))
	prev, _ := s.readPart(dir, rec.Number)
	if err := s.writeJSON(name, rec); err != nil {
		if errors.Is(err, iofs.ErrNotExist) {
			return s3err.ErrNoSuchUpload
		}
		return err
	}
	if prev != nil && prev.File != rec.File {
		_ = s.root.Remove(path.Join(dir, prev.File))
	}
	return nil
}

func (s *Store) readPart(dir string, n int32) (*partRecord, error) {
	data, err := s.root.ReadFile(path.Join(dir, partRecordName(n)))
	if err != nil {
		return nil, err
	}
	var rec partRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("part record: %w", err)
	}
	if rec.File == "" || strings.Contains(rec.File, "/") {
		return nil, fmt.Errorf("part record %d: bad data file name", n)
	}
	return &rec, nil
}

func trimETag(e string) string { return strings.ToLower(strings.Trim(strings.TrimSpace(e), `"`)) }

// CompleteMultipartUpload checks the listed parts against the staged
// ones, assembles them into a temp file beside the target and renames it
// into place.
func (s *Store) CompleteMultipartUpload(ctx context.Context, in *backend.CompleteMultipartUploadInput) (*backend.CompleteMultipartUploadOutput, error) {
	if !validID(in.UploadID) {
		return nil, s3err.ErrNoSuchUpload
	}
	unlock := s.locks.lock(in.UploadID)
	defer unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Claim the staging directory first: from here on no other Complete
	// or Abort, in this process or another, can see the upload, and the
	// checks below read parts nobody can replace.
	dir := uploadDir(in.UploadID)
	claimed := path.Join(UploadsDir, claimedPrefix+in.UploadID+"-"+randomName())
	if err := s.root.Rename(dir, claimed); err != nil {
		if errors.Is(err, iofs.ErrNotExist) {
			return nil, s3err.ErrNoSuchUpload
		}
		return nil, err
	}
	// A claimed directory is fresh whatever the age of its parts, so that
	// the stale cleanup of another process sharing the root does not
	// remove it while this Complete assembles.
	now := time.Now()
	_ = s.root.Chtimes(claimed, now, now)
	out, err := s.completeClaimed(ctx, claimed, in)
	if err != nil {
		// The upload stays open, as in S3, so that the client can retry.
		if rerr := s.root.Rename(claimed, dir); rerr != nil {
			s.log.Error("cannot reopen multipart upload after a failed complete", "error", rerr)
		}
		return nil, err
	}
	if err := s.root.RemoveAll(claimed); err != nil {
		s.log.Warn("cannot remove staging of a completed upload", "error", err)
	}
	_ = s.syncDir(UploadsDir)
	return out, nil
}

func (s *Store) completeClaimed(ctx context.Context, dir string, in *backend.CompleteMultipartUploadInput) (*backend.CompleteMultipartUploadOutput, error) {
	up, err := s.loadUpload(dir, in.Key)
	if err != nil {
		return nil, err
	}
	if len(in.Parts) == 0 {
		return nil, s3err.ErrMalformedXML.WithMessage("You must specify at least one part.")
	}
	for i := 1; i < len(in.Parts); i++ {
		if in.Parts[i].PartNumber <= in.Parts[i-1].PartNumber {
			return nil, s3err.ErrInvalidPartOrder
		}
	}
	parts := make([]*partRecord, len(in.Parts))
	for i, p := range in.Parts {
		if validPartNumber(p.PartNumber) != nil {
			return nil, s3err.ErrInvalidPart
		}
		rec, err := s.readPart(dir, p.PartNumber)
		if errors.Is(err, iofs.ErrNotExist) || (err == nil && rec.MD5 != trimETag(p.ETag)) {
			return nil, s3err.ErrInvalidPart
		}
		if err != nil {
			return nil, err
		}
		if p.Checksum.Value != "" && p.Checksum.Value != rec.Checksum {
			return nil, s3err.ErrInvalidPart
		}
		if i < len(in.Parts)-1 && rec.Size < s.minPartSize {
			return nil, s3err.ErrEntityTooSmall
		}
		parts[i] = rec
	}
	if err := checkMaxSize(parts, in.MaxSize); err != nil {
		return nil, err
	}
	if err := s.precheck(in.Key); err != nil {
		return nil, err
	}
	return s.assemble(ctx, dir, up, parts)
}

// checkMaxSize refuses parts that add up to more than max (when
// positive). The sizes are those of the part records in the claimed
// staging directory: what will be assembled, whoever uploaded it.
func checkMaxSize(parts []*partRecord, max int64) error {
	if max <= 0 {
		return nil
	}
	var total int64
	for _, p := range parts {
		total += p.Size
		if p.Size < 0 || total > max {
			return s3err.ErrEntityTooLarge.WithMessage("The listed parts add up to more than the largest object allowed (%d bytes).", max)
		}
	}
	return nil
}

func (s *Store) assemble(ctx context.Context, staging string, up *uploadRecord, parts []*partRecord) (*backend.CompleteMultipartUploadOutput, error) {
	t, err := s.openTemp(up.Key)
	if err != nil {
		return nil, err
	}
	defer t.discard()
	var full *verifier
	if up.fullObject() {
		full = &verifier{md5: md5.New(), sum: checksum.New(up.ChecksumAlgorithm), alg: up.ChecksumAlgorithm}
	}
	etags := md5.New()
	sums := checksum.New(up.ChecksumAlgorithm)
	var size int64
	for _, p := range parts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		raw, err := hex.DecodeString(p.MD5)
		if err != nil {
			return nil, fmt.Errorf("part %d md5: %w", p.Number, err)
		}
		etags.Write(raw)
		if sums != nil {
			b, err := base64.StdEncoding.DecodeString(p.Checksum)
			if err != nil || p.Checksum == "" {
				return nil, s3err.ErrInvalidPart.WithMessage("Part %d has no %s checksum.", p.Number, up.ChecksumAlgorithm)
			}
			sums.Write(b)
		}
		src, err := s.root.Open(path.Join(staging, p.File))
		if err != nil {
			return nil, fmt.Errorf("open part %d: %w", p.Number, err)
		}
		var n int64
		if full != nil {
			n, err = io.Copy(io.MultiWriter(t.f, full), src)
		} else {
			// File to file: Linux moves the bytes with copy_file_range.
			n, err = io.Copy(t.f, src)
		}
		_ = src.Close()
		if err != nil {
			return nil, fmt.Errorf("copy part %d: %w", p.Number, err)
		}
		if n != p.Size {
			return nil, fmt.Errorf("part %d: staged %d bytes, recorded %d", p.Number, n, p.Size)
		}
		size += n
	}
	out := &backend.CompleteMultipartUploadOutput{
		ETag: `"` + hex.EncodeToString(etags.Sum(nil)) + "-" + strconv.Itoa(len(parts)) + `"`,
		Size: size,
	}
	switch {
	case full != nil:
		out.Checksum = backend.Checksum{Algorithm: up.ChecksumAlgorithm, Value: full.checksum()}
	case sums != nil:
		out.Checksum = backend.Checksum{
			Algorithm: up.ChecksumAlgorithm,
			Value:     base64.StdEncoding.EncodeToString(sums.Sum(nil)) + "-" + strconv.Itoa(len(parts)),
		}
	}
	rec := &objectRecord{
		Key: up.Key, Size: size, ETag: out.ETag,
		LastModified: time.Now().UTC(), Metadata: up.Metadata,
	}
	if out.Checksum.Algorithm != "" {
		rec.Checksum = &out.Checksum
	}
	if err := t.commit(rec); err != nil {
		return nil, err
	}
	if err := s.syncDirs(t.created, path.Dir(up.Key)); err != nil {
		s.log.Warn("fsync of object directory failed", "error", err)
	}
	return out, nil
}

// AbortMultipartUpload discards an upload and its parts.
func (s *Store) AbortMultipartUpload(ctx context.Context, in *backend.AbortMultipartUploadInput) error {
	if !validID(in.UploadID) {
		return s3err.ErrNoSuchUpload
	}
	unlock := s.locks.lock(in.UploadID)
	defer unlock()
	dir := uploadDir(in.UploadID)
	if _, err := s.loadUpload(dir, in.Key); err != nil {
		return err
	}
	return s.discard(in.UploadID)
}

// discard removes an upload's staging; the rename first makes it
// disappear atomically. The caller holds the upload's lock.
func (s *Store) discard(id string) error {
	trash := path.Join(UploadsDir, trashPrefix+id+"-"+randomName())
	if err := s.root.Rename(uploadDir(id), trash); err != nil {
		if errors.Is(err, iofs.ErrNotExist) {
			return s3err.ErrNoSuchUpload
		}
		return err
	}
	if err := s.root.RemoveAll(trash); err != nil {
		s.log.Warn("cannot remove staging of an aborted upload", "error", err)
	}
	_ = s.syncDir(UploadsDir)
	return nil
}

// ListParts lists staged parts in part-number order, one page at a time.
func (s *Store) ListParts(ctx context.Context, in *backend.ListPartsInput) (*backend.ListPartsOutput, error) {
	if in.PartNumberMarker < 0 {
		return nil, s3err.ErrInvalidArgument.WithMessage("Argument part-number-marker must be an integer between 0 and 2147483647")
	}
	if in.MaxParts < 0 {
		return nil, s3err.ErrInvalidArgument.WithMessage("Argument max-parts must be an integer between 0 and 2147483647")
	}
	maxParts := in.MaxParts
	if maxParts == 0 || maxParts > 1000 {
		maxParts = 1000
	}
	up, err := s.openUpload(in.UploadID, in.Key)
	if err != nil {
		return nil, err
	}
	dir := uploadDir(in.UploadID)
	entries, err := iofs.ReadDir(s.root.FS(), dir)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, s3err.ErrNoSuchUpload
	}
	if err != nil {
		return nil, err
	}
	var numbers []int32
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "part-") || !strings.HasSuffix(name, ".json") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(name, "part-"), ".json"), 10, 32)
		if err != nil || int32(n) <= in.PartNumberMarker {
			continue
		}
		numbers = append(numbers, int32(n))
	}
	slices.Sort(numbers)
	out := &backend.ListPartsOutput{
		PartNumberMarker: in.PartNumberMarker, MaxParts: maxParts,
		StorageClass: up.Metadata.StorageClass, ChecksumAlgorithm: up.ChecksumAlgorithm,
	}
	if out.StorageClass == "" {
		out.StorageClass = "STANDARD"
	}
	for _, n := range numbers {
		if int32(len(out.Parts)) == maxParts {
			out.IsTruncated = true
			break
		}
		rec, err := s.readPart(dir, n)
		if errors.Is(err, iofs.ErrNotExist) {
			continue // replaced or discarded meanwhile
		}
		if err != nil {
			return nil, err
		}
		p := backend.Part{PartNumber: n, ETag: `"` + rec.MD5 + `"`, Size: rec.Size, LastModified: rec.Modified}
		if rec.Checksum != "" && up.ChecksumAlgorithm != "" {
			p.Checksum = backend.Checksum{Algorithm: up.ChecksumAlgorithm, Value: rec.Checksum}
		}
		out.Parts = append(out.Parts, p)
	}
	if len(out.Parts) > 0 {
		out.NextPartNumberMarker = out.Parts[len(out.Parts)-1].PartNumber
	}
	return out, nil
}
