// Package authz asks a policy engine whether a subject may perform an
// upload action on a key. Engines (opa, openfga) implement Authorizer; a
// decision cache sits in front of each.
//
// Error contract: Authorize returns (true, nil) to allow, (false, nil) to
// deny (403 AccessDenied) and a non-nil error when no decision could be
// made (503 ServiceUnavailable); an error is never an allow.
package authz

import "context"

// Actions, one per upload operation.
const (
	ActionUpload            = "upload"
	ActionCreateMultipart   = "create_multipart"
	ActionUploadPart        = "upload_part"
	ActionCompleteMultipart = "complete_multipart"
	ActionAbortMultipart    = "abort_multipart"
	ActionListParts         = "list_parts"
)

// Input is the document a policy decides on. Its JSON form is the OPA
// input document (docs/AUTHZ.md).
type Input struct {
	Subject  string   `json:"subject"`
	Action   string   `json:"action"`
	Resource Resource `json:"resource"`
	Context  Context  `json:"context"`
}

// Resource is what the action applies to.
type Resource struct {
	// Bucket is the configured bucket name (not the backend bucket).
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
}

// Context describes the request.
type Context struct {
	Method        string         `json:"method"`
	Path          string         `json:"path"`
	IP            string         `json:"ip"`
	ContentLength int64          `json:"content_length"`
	ContentType   string         `json:"content_type"`
	Claims        map[string]any `json:"claims"`
	AuthMethod    string         `json:"auth_method"`
}

// Authorizer decides.
type Authorizer interface {
	Authorize(ctx context.Context, in *Input) (bool, error)
}
