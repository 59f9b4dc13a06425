package s3api

import (
	"context"

	"github.com/mizuchi-uploadr/mizuchi/internal/auth"
)

// writes are the operations that change what the backend holds. Only
// they make the principal's Claim (SigV4 replay protection): a replayed
// write is what the protection is for, and a probe (HeadBucket,
// GetBucketLocation), a ListParts or a request refused before this point
// must not spend the sender's entries, let alone the bucket's.
var writes = map[Operation]bool{
	OpPutObject:               true,
	OpUploadPart:              true,
	OpCreateMultipartUpload:   true,
	OpCompleteMultipartUpload: true,
	OpAbortMultipartUpload:    true,
}

// claimWrite makes p's Claim for a request that writes. The handler calls
// it once, after authorization and the size and type checks, before the
// body is read.
func claimWrite(ctx context.Context, p *auth.Principal, op Operation) error {
	if !writes[op] || p == nil || p.Claim == nil {
		return nil
	}
	return p.Claim(ctx)
}
