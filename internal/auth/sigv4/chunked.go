package sigv4

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"strconv"
	"strings"

	"github.com/mizuchi-uploadr/mizuchi/internal/checksum"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

const (
	// maxLine bounds a chunk header or trailer line.
	maxLine = 4 << 10
	// maxTrailerLines bounds the trailer section.
	maxTrailerLines = 16
	// maxBufferedChunk: signed chunks up to this size are read and
	// verified whole before any of their bytes are handed out; larger
	// chunks stream and only their last bytes wait for the signature.
	maxBufferedChunk = 1 << 20
	// maxTrailingCRLF bounds the line ends tolerated after the trailer.
	maxTrailingCRLF = 8

	chunkSigPrefix   = "chunk-signature="
	trailerSigHeader = "x-amz-trailer-signature"
)

type chunkedConfig struct {
	signed        bool // chunk signatures present (STREAMING-AWS4-HMAC-SHA256-*)
	unverified    bool // signatures parsed but not checked (no secret: DecodeFraming)
	trailer       bool // a trailer section follows the final chunk
	decodedLength int64
	checksumAlg   string // from x-amz-trailer, "" when none
	key           []byte
	amzDate       string
	scope         string
	seed          string
}

// ChunkedReader decodes an aws-chunked body, verifying chunk signatures,
// the trailer signature and the trailing checksum as it goes. It returns
// an *s3err.Error instead of data whose verification failed.
type ChunkedReader struct {
	cfg     chunkedConfig
	src     io.ReadCloser
	br      *bufio.Reader
	prevSig string
	decoded int64 // payload bytes consumed from the wire

	chunkSig  string
	chunkLeft int64 // streamed chunk: bytes still to read
	chunkHash hash.Hash
	buf       []byte // verified data of a buffered chunk
	bufPos    int

	sum       hash.Hash // trailing checksum over the decoded payload
	trailerOK bool
	trailerV  string

	done bool
	err  error
}

func newChunkedReader(src io.ReadCloser, cfg chunkedConfig) *ChunkedReader {
	r := &ChunkedReader{cfg: cfg, src: src, br: bufio.NewReaderSize(src, maxLine), prevSig: cfg.seed}
	if cfg.signed {
		r.chunkHash = sha256.New()
	}
	if cfg.checksumAlg != "" {
		r.sum = checksum.New(cfg.checksumAlg)
	}
	return r
}

// Trailer returns the trailing checksum once the body has been read to
// EOF and the checksum verified.
func (r *ChunkedReader) Trailer() (alg, value string, ok bool) {
	if !r.trailerOK {
		return "", "", false
	}
	return r.cfg.checksumAlg, r.trailerV, true
}

// TrailerChecksum returns the verified trailing checksum of an
// aws-chunked body replaced by Authenticate, once it has been read to EOF.
func TrailerChecksum(body io.Reader) (alg, value string, ok bool) {
	if c, isChunked := body.(*ChunkedReader); isChunked {
		return c.Trailer()
	}
	return "", "", false
}

// Close closes the underlying body.
func (r *ChunkedReader) Close() error { return r.src.Close() }

func (r *ChunkedReader) fail(err error) (int, error) {
	r.err = err
	return 0, err
}

func malformedChunk(msg string) *s3err.Error {
	return s3err.ErrInvalidRequest.WithMessage("Malformed aws-chunked body: %s", msg)
}

func (r *ChunkedReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if r.bufPos < len(r.buf) {
			n := copy(p, r.buf[r.bufPos:])
			r.bufPos += n
			return n, nil
		}
		if r.done {
			r.err = io.EOF
			return 0, io.EOF
		}
		if r.chunkLeft > 0 {
			return r.readStreamed(p)
		}
		if err := r.nextChunk(); err != nil {
			return r.fail(err)
		}
	}
}

// readLine reads one line of at most maxLine bytes without its line end.
func (r *ChunkedReader) readLine() (string, error) {
	line, err := r.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return "", malformedChunk("line too long")
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return "", s3err.ErrIncompleteBody
		}
		return "", err
	}
	line = line[:len(line)-1]
	line = bytes.TrimSuffix(line, []byte{'\r'})
	return string(line), nil
}

