// Package jwt authenticates upload requests carrying a JSON Web Token.
//
// An Authenticator is built from one bucket's config.JWT: the signing
// algorithm is pinned by configuration (a token's alg header never chooses
// the key type, and "none" is always refused) and the verification key is
// an HMAC secret, a PEM public key file or a JWKS URL. JWKS keys are cached
// for cache_ttl_seconds, refreshed in the background before they expire,
// refetched once (single-flight, rate-limited) when a token names an
// unknown kid, and kept while the JWKS endpoint is down.
//
// Authenticate follows the three outcomes of package auth: no token in any
// configured source is auth.ErrNoCredentials; a bad token is a 401
// *s3err.Error (code InvalidToken) with a WWW-Authenticate: Bearer
// challenge; keys that cannot be obtained at all are a plain error (503).
// Token text never appears in errors or logs.
//
// Mint creates tokens for tests and for the "mizuchi token" command.
package jwt
