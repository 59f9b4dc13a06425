// Package openfga decides uploads with OpenFGA's Check API, over gRPC
// (OpenFGA's published protos, one persistent connection; the default) or
// over HTTP (the official Go SDK). The user, relation and object of the
// check are templates filled from the input ({subject}, {bucket}, {key},
// {prefix}); configured contextual tuples are sent with every check. When
// several objects are configured, one BatchCheck carries all of them with
// correlation ids and the upload is allowed if any of them allows it.
//
// Both transports can use TLS (1.2 or later; a configured CA bundle or the
// system roots) and send OpenFGA's preshared key as a bearer token on
// every call.
//
// A failure to get an answer is an error (503 for the client), never an
// allow. internal/app puts an authz.Cache in front.
package openfga
