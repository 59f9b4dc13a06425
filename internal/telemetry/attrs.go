package telemetry

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"

	"go.opentelemetry.io/otel/attribute"
)

// Span names shared by the packages that create spans, so a trace reads the
// same whichever component produced it.
const (
	SpanAuthJWT      = "auth.jwt"
	SpanAuthSigV4    = "auth.sigv4"
	SpanAuthzOPA     = "authz.opa"
	SpanAuthzOpenFGA = "authz.openfga"
)

// Attribute keys. HTTP, URL, server and RPC keys follow the OpenTelemetry
// semantic conventions; the mizuchi.* keys are ours.
const (
	AttrHTTPRequestMethod      = attribute.Key("http.request.method")
	AttrHTTPResponseStatusCode = attribute.Key("http.response.status_code")
	AttrHTTPRoute              = attribute.Key("http.route")
	AttrHTTPRequestBodySize    = attribute.Key("http.request.body.size")
	AttrURLScheme              = attribute.Key("url.scheme")
	AttrURLPath                = attribute.Key("url.path")
	AttrServerAddress          = attribute.Key("server.address")
	AttrServerPort             = attribute.Key("server.port")
	AttrClientAddress          = attribute.Key("client.address")
	AttrNetworkProtocolVersion = attribute.Key("network.protocol.version")
	AttrUserAgent              = attribute.Key("user_agent.original")
	AttrErrorType              = attribute.Key("error.type")
	AttrRPCSystem              = attribute.Key("rpc.system")
	AttrRPCService             = attribute.Key("rpc.service")
	AttrRPCMethod              = attribute.Key("rpc.method")
	AttrRPCGRPCStatusCode      = attribute.Key("rpc.grpc.status_code")

	// AttrEndUserHash carries SubjectHash of the authenticated subject;
	// the raw subject never appears in a span.
	AttrEndUserHash = attribute.Key("enduser.hash")
	// AttrObjectKey is the object key; set only with tracing.record_object_keys.
	AttrObjectKey = attribute.Key("aws.s3.key")

	AttrBucket            = attribute.Key("mizuchi.bucket")
	AttrOperation         = attribute.Key("mizuchi.operation")
	AttrAuthMethod        = attribute.Key("mizuchi.auth.method")
	AttrAuthResult        = attribute.Key("mizuchi.auth.result")
	AttrAuthzDecision     = attribute.Key("mizuchi.authz.decision")
	AttrAuthzCacheHit     = attribute.Key("mizuchi.authz.cache_hit")
	AttrUploadClientWait  = attribute.Key("mizuchi.upload.client_wait_seconds")
	AttrUploadBackendWait = attribute.Key("mizuchi.upload.backend_wait_seconds")
	AttrPartNumber        = attribute.Key("mizuchi.part_number")

	semconvServiceName    = attribute.Key("service.name")
	semconvServiceVersion = attribute.Key("service.version")
)

// subjectHashBytes is how much of the HMAC is kept: 128 bits is plenty to
// tell subjects apart and short enough to read in a trace view.
const subjectHashBytes = 16

// SubjectHash returns the keyed hash of subject (HMAC-SHA256 under key,
// truncated, hex) for the enduser.hash attribute. Without the key the
// subject cannot be recovered or confirmed by guessing.
func SubjectHash(key []byte, subject string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(subject))
	sum := m.Sum(nil)
	return hex.EncodeToString(sum[:subjectHashBytes])
}
