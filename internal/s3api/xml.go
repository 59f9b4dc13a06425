package s3api

import (
	"encoding/xml"

	"io"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

const s3Namespace = "http://s3.amazonaws.com/doc/2006-03-01/"

type initiateMultipartUploadResult struct {
	XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
	Xmlns    string   `xml:"xmlns,attr"`
	Bucket   string   `xml:"Bucket"`
	Key      string   `xml:"Key"`
	UploadID string   `xml:"UploadId"`
}

// completeMultipartUpload is the request body of CompleteMultipartUpload.
type completeMultipartUpload struct {
	XMLName xml.Name        `xml:"CompleteMultipartUpload"`
	Parts   []completedPart `xml:"Part"`
}

type completedPart struct {
	PartNumber        int32  `xml:"PartNumber"`
	ETag              string `xml:"ETag"`
	ChecksumCRC32     string `xml:"ChecksumCRC32,omitempty"`
	ChecksumCRC32C    string `xml:"ChecksumCRC32C,omitempty"`
	ChecksumCRC64NVME string `xml:"ChecksumCRC64NVME,omitempty"`
	ChecksumSHA1      string `xml:"ChecksumSHA1,omitempty"`
	ChecksumSHA256    string `xml:"ChecksumSHA256,omitempty"`
}

func (p completedPart) checksum() backend.Checksum {
	for _, c := range []backend.Checksum{
		{Algorithm: "CRC32", Value: p.ChecksumCRC32}, {Algorithm: "CRC32C", Value: p.ChecksumCRC32C},
		{Algorithm: "CRC64NVME", Value: p.ChecksumCRC64NVME}, {Algorithm: "SHA1", Value: p.ChecksumSHA1},
		{Algorithm: "SHA256", Value: p.ChecksumSHA256},
	} {
		if c.Value != "" {
			return c
		}
	}
	return backend.Checksum{}
}

func checksumFields(c backend.Checksum) (crc32, crc32c, crc64, sha1, sha256 string) {
	switch c.Algorithm {
	case "CRC32":
		crc32 = c.Value
	case "CRC32C":
		crc32c = c.Value
	case "CRC64NVME":
		crc64 = c.Value
	case "SHA1":
		sha1 = c.Value
	case "SHA256":
		sha256 = c.Value
	}
	return
}

// maxCompleteBody bounds the CompleteMultipartUpload document: 10000 parts
// with every optional element fit well within it.
const maxCompleteBody = 4 << 20

// parseCompleteMultipartUpload reads and checks the Complete request body.
func parseCompleteMultipartUpload(r io.Reader) ([]backend.CompletedPart, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxCompleteBody+1))
	if err != nil {
		return nil, clientError(err)
	}
	if len(data) > maxCompleteBody {
		return nil, s3err.ErrMalformedXML.WithMessage("The CompleteMultipartUpload document is too large.")
	}
	var doc completeMultipartUpload
	if err := xml.Unmarshal(data, &doc); err != nil {
		return nil, s3err.ErrMalformedXML.WithCause(err)
	}
	if len(doc.Parts) == 0 {
		return nil, s3err.ErrMalformedXML.WithMessage("The CompleteMultipartUpload document lists no parts.")
	}
	if len(doc.Parts) > backend.MaxPartNumber {
		return nil, s3err.ErrMalformedXML.WithMessage("The CompleteMultipartUpload document lists too many parts.")
	}
	parts := make([]backend.CompletedPart, len(doc.Parts))
	for i, p := range doc.Parts {
		if p.PartNumber < backend.MinPartNumber || p.PartNumber > backend.MaxPartNumber {
			return nil, s3err.ErrInvalidArgument.WithMessage("Part number must be an integer between 1 and 10000, inclusive.")
		}
		if p.ETag == "" {
			return nil, s3err.ErrInvalidPart
		}
		if i > 0 && p.PartNumber <= doc.Parts[i-1].PartNumber {
			return nil, s3err.ErrInvalidPartOrder
		}
		parts[i] = backend.CompletedPart{PartNumber: p.PartNumber, ETag: p.ETag, Checksum: p.checksum()}
	}
	return parts, nil
}

type completeMultipartUploadResult struct {
	XMLName           xml.Name `xml:"CompleteMultipartUploadResult"`
	Xmlns             string   `xml:"xmlns,attr"`
	Location          string   `xml:"Location"`
	Bucket            string   `xml:"Bucket"`
	Key               string   `xml:"Key"`
	ETag              string   `xml:"ETag"`
	ChecksumCRC32     string   `xml:"ChecksumCRC32,omitempty"`
	ChecksumCRC32C    string   `xml:"ChecksumCRC32C,omitempty"`
	ChecksumCRC64NVME string   `xml:"ChecksumCRC64NVME,omitempty"`
	ChecksumSHA1      string   `xml:"ChecksumSHA1,omitempty"`
	ChecksumSHA256    string   `xml:"ChecksumSHA256,omitempty"`
}

type listPartsResult struct {
	XMLName              xml.Name   `xml:"ListPartsResult"`
	Xmlns                string     `xml:"xmlns,attr"`
	Bucket               string     `xml:"Bucket"`
	Key                  string     `xml:"Key"`
	UploadID             string     `xml:"UploadId"`
	StorageClass         string     `xml:"StorageClass,omitempty"`
	PartNumberMarker     int32      `xml:"PartNumberMarker"`
	NextPartNumberMarker int32      `xml:"NextPartNumberMarker"`
	MaxParts             int32      `xml:"MaxParts"`
	IsTruncated          bool       `xml:"IsTruncated"`
	ChecksumAlgorithm    string     `xml:"ChecksumAlgorithm,omitempty"`
	Parts                []partItem `xml:"Part"`
}

type partItem struct {
	PartNumber        int32  `xml:"PartNumber"`
	LastModified      string `xml:"LastModified"`
	ETag              string `xml:"ETag"`
	Size              int64  `xml:"Size"`
	ChecksumCRC32     string `xml:"ChecksumCRC32,omitempty"`
	ChecksumCRC32C    string `xml:"ChecksumCRC32C,omitempty"`
	ChecksumCRC64NVME string `xml:"ChecksumCRC64NVME,omitempty"`
	ChecksumSHA1      string `xml:"ChecksumSHA1,omitempty"`
	ChecksumSHA256    string `xml:"ChecksumSHA256,omitempty"`
}

type locationConstraint struct {
	XMLName xml.Name `xml:"LocationConstraint"`
	Xmlns   string   `xml:"xmlns,attr"`
	Region  string   `xml:",chardata"`
}
