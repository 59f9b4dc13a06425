package s3api

import (
	"errors"
	"strings"
	"testing"

	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

func TestParseCompleteMultipartUpload(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		parts   int
		wantErr *s3err.Error
	}{
		{"two parts", `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"a"</ETag></Part><Part><PartNumber>2</PartNumber><ETag>b</ETag><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part></CompleteMultipartUpload>`, 2, nil},
		{"with namespace", `<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part><PartNumber>1</PartNumber><ETag>"a"</ETag></Part></CompleteMultipartUpload>`, 1, nil},
		{"no parts", `<CompleteMultipartUpload></CompleteMultipartUpload>`, 0, s3err.ErrMalformedXML},
		{"not xml", `{"parts":[]}`, 0, s3err.ErrMalformedXML},
		{"wrong root", `<Other><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part></Other>`, 0, s3err.ErrMalformedXML},
		{"out of order", `<CompleteMultipartUpload><Part><PartNumber>2</PartNumber><ETag>a</ETag></Part><Part><PartNumber>1</PartNumber><ETag>b</ETag></Part></CompleteMultipartUpload>`, 0, s3err.ErrInvalidPartOrder},
		{"duplicate", `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part><Part><PartNumber>1</PartNumber><ETag>b</ETag></Part></CompleteMultipartUpload>`, 0, s3err.ErrInvalidPartOrder},
		{"part 0", `<CompleteMultipartUpload><Part><PartNumber>0</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>`, 0, s3err.ErrInvalidArgument},
		{"part 10001", `<CompleteMultipartUpload><Part><PartNumber>10001</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>`, 0, s3err.ErrInvalidArgument},
		{"no etag", `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>`, 0, s3err.ErrInvalidPart},
		{"too large", `<CompleteMultipartUpload>` + strings.Repeat("<!-- padding -->", maxCompleteBody/16+1) + `</CompleteMultipartUpload>`, 0, s3err.ErrMalformedXML},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts, err := parseCompleteMultipartUpload(strings.NewReader(tt.doc))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %s", err, tt.wantErr.Code)
				}
				return
			}
			if err != nil || len(parts) != tt.parts {
				t.Fatalf("parts %v, err %v", parts, err)
			}
		})
	}
}

func FuzzParseCompleteMultipartUpload(f *testing.F) {
	f.Add(`<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"a"</ETag></Part></CompleteMultipartUpload>`)
	f.Add(`<CompleteMultipartUpload><Part><PartNumber>3</PartNumber><ETag>x</ETag><ChecksumSHA256>y</ChecksumSHA256></Part></CompleteMultipartUpload>`)
	f.Add(`<a><b>`)
	f.Fuzz(func(t *testing.T, doc string) {
		parts, err := parseCompleteMultipartUpload(strings.NewReader(doc))
		if err != nil {
			var e *s3err.Error
			if !errors.As(err, &e) || e.Status != 400 {
				t.Fatalf("not a 400 S3 error: %v", err)
			}
			return
		}
		if len(parts) == 0 {
			t.Fatal("accepted a document without parts")
		}
		for i, p := range parts {
			if p.PartNumber < 1 || p.PartNumber > 10000 || p.ETag == "" || (i > 0 && p.PartNumber <= parts[i-1].PartNumber) {
				t.Fatalf("accepted invalid part list %+v", parts)
			}
		}
	})
}
