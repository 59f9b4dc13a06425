package s3api

import (
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		hasKey  bool
		query   string
		header  http.Header
		want    Request
		wantErr *s3err.Error
	}{
		{name: "PutObject", method: "PUT", hasKey: true, want: Request{Op: OpPutObject}},
		{name: "PutObject with x-id", method: "PUT", hasKey: true, query: "x-id=PutObject", want: Request{Op: OpPutObject}},
		{name: "CreateMultipartUpload", method: "POST", hasKey: true, query: "uploads", want: Request{Op: OpCreateMultipartUpload}},
		{name: "CreateMultipartUpload empty value", method: "POST", hasKey: true, query: "uploads=", want: Request{Op: OpCreateMultipartUpload}},
		{name: "UploadPart", method: "PUT", hasKey: true, query: "partNumber=3&uploadId=abc", want: Request{Op: OpUploadPart, UploadID: "abc", PartNumber: 3}},
		{name: "UploadPart max", method: "PUT", hasKey: true, query: "partNumber=10000&uploadId=abc", want: Request{Op: OpUploadPart, UploadID: "abc", PartNumber: 10000}},
		{name: "UploadPart 0", method: "PUT", hasKey: true, query: "partNumber=0&uploadId=abc", wantErr: s3err.ErrInvalidArgument},
		{name: "UploadPart 10001", method: "PUT", hasKey: true, query: "partNumber=10001&uploadId=abc", wantErr: s3err.ErrInvalidArgument},
		{name: "UploadPart negative", method: "PUT", hasKey: true, query: "partNumber=-1&uploadId=abc", wantErr: s3err.ErrInvalidArgument},
		{name: "UploadPart junk", method: "PUT", hasKey: true, query: "partNumber=1x&uploadId=abc", wantErr: s3err.ErrInvalidArgument},
		{name: "UploadPart without id", method: "PUT", hasKey: true, query: "partNumber=1", wantErr: s3err.ErrInvalidArgument},
		{name: "UploadPartCopy", method: "PUT", hasKey: true, query: "partNumber=1&uploadId=a", header: http.Header{"X-Amz-Copy-Source": {"/b/k"}}, wantErr: s3err.ErrNotImplemented},
		{name: "CopyObject", method: "PUT", hasKey: true, header: http.Header{"X-Amz-Copy-Source": {"/b/k"}}, wantErr: s3err.ErrNotImplemented},
		{name: "PutObjectTagging", method: "PUT", hasKey: true, query: "tagging", wantErr: s3err.ErrNotImplemented},
		{name: "PutObjectAcl", method: "PUT", hasKey: true, query: "acl", wantErr: s3err.ErrNotImplemented},
		{name: "CompleteMultipartUpload", method: "POST", hasKey: true, query: "uploadId=abc", want: Request{Op: OpCompleteMultipartUpload, UploadID: "abc"}},
		{name: "Complete empty id", method: "POST", hasKey: true, query: "uploadId=", wantErr: s3err.ErrNoSuchUpload},
		{name: "RestoreObject", method: "POST", hasKey: true, query: "restore", wantErr: s3err.ErrNotImplemented},
		{name: "POST object", method: "POST", hasKey: true, wantErr: s3err.ErrNotImplemented},
		{name: "AbortMultipartUpload", method: "DELETE", hasKey: true, query: "uploadId=abc", want: Request{Op: OpAbortMultipartUpload, UploadID: "abc"}},
		{name: "DeleteObject", method: "DELETE", hasKey: true, wantErr: s3err.ErrMethodNotAllowed},
		{name: "DeleteObject version", method: "DELETE", hasKey: true, query: "versionId=1", wantErr: s3err.ErrMethodNotAllowed},
		{name: "ListParts", method: "GET", hasKey: true, query: "uploadId=abc", want: Request{Op: OpListParts, UploadID: "abc"}},
		{name: "GetObject", method: "GET", hasKey: true, wantErr: s3err.ErrMethodNotAllowed},
		{name: "GetObjectAcl", method: "GET", hasKey: true, query: "acl", wantErr: s3err.ErrMethodNotAllowed},
		{name: "GetObject with uploadId and versionId", method: "GET", hasKey: true, query: "uploadId=a&versionId=b", wantErr: s3err.ErrMethodNotAllowed},
		{name: "HeadObject", method: "HEAD", hasKey: true, wantErr: s3err.ErrMethodNotAllowed},
		{name: "OPTIONS object", method: "OPTIONS", hasKey: true, wantErr: s3err.ErrMethodNotAllowed},
		{name: "HeadBucket", method: "HEAD", want: Request{Op: OpHeadBucket}},
		{name: "GetBucketLocation", method: "GET", query: "location", want: Request{Op: OpGetBucketLocation}},
		{name: "ListObjects", method: "GET", wantErr: s3err.ErrMethodNotAllowed},
		{name: "ListObjectsV2", method: "GET", query: "list-type=2&prefix=a", wantErr: s3err.ErrMethodNotAllowed},
		{name: "ListMultipartUploads", method: "GET", query: "uploads", wantErr: s3err.ErrMethodNotAllowed},
		{name: "ListObjectVersions", method: "GET", query: "versions", wantErr: s3err.ErrMethodNotAllowed},
		{name: "GetBucketPolicy", method: "GET", query: "policy", wantErr: s3err.ErrNotImplemented},
		{name: "GetBucketAcl", method: "GET", query: "acl", wantErr: s3err.ErrNotImplemented},
		{name: "DeleteObjects", method: "POST", query: "delete", wantErr: s3err.ErrMethodNotAllowed},
		{name: "DeleteBucket", method: "DELETE", wantErr: s3err.ErrMethodNotAllowed},
		{name: "CreateBucket", method: "PUT", want: Request{Op: OpCreateBucket}},
		{name: "PutBucketPolicy", method: "PUT", query: "policy", wantErr: s3err.ErrNotImplemented},
		{name: "POST policy upload", method: "POST", wantErr: s3err.ErrNotImplemented},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			if tt.header == nil {
				tt.header = http.Header{}
			}
			got, err := Classify(tt.method, tt.hasKey, q, tt.header)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %s", err, tt.wantErr.Code)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Classify = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func FuzzClassify(f *testing.F) {
	f.Add("PUT", true, "partNumber=1&uploadId=x")
	f.Add("GET", false, "location")
	f.Add("POST", true, "uploads&uploadId=")
	f.Fuzz(func(t *testing.T, method string, hasKey bool, query string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		req, err := Classify(method, hasKey, q, http.Header{})
		if err == nil && req.Op == "" {
			t.Fatal("no operation and no error")
		}
		if req.Op == OpUploadPart && (req.PartNumber < 1 || req.PartNumber > 10000 || req.UploadID == "") {
			t.Fatalf("bad UploadPart %+v", req)
		}
	})
}
