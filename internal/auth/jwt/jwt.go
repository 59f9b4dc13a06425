package jwt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/mizuchi-uploadr/mizuchi/internal/auth"
	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

// Realm is the realm of every Bearer challenge Mizuchi sends.
const Realm = "mizuchi"

// Options are the dependencies of an Authenticator.
type Options struct {
	// HTTPClient fetches the JWKS; it should carry the tracing transport.
	// Nil means a plain client.
	HTTPClient *http.Client
	// Logger receives JWKS events; nil discards them.
	Logger *slog.Logger
	// Now is the clock for claim checks and refetch rate limiting; nil
	// means time.Now.
	Now func() time.Time
	// JWKSFetchTimeout bounds one JWKS fetch (default 5 s).
	JWKSFetchTimeout time.Duration
	// JWKSRefetchInterval is the minimum gap between JWKS refetches caused
	// by tokens with an unknown kid (default 10 s).
	JWKSRefetchInterval time.Duration
}

// Authenticator verifies JWTs for one bucket.
type Authenticator struct {
	spec    algSpec
	parser  *gojwt.Parser
	static  any // HMAC secret or public key; nil with a JWKS
	jwks    *jwksCache
	sources []source

	checksIssuer, checksAudience bool
}

// New builds an Authenticator from cfg; configuration mistakes (algorithm,
// key material, token sources) are returned. With a JWKS URL it fetches the
// keys once under ctx (a failure is logged, not returned) and keeps
// refreshing them in the background until Close, whatever becomes of ctx.
func New(ctx context.Context, cfg config.JWT, opts Options) (*Authenticator, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.JWKSFetchTimeout <= 0 {
		opts.JWKSFetchTimeout = defaultFetchTimeout
	}
	if opts.JWKSRefetchInterval <= 0 {
		opts.JWKSRefetchInterval = defaultRefetchInterval
	}
	spec, err := lookupAlg(cfg.Algorithm)
	if err != nil {
		return nil, err
	}
	sources, err := parseSources(cfg.TokenSources)
	if err != nil {
		return nil, err
	}
	a := &Authenticator{spec: spec, sources: sources, checksIssuer: cfg.Issuer != "", checksAudience: cfg.Audience != ""}

	parserOpts := []gojwt.ParserOption{
		gojwt.WithValidMethods([]string{spec.method.Alg()}),
		gojwt.WithExpirationRequired(),
		gojwt.WithIssuedAt(),
		gojwt.WithLeeway(time.Duration(max(cfg.LeewaySeconds, 0)) * time.Second),
		gojwt.WithTimeFunc(opts.Now),
	}
	if cfg.Issuer != "" {
		parserOpts = append(parserOpts, gojwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		parserOpts = append(parserOpts, gojwt.WithAudience(cfg.Audience))
	}
	a.parser = gojwt.NewParser(parserOpts...)

	log := opts.Logger.With("component", "jwt")
	switch {
	case spec.family == familyHMAC && cfg.Secret != "":
		if cfg.PublicKeyFile != "" || cfg.JWKSURL != "" {
			return nil, errors.New("jwt: configure exactly one of secret, public_key_file, jwks_url")
		}
		if len(cfg.Secret) < 32 {
			log.Warn("JWT HMAC secret is shorter than 32 bytes; use a longer random secret")
		}
		a.static = []byte(cfg.Secret)
	case cfg.PublicKeyFile != "":
		if cfg.JWKSURL != "" || cfg.Secret != "" {
			return nil, errors.New("jwt: configure exactly one of secret, public_key_file, jwks_url")
		}
		if spec.family == familyHMAC {
			return nil, fmt.Errorf("jwt: %s needs a secret, not a public key file", cfg.Algorithm)
		}
		data, err := os.ReadFile(cfg.PublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("jwt: public_key_file: %w", err)
		}
		key, err := parsePublicKeyPEM(spec, data)
		if err != nil {
			return nil, fmt.Errorf("jwt: public_key_file %s: %w", cfg.PublicKeyFile, err)
		}
		a.static = key
	case cfg.JWKSURL != "":
		if cfg.Secret != "" {
			return nil, errors.New("jwt: configure exactly one of secret, public_key_file, jwks_url")
		}
		ttl := time.Duration(cfg.CacheTTLSeconds) * time.Second
		if ttl <= 0 {
			ttl = time.Hour
		}
		c, err := newJWKSCache(cfg.JWKSURL, spec, ttl, opts, log)
		if err != nil {
			return nil, err
		}
		a.jwks = c
		c.start(ctx)
	case spec.family == familyHMAC:
		return nil, fmt.Errorf("jwt: %s needs a secret (or a jwks_url)", cfg.Algorithm)
	default:
		return nil, fmt.Errorf("jwt: %s needs public_key_file or jwks_url", cfg.Algorithm)
	}
	return a, nil
}

// Close stops the background JWKS refresh.
func (a *Authenticator) Close() {
	if a.jwks != nil {
		a.jwks.close()
	}
}

// Method names the method for metrics and traces.
func (a *Authenticator) Method() auth.Method { return auth.MethodJWT }

// Authenticate verifies the first token found in the configured sources.
// A token read from the query string is removed from the request first.
func (a *Authenticator) Authenticate(ctx context.Context, r *http.Request) (*auth.Principal, error) {
	token, fromCookie, ok := a.extract(r)
	if !ok {
		return nil, auth.ErrNoCredentials
	}
	claims, err := a.verify(ctx, token)
	if err != nil {
		return nil, err
	}
	return &auth.Principal{Subject: claims["sub"].(string), Method: auth.MethodJWT, Claims: claims, Ambient: fromCookie}, nil
}

// verify checks a token and returns its claims, an *s3err.Error for a bad
// token, or *KeysUnavailableError.
func (a *Authenticator) verify(ctx context.Context, token string) (map[string]any, error) {
	if len(token) > maxTokenBytes {
		return nil, invalid(reasonMalformed)
	}
	claims := gojwt.MapClaims{}
	parsed, err := a.parser.ParseWithClaims(token, claims, func(t *gojwt.Token) (any, error) {
		if a.static != nil {
			return a.static, nil
		}
		kid, ok := t.Header["kid"]
		if !ok {
			kid = ""
		}
		s, ok := kid.(string)
		if !ok {
			return nil, errBadKID
		}
		return a.jwks.lookup(ctx, s)
	})
	if err != nil {
		var ku *KeysUnavailableError
		if errors.As(err, &ku) {
			return nil, ku
		}
		return nil, invalid(a.reason(parsed, err))
	}
	if sub, ok := claims["sub"].(string); !ok || sub == "" {
		return nil, invalid(reasonNoSubject)
	}
	return claims, nil
}

// maxTokenBytes bounds the token length; header limits already bound it
// in practice, this keeps a query or cookie token from being parsed at any
// size.
const maxTokenBytes = 16 << 10

var errBadKID = errors.New("kid header is not a string")

// Reasons given in error_description; they never quote the token.
const (
	reasonMalformed     = "malformed token"
	reasonAlgorithm     = "algorithm not allowed"
	reasonSignature     = "invalid signature"
	reasonUnknownKID    = "unknown key id"
	reasonExpired       = "token expired"
	reasonNotYetValid   = "token not valid yet"
	reasonIssuedFuture  = "token issued in the future"
	reasonIssuer        = "invalid issuer"
	reasonAudience      = "invalid audience"
	reasonMissingExp    = "missing exp claim"
	reasonMissingIss    = "missing iss claim"
	reasonMissingAud    = "missing aud claim"
	reasonMissingClaim  = "missing required claim"
	reasonClaimType     = "invalid claim type"
	reasonNoSubject     = "missing sub claim"
	reasonInvalid       = "invalid token"
	invalidTokenMessage = "The provided token is invalid: "
)

// reason turns a parser error into one short, fixed description.
func (a *Authenticator) reason(parsed *gojwt.Token, err error) string {
	switch {
	case errors.Is(err, errUnknownKID):
		return reasonUnknownKID
	case errors.Is(err, errBadKID):
		return reasonMalformed
	case errors.Is(err, gojwt.ErrTokenMalformed):
		return reasonMalformed
	case parsed != nil && (parsed.Method == nil || parsed.Method.Alg() != a.spec.method.Alg()):
		return reasonAlgorithm
	case errors.Is(err, gojwt.ErrTokenSignatureInvalid):
		return reasonSignature
	case errors.Is(err, gojwt.ErrTokenExpired):
		return reasonExpired
	case errors.Is(err, gojwt.ErrTokenNotValidYet):
		return reasonNotYetValid
	case errors.Is(err, gojwt.ErrTokenUsedBeforeIssued):
		return reasonIssuedFuture
	case errors.Is(err, gojwt.ErrTokenInvalidIssuer):
		return reasonIssuer
	case errors.Is(err, gojwt.ErrTokenInvalidAudience):
		return reasonAudience
	case errors.Is(err, gojwt.ErrTokenRequiredClaimMissing):
		if parsed != nil {
			if m, ok := parsed.Claims.(gojwt.MapClaims); ok {
				for _, c := range []struct {
					claim, reason string
					checked       bool
				}{
					{"exp", reasonMissingExp, true},
					{"iss", reasonMissingIss, a.checksIssuer},
					{"aud", reasonMissingAud, a.checksAudience},
				} {
					if _, has := m[c.claim]; c.checked && !has {
						return c.reason
					}
				}
			}
		}
		return reasonMissingClaim
	case errors.Is(err, gojwt.ErrInvalidType):
		return reasonClaimType
	}
	return reasonInvalid
}

// invalid builds the 401 answer for a bad token (RFC 6750 section 3).
func invalid(reason string) *s3err.Error {
	return s3err.ErrInvalidToken.
		WithStatus(http.StatusUnauthorized).
		WithMessage("%s%s", invalidTokenMessage, reason).
		WithHeader("WWW-Authenticate", `Bearer realm="`+Realm+`", error="invalid_token", error_description="`+reason+`"`)
}

var _ auth.Authenticator = (*Authenticator)(nil)
