// Package openfga decides uploads with OpenFGA's Check API, over gRPC
// (OpenFGA's published protos, one persistent connection; the default) or
// over HTTP (the official Go SDK). The user, relation and object of the
// check are templates filled from the input ({subject}, {bucket}, {key},
// {prefix}); configured contextual tuples are sent with every check. When
// several objects are configured, one BatchCheck carries all of them with
// correlation ids and the upload is allowed if any of them allows it.
//
// A failure to get an answer is an error (503 for the client), never an
// allow. internal/app puts an authz.Cache in front.
package openfga
