package sqlstore

import (
	"fmt"
	"sync"

	"github.com/klauspost/compress/s2"
)

// Delivery bodies are stored compressed with S2 when that makes them smaller: webhook
// payloads are JSON and shrink about 3x (a 7 KB GitHub push to 2 KB) for ~6 us of the
// ingesting goroutine's time, which the single SQLite writer saves several times over in
// pages it no longer writes to the WAL and checkpoints to the database; the retention
// window's deliveries take a third of the disk.
const (
	bodyRaw = ""
	bodyS2  = "s2"
)

// minCompressBody is the size below which a body is stored as received: small bodies fit
// the table's page anyway.
const minCompressBody = 512

// bodyEncoder compresses bodies into pooled buffers with room for S2's worst case (a little
// more than the body). The stored form stays in its buffer until the group commit that wrote
// it is over, and the buffer then goes back to the pool: at thousands of deliveries a second
// the compressed copies were a sixth of all the bytes the server allocated.
type bodyEncoder struct {
	scratch sync.Pool // of *[]byte
}

// encode returns the stored form of a body, its encoding, and the pooled buffer holding it
// (nil when the body is stored as received), which release must get back once the stored
// form has been written.
func (e *bodyEncoder) encode(body []byte) ([]byte, string, *[]byte) {
	if len(body) < minCompressBody {
		return body, bodyRaw, nil
	}
	buf, _ := e.scratch.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	if n := s2.MaxEncodedLen(len(body)); cap(*buf) < n {
		*buf = make([]byte, n)
	}
	enc := s2.Encode((*buf)[:cap(*buf)], body)
	if len(enc) >= len(body) {
		e.scratch.Put(buf)
		return body, bodyRaw, nil
	}
	return enc, bodyS2, buf
}

// release returns a buffer encode handed out; nil is ignored.
func (e *bodyEncoder) release(buf *[]byte) {
	if buf != nil {
		e.scratch.Put(buf)
	}
}

// decodeBody returns the body as received from its stored form.
func decodeBody(stored []byte, encoding string) ([]byte, error) {
	switch encoding {
	case bodyRaw:
		return stored, nil
	case bodyS2:
		b, err := s2.Decode(nil, stored)
		if err != nil {
			return nil, fmt.Errorf("decompress body: %w", err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("unknown body encoding %q", encoding)
}
