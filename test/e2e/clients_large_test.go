package e2e

import (
	"os"
	"path/filepath"
	"testing"
)

// TestClients200MiBMultipartIntoVersitygw has the aws-sdk-go-v2 upload
// manager, Debian's awscli and Debian's boto3 each upload a 200 MiB object
// (forty 5 MiB parts) through Mizuchi into versitygw; the stored bytes are
// compared with what was sent and no multipart upload is left open.
func TestClients200MiBMultipartIntoVersitygw(t *testing.T) {
	e := cliSetup(t)
	data := randomBytes(t, 200<<20)
	path := filepath.Join(t.TempDir(), "200mib.bin")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []cliClient{
		{"aws-sdk-go-v2", cliGoSDK},
		{"awscli-debian", cliAWSCLI(t, "/usr/bin/aws")},
		{"boto3-debian", cliBoto3(t, "/usr/bin/python3")},
	} {
		t.Run(c.name, func(t *testing.T) {
			tg := e.target("http", "matrix-s3")
			key := c.name + "/200mib.bin"
			c.upload(t, tg, []cliUpload{{Key: key, Path: path, Data: data}})
			e.assertStored(t, "http", "matrix-s3", key, data)
		})
	}
	e.assertNothingOpen(t)
}
