package jwt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

// minRSABits is the smallest RSA modulus accepted for verification or
// minting; shorter keys are refused rather than trusted.
const minRSABits = 2048

// family is the key type an algorithm needs.
type family int

const (
	familyHMAC family = iota + 1
	familyRSA
	familyEC
	familyEdDSA
)

// algSpec describes one supported algorithm.
type algSpec struct {
	family family
	method gojwt.SigningMethod
	curve  elliptic.Curve // EC only
	kty    string         // JWK key type
	crv    string         // JWK curve name (EC, OKP)
}

// algorithms are the supported algorithms, one per entry of the
// configuration's table (config.JWTAlgorithms), so that everything
// `validate` accepts `serve` runs and `mizuchi token` mints.
var algorithms = buildAlgorithms(config.JWTAlgorithms())

// buildAlgorithms turns the configuration's algorithm table into signing
// methods and key requirements; an entry it cannot serve is a programming
// error caught at start (and by the tests).
func buildAlgorithms(table []config.JWTAlgorithm) map[string]algSpec {
	curves := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}
	m := make(map[string]algSpec, len(table))
	for _, a := range table {
		method := gojwt.GetSigningMethod(a.Name)
		if method == nil || method.Alg() != a.Name {
			panic("jwt: no signing method for configured algorithm " + a.Name)
		}
		spec := algSpec{method: method}
		switch a.Family {
		case "HS":
			spec.family, spec.kty = familyHMAC, "oct"
		case "RS", "PS":
			spec.family, spec.kty = familyRSA, "RSA"
		case "ES":
			spec.family, spec.kty, spec.crv, spec.curve = familyEC, "EC", a.Curve, curves[a.Curve]
			if spec.curve == nil {
				panic("jwt: unknown curve " + a.Curve + " for " + a.Name)
			}
		case "EdDSA":
			spec.family, spec.kty, spec.crv = familyEdDSA, "OKP", "Ed25519"
		default:
			panic("jwt: unknown key family " + a.Family + " for " + a.Name)
		}
		m[a.Name] = spec
	}
	return m
}

// lookupAlg returns the spec of a configured algorithm name.
func lookupAlg(name string) (algSpec, error) {
	spec, ok := algorithms[name]
	if !ok {
		return algSpec{}, fmt.Errorf("jwt: unsupported algorithm %q (want one of %s)", name, strings.Join(Algorithms(), ", "))
	}
	return spec, nil
}

// checkPublicKey verifies that key suits spec and returns it in the form
// the signing method verifies with.
func checkPublicKey(spec algSpec, key crypto.PublicKey) (crypto.PublicKey, error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if spec.family != familyRSA {
			return nil, fmt.Errorf("RSA key does not suit algorithm %s", spec.method.Alg())
		}
		if k.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("RSA key of %d bits is shorter than %d bits", k.N.BitLen(), minRSABits)
		}
		return k, nil
	case *ecdsa.PublicKey:
		if spec.family != familyEC {
			return nil, fmt.Errorf("EC key does not suit algorithm %s", spec.method.Alg())
		}
		if k.Curve != spec.curve {
			return nil, fmt.Errorf("EC key on curve %s does not suit algorithm %s", k.Curve.Params().Name, spec.method.Alg())
		}
		return k, nil
	case ed25519.PublicKey:
		if spec.family != familyEdDSA {
			return nil, fmt.Errorf("Ed25519 key does not suit algorithm %s", spec.method.Alg())
		}
		return k, nil
	default:
		return nil, fmt.Errorf("unsupported public key type %T", key)
	}
}

// parsePublicKeyPEM reads the first usable public key from PEM data:
// PKIX "PUBLIC KEY", PKCS#1 "RSA PUBLIC KEY" or an X.509 "CERTIFICATE".
func parsePublicKeyPEM(spec algSpec, data []byte) (crypto.PublicKey, error) {
	var errs []error
	found := false
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		var (
			key crypto.PublicKey
			err error
		)
		switch block.Type {
		case "PUBLIC KEY":
			key, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			cert, err = x509.ParseCertificate(block.Bytes)
			if err == nil {
				key = cert.PublicKey
			}
		default:
			if strings.Contains(block.Type, "PRIVATE KEY") {
				return nil, errors.New("PEM holds a private key; configure the public key instead")
			}
			continue
		}
		found = true
		if err != nil {
			errs = append(errs, fmt.Errorf("%s block: %w", block.Type, err))
			continue
		}
		key, err = checkPublicKey(spec, key)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		return key, nil
	}
	if !found {
		return nil, errors.New("no PEM public key or certificate found")
	}
	return nil, errors.Join(errs...)
}

// parsePrivateKeyPEM reads the first private key from PEM data: PKCS#1
// "RSA PRIVATE KEY", PKCS#8 "PRIVATE KEY" or SEC 1 "EC PRIVATE KEY".
func parsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no PEM private key found")
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("encrypted private keys are not supported")
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s block: %w", block.Type, err)
		}
		switch k := key.(type) {
		case *rsa.PrivateKey:
			return k, nil
		case *ecdsa.PrivateKey:
			return k, nil
		case ed25519.PrivateKey:
			return k, nil
		default:
			return nil, fmt.Errorf("unsupported private key type %T", key)
		}
	}
}

// defaultAlgFor picks the natural algorithm for a private key.
func defaultAlgFor(key crypto.Signer) (string, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return "RS256", nil
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			return "ES256", nil
		case elliptic.P384():
			return "ES384", nil
		case elliptic.P521():
			return "ES512", nil
		}
		return "", fmt.Errorf("unsupported EC curve %s", k.Curve.Params().Name)
	case ed25519.PrivateKey:
		return "EdDSA", nil
	}
	return "", fmt.Errorf("unsupported private key type %T", key)
}

// Algorithms lists the supported algorithm names, from the configuration's
// table.
func Algorithms() []string { return config.JWTAlgorithmNames() }
