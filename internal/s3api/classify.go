package s3api

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

// Operation is an S3 operation Mizuchi serves.
type Operation string

// The operations. Everything else is refused by Classify.
const (
	OpPutObject               Operation = "PutObject"
	OpCreateMultipartUpload   Operation = "CreateMultipartUpload"
	OpUploadPart              Operation = "UploadPart"
	OpCompleteMultipartUpload Operation = "CompleteMultipartUpload"
	OpAbortMultipartUpload    Operation = "AbortMultipartUpload"
	OpListParts               Operation = "ListParts"
	OpHeadBucket              Operation = "HeadBucket"
	OpGetBucketLocation       Operation = "GetBucketLocation"
	// OpCreateBucket on a configured bucket is answered, as S3 answers
	// its owner, BucketAlreadyOwnedByYou: clients that create the bucket
	// before uploading (rclone, s3cmd mb) then go on.
	OpCreateBucket Operation = "CreateBucket"
)

// objectSubresources are query parameters that select an object
// sub-resource or another object operation S3 knows; requests carrying
// them are not plain uploads.
var objectSubresources = []string{
	"acl", "attributes", "legal-hold", "retention", "tagging", "torrent",
	"restore", "select", "select-type", "versionId", "uploads", "uploadId", "partNumber",
}

// bucketListParams are the query parameters of bucket listings.
var bucketListParams = map[string]bool{
	"list-type": true, "prefix": true, "delimiter": true, "marker": true, "max-keys": true,
	"continuation-token": true, "start-after": true, "fetch-owner": true, "encoding-type": true,
	"uploads": true, "versions": true, "key-marker": true, "upload-id-marker": true,
	"version-id-marker": true, "max-uploads": true, "expected-bucket-owner": true,
	"x-id": true,
}

// Request is a classified request.
type Request struct {
	Op         Operation
	UploadID   string
	PartNumber int32
}

// Classify maps a request on a bucket to an upload operation. hasKey says
// whether the path names an object. It never looks at the body. Every
// other S3 operation gets MethodNotAllowed (reads, lists and deletes) or
// NotImplemented (other sub-resources).
func Classify(method string, hasKey bool, q url.Values, h http.Header) (Request, error) {
	if !hasKey {
		return classifyBucket(method, q)
	}
	has := func(k string) bool { _, ok := q[k]; return ok }
	switch method {
	case http.MethodPut:
		if h.Get("X-Amz-Copy-Source") != "" {
			return Request{}, s3err.ErrNotImplemented.WithMessage("CopyObject and UploadPartCopy are not supported: Mizuchi only accepts uploaded bytes.")
		}
		if has("partNumber") || has("uploadId") {
			if other := otherSubresource(q, "partNumber", "uploadId"); other != "" {
				return Request{}, notImplemented(other)
			}
			id := q.Get("uploadId")
			if id == "" {
				return Request{}, s3err.ErrInvalidArgument.WithMessage("UploadPart needs both partNumber and uploadId.")
			}
			n, err := parsePartNumber(q.Get("partNumber"))
			if err != nil {
				return Request{}, err
			}
			return Request{Op: OpUploadPart, UploadID: id, PartNumber: n}, nil
		}
		if other := otherSubresource(q); other != "" {
			return Request{}, notImplemented(other)
		}
		return Request{Op: OpPutObject}, nil
	case http.MethodPost:
		if has("uploads") {
			if other := otherSubresource(q, "uploads"); other != "" {
				return Request{}, notImplemented(other)
			}
			return Request{Op: OpCreateMultipartUpload}, nil
		}
		if has("uploadId") {
			if other := otherSubresource(q, "uploadId"); other != "" {
				return Request{}, notImplemented(other)
			}
			if q.Get("uploadId") == "" {
				return Request{}, s3err.ErrNoSuchUpload
			}
			return Request{Op: OpCompleteMultipartUpload, UploadID: q.Get("uploadId")}, nil
		}
		return Request{}, notImplemented("POST on an object")
	case http.MethodDelete:
		if has("uploadId") && otherSubresource(q, "uploadId") == "" {
			if q.Get("uploadId") == "" {
				return Request{}, s3err.ErrNoSuchUpload
			}
			return Request{Op: OpAbortMultipartUpload, UploadID: q.Get("uploadId")}, nil
		}
		return Request{}, s3err.ErrMethodNotAllowed.WithMessage("Deleting objects is not allowed through this endpoint.")
	case http.MethodGet:
		if has("uploadId") && otherSubresource(q, "uploadId") == "" {
			if q.Get("uploadId") == "" {
				return Request{}, s3err.ErrNoSuchUpload
			}
			return Request{Op: OpListParts, UploadID: q.Get("uploadId")}, nil
		}
		return Request{}, s3err.ErrMethodNotAllowed.WithMessage("Reading objects is not allowed through this endpoint.")
	case http.MethodHead:
		return Request{}, s3err.ErrMethodNotAllowed.WithMessage("Reading objects is not allowed through this endpoint.")
	}
	return Request{}, s3err.ErrMethodNotAllowed
}

func classifyBucket(method string, q url.Values) (Request, error) {
	switch method {
	case http.MethodHead:
		return Request{Op: OpHeadBucket}, nil
	case http.MethodGet:
		if _, ok := q["location"]; ok {
			return Request{Op: OpGetBucketLocation}, nil
		}
		for k := range q {
			if !bucketListParams[k] {
				return Request{}, notImplemented(k)
			}
		}
		return Request{}, s3err.ErrMethodNotAllowed.WithMessage("Listing is not allowed through this endpoint.")
	case http.MethodDelete:
		return Request{}, s3err.ErrMethodNotAllowed.WithMessage("Deleting is not allowed through this endpoint.")
	case http.MethodPost:
		if _, ok := q["delete"]; ok {
			return Request{}, s3err.ErrMethodNotAllowed.WithMessage("Deleting objects is not allowed through this endpoint.")
		}
		return Request{}, notImplemented("POST on a bucket")
	case http.MethodPut:
		if len(q) == 0 {
			return Request{Op: OpCreateBucket}, nil
		}
		return Request{}, notImplemented("bucket configuration")
	}
	return Request{}, s3err.ErrMethodNotAllowed
}

// otherSubresource returns the first object sub-resource in q that is not
// among allowed, or "".
func otherSubresource(q url.Values, allowed ...string) string {
	for _, k := range objectSubresources {
		if _, ok := q[k]; !ok {
			continue
		}
		ok := false
		for _, a := range allowed {
			ok = ok || a == k
		}
		if !ok {
			return k
		}
	}
	return ""
}

func notImplemented(what string) *s3err.Error {
	return s3err.ErrNotImplemented.WithMessage("%s is not supported: Mizuchi only accepts uploads.", what)
}

func parsePartNumber(s string) (int32, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < backend.MinPartNumber || n > backend.MaxPartNumber {
		return 0, s3err.ErrInvalidArgument.WithMessage("Part number must be an integer between 1 and 10000, inclusive.")
	}
	return int32(n), nil
}