// nextChunk reads a chunk header and either buffers and verifies the
// chunk, starts streaming it, or finishes the body on the final chunk.
func (r *ChunkedReader) nextChunk() error {
	size, sig, err := r.readChunkHeader()
	if err != nil {
		return err
	}
	if size == 0 {
		if r.decoded != r.cfg.decodedLength {
			return s3err.ErrIncompleteBody
		}
		return r.finish(sig)
	}
	if size > r.cfg.decodedLength-r.decoded {
		return malformedChunk("chunks exceed x-amz-decoded-content-length")
	}
	r.chunkSig = sig
	if !r.cfg.signed || size > maxBufferedChunk {
		r.chunkLeft = size
		if r.chunkHash != nil {
			r.chunkHash.Reset()
		}
		return nil
	}
	if int64(cap(r.buf)) < size {
		r.buf = make([]byte, size)
	}
	r.buf = r.buf[:size]
	r.bufPos = 0
	if _, err := io.ReadFull(r.br, r.buf); err != nil {
		r.buf = r.buf[:0]
		return readErr(err)
	}
	r.chunkHash.Reset()
	r.chunkHash.Write(r.buf)
	if err := r.endChunk(); err != nil {
		r.buf = r.buf[:0]
		return err
	}
	r.decoded += size
	if r.sum != nil {
		r.sum.Write(r.buf)
	}
	if r.decoded == r.cfg.decodedLength {
		if err := r.readFinal(); err != nil {
			r.buf = r.buf[:0]
			return err
		}
	}
	return nil
}

func readErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return s3err.ErrIncompleteBody
	}
	return err
}

// endChunk consumes the CRLF after chunk data and checks the chunk
// signature against the data hashed into chunkHash.
func (r *ChunkedReader) endChunk() error {
	if err := r.expectCRLF(); err != nil {
		return err
	}
	if !r.cfg.signed {
		return nil
	}
	return r.checkChunkSig(hex.EncodeToString(r.chunkHash.Sum(nil)))
}

func (r *ChunkedReader) checkChunkSig(dataHash string) error {
	if r.cfg.unverified {
		return nil
	}
	sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + r.cfg.amzDate + "\n" + r.cfg.scope + "\n" + r.prevSig + "\n" + emptySHA256Hex + "\n" + dataHash
	want := signHex(r.cfg.key, sts)
	if !equalHex(want, r.chunkSig) {
		return s3err.ErrSignatureDoesNotMatch
	}
	r.prevSig = want
	return nil
}

func (r *ChunkedReader) expectCRLF() error {
	var crlf [2]byte
	if _, err := io.ReadFull(r.br, crlf[:]); err != nil {
		return readErr(err)
	}
	if crlf != [2]byte{'\r', '\n'} {
		return malformedChunk("chunk data is not followed by CRLF")
	}
	return nil
}

// readChunkHeader parses "hex-size[;chunk-signature=sig]".
func (r *ChunkedReader) readChunkHeader() (int64, string, error) {
	line, err := r.readLine()
	if err != nil {
		return 0, "", err
	}
	sizeStr, ext, hasExt := strings.Cut(line, ";")
	if sizeStr == "" || len(sizeStr) > 16 {
		return 0, "", malformedChunk("invalid chunk size")
	}
	size, perr := strconv.ParseUint(sizeStr, 16, 63)
	if perr != nil {
		return 0, "", malformedChunk("invalid chunk size")
	}
	if !r.cfg.signed {
		return int64(size), "", nil
	}
	sig, ok := strings.CutPrefix(ext, chunkSigPrefix)
	if !hasExt || !ok || len(sig) != 64 || !isLowerHex(sig) {
		return 0, "", malformedChunk("missing or invalid chunk-signature")
	}
	return int64(size), sig, nil
}

// readStreamed hands out data of a large (or unsigned) chunk as it
// arrives, except for the read that ends the chunk: that one is returned
// only after the chunk signature (and, at the end of the payload, the
// trailer) has been verified.
func (r *ChunkedReader) readStreamed(p []byte) (int, error) {
	if int64(len(p)) > r.chunkLeft {
		p = p[:r.chunkLeft]
	}
	n, err := r.br.Read(p)
	if n == 0 && err != nil {
		return r.fail(readErr(err))
	}
	r.chunkLeft -= int64(n)
	r.decoded += int64(n)
	if r.chunkHash != nil {
		r.chunkHash.Write(p[:n])
	}
	if r.sum != nil {
		r.sum.Write(p[:n])
	}
	if r.chunkLeft > 0 {
		return n, nil
	}
	if err := r.endChunk(); err != nil {
		return r.fail(err)
	}
	if r.decoded == r.cfg.decodedLength {
		if err := r.readFinal(); err != nil {
			return r.fail(err)
		}
	}
	return n, nil
}

