// Package opa decides uploads with Open Policy Agent, either on a remote
// OPA server (NewRemote: POST {url}/v1/data/{policy_path} with the input
// document) or in-process from a Rego file (NewEmbedded: the OPA Go SDK,
// query prepared once). Both answer a boolean: anything but a result of
// true, including an undefined one, is a deny; a failure to get an answer
// is an error, which the caller turns into 503 and never into an allow.
//
// internal/app puts an authz.Cache in front of either.
package opa
