package config

import "strings"

// JWTAlgorithm is one signing algorithm a bucket may pin in
// auth.jwt.algorithm.
type JWTAlgorithm struct {
	// Name is the JOSE "alg" value.
	Name string
	// Family is the key type it needs: "HS" (a shared secret), "RS" and
	// "PS" (RSA), "ES" (an EC key on Curve) or "EdDSA" (Ed25519).
	Family string
	// Curve is the NIST curve of the ES algorithms ("P-256", "P-384",
	// "P-521"), empty otherwise.
	Curve string
}

// jwtAlgorithmTable is the one list of supported JWT algorithms: Validate
// accepts exactly these, and the jwt package builds its verifiers and
// `mizuchi token` its signers from it (a test there checks that every
// entry has one).
var jwtAlgorithmTable = []JWTAlgorithm{
	{Name: "HS256", Family: "HS"},
	{Name: "HS384", Family: "HS"},
	{Name: "HS512", Family: "HS"},
	{Name: "RS256", Family: "RS"},
	{Name: "RS384", Family: "RS"},
	{Name: "RS512", Family: "RS"},
	{Name: "PS256", Family: "PS"},
	{Name: "PS384", Family: "PS"},
	{Name: "PS512", Family: "PS"},
	{Name: "ES256", Family: "ES", Curve: "P-256"},
	{Name: "ES384", Family: "ES", Curve: "P-384"},
	{Name: "ES512", Family: "ES", Curve: "P-521"},
	{Name: "EdDSA", Family: "EdDSA"},
}

// JWTAlgorithms returns the supported JWT algorithms, in the order of the
// documentation.
func JWTAlgorithms() []JWTAlgorithm {
	return append([]JWTAlgorithm(nil), jwtAlgorithmTable...)
}

// JWTAlgorithmNames returns the names of JWTAlgorithms.
func JWTAlgorithmNames() []string {
	names := make([]string, len(jwtAlgorithmTable))
	for i, a := range jwtAlgorithmTable {
		names[i] = a.Name
	}
	return names
}

// jwtAlgorithmList is the list for messages: "HS256, HS384, …, EdDSA".
func jwtAlgorithmList() string { return strings.Join(JWTAlgorithmNames(), ", ") }

// jwtAlgorithms maps each supported algorithm to its family.
var jwtAlgorithms = func() map[string]string {
	m := make(map[string]string, len(jwtAlgorithmTable))
	for _, a := range jwtAlgorithmTable {
		m[a.Name] = a.Family
	}
	return m
}()
