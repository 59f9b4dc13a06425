package jwt

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
)

// MintOptions describe a token to mint.
type MintOptions struct {
	// Subject becomes the sub claim (required).
	Subject string
	// Algorithm defaults to HS256 with a secret, and to the key's natural
	// algorithm (RS256, ES256, ES384, ES512, EdDSA) with a private key.
	Algorithm string
	// Secret is the HMAC key (HS*); exactly one of Secret and
	// PrivateKeyPEM is required.
	Secret []byte
	// PrivateKeyPEM is an RSA, EC or Ed25519 private key in PKCS#1,
	// PKCS#8 or SEC 1 PEM form.
	PrivateKeyPEM []byte
	// TTL is the lifetime (default one hour).
	TTL time.Duration
	// Issuer and Audience set iss and aud when not empty.
	Issuer   string
	Audience string
	// KeyID sets the kid header when not empty.
	KeyID string
	// Claims are extra claims; they cannot override the ones above.
	Claims map[string]any
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Mint signs a token with iat, nbf, exp and sub (plus iss, aud and kid
// when given).
func Mint(o MintOptions) (string, error) {
	if o.Subject == "" {
		return "", errors.New("a subject is required")
	}
	if (len(o.Secret) == 0) == (len(o.PrivateKeyPEM) == 0) {
		return "", errors.New("exactly one of a secret and a private key is required")
	}
	if o.TTL == 0 {
		o.TTL = time.Hour
	}
	if o.TTL < 0 {
		return "", errors.New("the lifetime must be positive")
	}
	if o.Now == nil {
		o.Now = time.Now
	}

	var key any
	if len(o.Secret) > 0 {
		if o.Algorithm == "" {
			o.Algorithm = "HS256"
		}
		key = o.Secret
	} else {
		signer, err := parsePrivateKeyPEM(o.PrivateKeyPEM)
		if err != nil {
			return "", fmt.Errorf("private key: %w", err)
		}
		if o.Algorithm == "" {
			if o.Algorithm, err = defaultAlgFor(signer); err != nil {
				return "", err
			}
		}
		key = signer
	}
	spec, err := lookupAlg(o.Algorithm)
	if err != nil {
		return "", err
	}
	if err := keySuits(spec, key); err != nil {
		return "", err
	}

	now := o.Now()
	claims := gojwt.MapClaims{}
	for k, v := range o.Claims {
		claims[k] = v
	}
	claims["sub"] = o.Subject
	claims["iat"] = now.Unix()
	claims["nbf"] = now.Unix()
	claims["exp"] = now.Add(o.TTL).Unix()
	if o.Issuer != "" {
		claims["iss"] = o.Issuer
	}
	if o.Audience != "" {
		claims["aud"] = o.Audience
	}
	t := gojwt.NewWithClaims(spec.method, claims)
	if o.KeyID != "" {
		t.Header["kid"] = o.KeyID
	}
	s, err := t.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("signing: %w", err)
	}
	return s, nil
}

// keySuits checks that a signing key matches the algorithm's family.
func keySuits(spec algSpec, key any) error {
	alg := spec.method.Alg()
	switch k := key.(type) {
	case []byte:
		if spec.family != familyHMAC {
			return fmt.Errorf("%s needs a private key, not a secret", alg)
		}
	case *rsa.PrivateKey:
		if spec.family != familyRSA {
			return fmt.Errorf("an RSA key cannot sign %s", alg)
		}
		if k.N.BitLen() < minRSABits {
			return fmt.Errorf("RSA key of %d bits is shorter than %d bits", k.N.BitLen(), minRSABits)
		}
	case *ecdsa.PrivateKey:
		if spec.family != familyEC || k.Curve != spec.curve {
			return fmt.Errorf("an EC key on curve %s cannot sign %s", k.Curve.Params().Name, alg)
		}
	case ed25519.PrivateKey:
		if spec.family != familyEdDSA {
			return fmt.Errorf("an Ed25519 key cannot sign %s", alg)
		}
	default:
		return fmt.Errorf("unsupported key type %T", key)
	}
	return nil
}
