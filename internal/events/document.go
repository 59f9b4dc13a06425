package events

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// Event names as S3 writes them inside Records.
const (
	NamePut      = "ObjectCreated:Put"
	NameComplete = "ObjectCreated:CompleteMultipartUpload"
)

// Object is what the S3 front end knows about an object it stored.
type Object struct {
	// Bucket is the Mizuchi bucket name.
	Bucket string
	Region string
	// Key is the object key, not encoded.
	Key string
	// Size is the length in bytes; negative when unknown.
	Size int64
	// ETag as the store answered it (quotes are removed).
	ETag      string
	VersionID string
	// ChecksumAlgorithm and Checksum are set when the upload carried one.
	ChecksumAlgorithm string
	Checksum          string
	// EventName is NamePut or NameComplete.
	EventName string
	Subject   string
	SourceIP  string
	RequestID string
	// Traceparent is the W3C trace context of the upload, if traced.
	Traceparent string
	Time        time.Time
}

// Document is an S3 event notification.
type Document struct {
	Records []Record `json:"Records"`
}

// Record is one event of a Document, S3's fields plus eventId and
// traceparent.
type Record struct {
	EventVersion      string            `json:"eventVersion"`
	EventSource       string            `json:"eventSource"`
	AWSRegion         string            `json:"awsRegion"`
	EventTime         string            `json:"eventTime"`
	EventName         string            `json:"eventName"`
	EventID           string            `json:"eventId"`
	UserIdentity      Identity          `json:"userIdentity"`
	RequestParameters RequestParameters `json:"requestParameters"`
	ResponseElements  map[string]string `json:"responseElements"`
	S3                S3Entity          `json:"s3"`
	Traceparent       string            `json:"traceparent,omitempty"`
}

// Identity names who uploaded.
type Identity struct {
	PrincipalID string `json:"principalId"`
}

// RequestParameters holds the client address.
type RequestParameters struct {
	SourceIPAddress string `json:"sourceIPAddress"`
}

// S3Entity describes the bucket and the object.
type S3Entity struct {
	SchemaVersion   string       `json:"s3SchemaVersion"`
	ConfigurationID string       `json:"configurationId"`
	Bucket          BucketEntity `json:"bucket"`
	Object          ObjectEntity `json:"object"`
}

// BucketEntity is the Mizuchi bucket.
type BucketEntity struct {
	Name          string   `json:"name"`
	OwnerIdentity Identity `json:"ownerIdentity"`
	ARN           string   `json:"arn"`
}

// ObjectEntity is the stored object.
type ObjectEntity struct {
	// Key is URL-encoded as S3 does it: form encoding ('+' for a space),
	// '/' kept.
	Key       string    `json:"key"`
	Size      int64     `json:"size"`
	ETag      string    `json:"eTag"`
	VersionID string    `json:"versionId,omitempty"`
	Sequencer string    `json:"sequencer"`
	Checksum  *Checksum `json:"checksum,omitempty"`
}

// Checksum is the object's checksum as the client gave it (base64).
type Checksum struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"value"`
}

// EncodeKey encodes an object key as S3 event notifications do.
func EncodeKey(key string) string {
	return strings.ReplaceAll(url.QueryEscape(key), "%2F", "/")
}

// newEventID returns 32 random hex digits.
func newEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// lastSequencer keeps sequencers increasing within the process even when
// the clock does not move.
var lastSequencer atomic.Int64

// sequencer is a 16-digit upper-case hex value that grows with time, so
// that of two events on one key the later has the larger sequencer.
func sequencer(t time.Time) string {
	n := t.UnixNano()
	for {
		last := lastSequencer.Load()
		if n <= last {
			n = last + 1
		}
		if lastSequencer.CompareAndSwap(last, n) {
			return fmt.Sprintf("%016X", n)
		}
	}
}

// buildRecord makes the record of an event; principal is the subject or
// its hash.
func buildRecord(o *Object, id, principal, configID string) Record {
	region := o.Region
	if region == "" {
		region = "us-east-1"
	}
	size := o.Size
	if size < 0 {
		size = 0
	}
	r := Record{
		EventVersion:      "2.1",
		EventSource:       "mizuchi:s3",
		AWSRegion:         region,
		EventTime:         o.Time.UTC().Format("2006-01-02T15:04:05.000Z"),
		EventName:         o.EventName,
		EventID:           id,
		UserIdentity:      Identity{PrincipalID: principal},
		RequestParameters: RequestParameters{SourceIPAddress: o.SourceIP},
		ResponseElements:  map[string]string{"x-amz-request-id": o.RequestID},
		S3: S3Entity{
			SchemaVersion:   "1.0",
			ConfigurationID: configID,
			Bucket:          BucketEntity{Name: o.Bucket, ARN: "arn:aws:s3:::" + o.Bucket},
			Object: ObjectEntity{
				Key: EncodeKey(o.Key), Size: size, ETag: strings.Trim(o.ETag, `"`),
				VersionID: o.VersionID, Sequencer: sequencer(o.Time),
			},
		},
		Traceparent: o.Traceparent,
	}
	if o.Checksum != "" {
		r.S3.Object.Checksum = &Checksum{Algorithm: o.ChecksumAlgorithm, Value: o.Checksum}
	}
	return r
}

// marshal renders one record as a document.
func marshal(r Record) ([]byte, error) {
	return json.Marshal(Document{Records: []Record{r}})
}

// Sign returns the X-Mizuchi-Signature value of body.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}
