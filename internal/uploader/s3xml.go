package uploader

import (
	"bytes"
	"encoding/xml"
	"io"
	"net/http"
	"strings"
)

const s3Namespace = "http://s3.amazonaws.com/doc/2006-03-01/"

type initiateResult struct {
	XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
	Bucket   string   `xml:"Bucket"`
	Key      string   `xml:"Key"`
	UploadID string   `xml:"UploadId"`
}

type completedPart struct {
	PartNumber int    `xml:"PartNumber"`
	ETag       string `xml:"ETag"`
}

type completeRequest struct {
	XMLName xml.Name        `xml:"CompleteMultipartUpload"`
	Xmlns   string          `xml:"xmlns,attr"`
	Parts   []completedPart `xml:"Part"`
}

type completeResult struct {
	XMLName xml.Name `xml:"CompleteMultipartUploadResult"`
	ETag    string   `xml:"ETag"`
}

type errorBody struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	RequestID string   `xml:"RequestId"`
}

// maxErrorBody bounds what is read of an error answer.
const maxErrorBody = 64 << 10

// responseError builds the *Error for a non-2xx answer, reading at most
// maxErrorBody bytes of its body.
func responseError(op string, resp *http.Response) *Error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &Error{Op: op, StatusCode: resp.StatusCode, RequestID: resp.Header.Get("X-Amz-Request-Id")}
	var eb errorBody
	if xml.Unmarshal(body, &eb) == nil && eb.Code != "" {
		e.Code, e.Message = eb.Code, eb.Message
		if eb.RequestID != "" {
			e.RequestID = eb.RequestID
		}
		return e
	}
	e.Code = strings.ReplaceAll(http.StatusText(resp.StatusCode), " ", "")
	if e.Code == "" {
		e.Code = "HTTPError"
	}
	return e
}

// embeddedError finds an <Error> document sent with a 200 status, which S3
// does for a CompleteMultipartUpload that failed after the headers went out.
func embeddedError(op string, status int, body []byte) *Error {
	dec := xml.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Local != "Error" {
				return nil
			}
			var eb errorBody
			if dec.DecodeElement(&eb, &se) != nil {
				return &Error{Op: op, StatusCode: status, Code: "MalformedResponse"}
			}
			return &Error{Op: op, StatusCode: status, Code: eb.Code, Message: eb.Message, RequestID: eb.RequestID}
		}
	}
}
