package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/auth/jwt"
)

const tokenUsage = `Usage: mizuchi token --sub S [--secret X | --key-file F] [--alg ALG] [--ttl 1h] [--iss I] [--aud A] [--kid K]

Mints a JWT for testing and prints only the token. The HMAC secret comes
from --secret or, when neither --secret nor --key-file is given, from
$JWT_SECRET (preferred: command lines are visible to other users). A key
file is a PEM private key: RSA (PKCS#1 or PKCS#8), EC (SEC 1 or PKCS#8) or
Ed25519 (PKCS#8). ALG defaults to HS256 with a secret and to RS256, ES256,
ES384, ES512 or EdDSA according to the key (P-256, P-384, P-521).

Flags:
`

// runToken implements "mizuchi token". It returns the exit status: 0, 1 when
// the key cannot be read or the token cannot be signed, 2 on usage errors.
func runToken(args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, tokenUsage)
		fs.PrintDefaults()
	}
	var (
		sub     = fs.String("sub", "", "subject (sub claim), required")
		secret  = fs.String("secret", "", "HMAC secret for HS256/384/512 (default $JWT_SECRET)")
		keyFile = fs.String("key-file", "", "PEM private key file for RS*/PS*/ES*/EdDSA")
		alg     = fs.String("alg", "", "signing algorithm: "+strings.Join(jwt.Algorithms(), ", "))
		ttl     = fs.Duration("ttl", time.Hour, "lifetime of the token")
		iss     = fs.String("iss", "", "issuer (iss claim)")
		aud     = fs.String("aud", "", "audience (aud claim)")
		kid     = fs.String("kid", "", "key id (kid header)")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "mizuchi token: "+format+"\n", a...)
		fmt.Fprintln(stderr, "Run 'mizuchi token -h' for usage.")
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return usageErr("unexpected argument %q", fs.Arg(0))
	case *sub == "":
		return usageErr("--sub is required")
	case *secret != "" && *keyFile != "":
		return usageErr("--secret and --key-file are mutually exclusive")
	case *ttl <= 0:
		return usageErr("--ttl must be positive")
	case *alg != "" && !slices.Contains(jwt.Algorithms(), *alg):
		return usageErr("unsupported --alg %q (want one of %s)", *alg, strings.Join(jwt.Algorithms(), ", "))
	}
	opts := jwt.MintOptions{Subject: *sub, Algorithm: *alg, TTL: *ttl, Issuer: *iss, Audience: *aud, KeyID: *kid}
	switch {
	case *keyFile != "":
		data, err := os.ReadFile(*keyFile)
		if err != nil {
			fmt.Fprintf(stderr, "mizuchi token: %v\n", err)
			return 1
		}
		opts.PrivateKeyPEM = data
	case *secret != "":
		opts.Secret = []byte(*secret)
	default:
		if v, ok := lookupEnv("JWT_SECRET"); ok && v != "" {
			opts.Secret = []byte(v)
		} else {
			return usageErr("a key is required: --secret, --key-file or $JWT_SECRET")
		}
	}
	token, err := jwt.Mint(opts)
	if err != nil {
		fmt.Fprintf(stderr, "mizuchi token: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, token)
	return 0
}
