package s3

import (
	"context"
	"fmt"
	"strings"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

// maxListPages bounds the ListParts pages read for one Complete: S3 has
// at most 10000 parts, and a store answering fewer than one part per page
// is broken.
const maxListPages = backend.MaxPartNumber + 1

// checkMaxSize adds up, from the store's own listing of the upload, the
// sizes of the parts a Complete names, and refuses with EntityTooLarge a
// total above max. Every named part must be listed with the ETag the
// document gives, else the Complete is InvalidPart: the store then
// assembles exactly the parts that were counted (a part replaced after
// the listing has another ETag, and the store refuses the Complete).
// Nothing is assembled and the upload stays open.
func (s *Store) checkMaxSize(ctx context.Context, in *backend.CompleteMultipartUploadInput) error {
	if in.MaxSize <= 0 || len(in.Parts) == 0 {
		return nil
	}
	// The document is sorted (checked by the caller): walk it alongside
	// the listing, which the store returns in part-number order.
	next := 0
	var total int64
	var marker int32
	size := s.listPageSize
	if size <= 0 {
		size = 1000
	}
	for range maxListPages {
		page, err := s.ListParts(ctx, &backend.ListPartsInput{
			Key: in.Key, UploadID: in.UploadID, PartNumberMarker: marker, MaxParts: size,
		})
		if err != nil {
			return err
		}
		for _, p := range page.Parts {
			if next == len(in.Parts) {
				break
			}
			want := in.Parts[next]
			if want.PartNumber < p.PartNumber {
				return s3err.ErrInvalidPart // named, but not on the store
			}
			if want.PartNumber > p.PartNumber {
				continue // on the store, but not named
			}
			if normalETag(want.ETag) != normalETag(p.ETag) {
				return s3err.ErrInvalidPart
			}
			total += p.Size
			if p.Size < 0 || total > in.MaxSize {
				return s3err.ErrEntityTooLarge.WithMessage("The listed parts add up to more than the largest object allowed (%d bytes).", in.MaxSize)
			}
			next++
		}
		if next == len(in.Parts) {
			return nil
		}
		if !page.IsTruncated {
			return s3err.ErrInvalidPart
		}
		if page.NextPartNumberMarker <= marker {
			return fmt.Errorf("list parts: the store's next part-number marker %d does not advance past %d", page.NextPartNumberMarker, marker)
		}
		marker = page.NextPartNumberMarker
	}
	return fmt.Errorf("list parts: more than %d pages", maxListPages)
}

// normalETag compares ETags with or without quotes, in any case.
func normalETag(e string) string { return strings.ToLower(strings.Trim(strings.TrimSpace(e), `"`)) }