// readFinal reads the final zero-length chunk once the whole payload
// has been received, and the trailer after it.
func (r *ChunkedReader) readFinal() error {
	size, sig, err := r.readChunkHeader()
	if err != nil {
		return err
	}
	if size != 0 {
		return malformedChunk("chunks exceed x-amz-decoded-content-length")
	}
	return r.finish(sig)
}

// finish verifies the final chunk signature and the trailer, then checks
// that nothing but line ends follows.
func (r *ChunkedReader) finish(sig string) error {
	if r.cfg.signed {
		r.chunkSig = sig
		if err := r.checkChunkSig(emptySHA256Hex); err != nil {
			return err
		}
	}
	if r.cfg.trailer {
		if err := r.readTrailer(); err != nil {
			return err
		}
	}
	for i := 0; ; i++ {
		c, err := r.br.ReadByte()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if (c != '\r' && c != '\n') || i >= maxTrailingCRLF {
			return malformedChunk("data after the final chunk")
		}
	}
	r.done = true
	return nil
}

// readTrailer reads "name:value" lines up to an empty line. Signed
// trailers end with x-amz-trailer-signature; empty lines before it are
// tolerated, as some clients end each trailer with "\n\r\n".
func (r *ChunkedReader) readTrailer() error {
	var canon strings.Builder
	var gotSig string
	var value string
	seen := false
	for i := 0; ; i++ {
		if i >= maxTrailerLines {
			return malformedChunk("too many trailer lines")
		}
		line, err := r.readLine()
		if err != nil {
			if errors.Is(err, s3err.ErrIncompleteBody) && !r.cfg.signed && i > 0 {
				break // trailer without its final empty line
			}
			return err
		}
		if line == "" {
			if r.cfg.signed && (seen || r.cfg.checksumAlg != "") {
				continue // a signed trailer ends with its signature line
			}
			break
		}
		name, v, ok := strings.Cut(line, ":")
		if !ok {
			return malformedChunk("invalid trailer line")
		}
		name = strings.ToLower(strings.TrimSpace(name))
		v = strings.TrimSpace(v)
		if name == trailerSigHeader {
			if gotSig != "" || len(v) != 64 || !isLowerHex(v) {
				return malformedChunk("invalid trailer signature")
			}
			gotSig = v
			if r.cfg.signed {
				break
			}
			continue
		}
		if gotSig != "" {
			return malformedChunk("trailer header after the trailer signature")
		}
		seen = true
		canon.WriteString(name)
		canon.WriteByte(':')
		canon.WriteString(v)
		canon.WriteByte('\n')
		if r.cfg.checksumAlg != "" && name == checksum.Header(r.cfg.checksumAlg) {
			if value != "" {
				return malformedChunk("repeated trailing checksum")
			}
			value = v
		}
	}
	if r.cfg.signed && !r.cfg.unverified && (seen || gotSig != "") {
		if gotSig == "" {
			return s3err.ErrSignatureDoesNotMatch.WithMessage("The trailer signature is missing.")
		}
		sts := "AWS4-HMAC-SHA256-TRAILER\n" + r.cfg.amzDate + "\n" + r.cfg.scope + "\n" + r.prevSig + "\n" + sha256Hex(canon.String())
		if !equalHex(signHex(r.cfg.key, sts), gotSig) {
			return s3err.ErrSignatureDoesNotMatch
		}
	}
	if r.cfg.checksumAlg == "" {
		return nil
	}
	if value == "" {
		return s3err.ErrInvalidRequest.WithMessage("The trailing checksum %s declared in x-amz-trailer was not sent.", checksum.Header(r.cfg.checksumAlg))
	}
	if !checksum.ValidValue(r.cfg.checksumAlg, value) {
		return s3err.ErrInvalidDigest.WithMessage("Value for %s trailing header is invalid.", checksum.Header(r.cfg.checksumAlg))
	}
	if !checksum.Equal(r.sum.Sum(nil), value) {
		return s3err.ErrBadDigest.WithMessage("The %s you specified did not match the calculated checksum.", r.cfg.checksumAlg)
	}
	r.trailerOK = true
	r.trailerV = value
	return nil
}
