package localindex

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"unsafe"
)

// Every index file is framed the same way:
//
//	magic   8 bytes  ("nfsixSUM", "nfsixIDX", "nfsixUSR")
//	version 2 bytes  little endian
//	zero    2 bytes
//	length  8 bytes  little endian, length of the payload
//	payload length bytes
//	crc     4 bytes  CRC32C (Castagnoli) of everything before it
//
// A file whose size is not exactly 24+length, whose magic or version is not
// ours or whose checksum does not match is corrupt.
const (
	frameHead    = 20
	frameTrailer = 4
	frameExtra   = frameHead + frameTrailer

	// formatVersion is the version of every file format in this package.
	// Bump it on any change to an encoding: old files are then discarded
	// and rebuilt.
	//
	// 2: records keep Bcc, which header fields are present, and the
	// repeated ones.
	// 3: the session keeps ENVELOPE as the encoded envelope sent to
	// clients (node/session codec version 3), not decoded values.
	// 4: summaries keep the \Deleted count and size (STATUS DELETED and
	// DELETED-STORAGE).
	formatVersion = 4
)

var (
	magicSummary = [8]byte{'n', 'f', 's', 'i', 'x', 'S', 'U', 'M'}
	magicIndex   = [8]byte{'n', 'f', 's', 'i', 'x', 'I', 'D', 'X'}
	magicLog     = [8]byte{'n', 'f', 's', 'i', 'x', 'L', 'O', 'G'}
	magicUser    = [8]byte{'n', 'f', 's', 'i', 'x', 'U', 'S', 'R'}
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameStart begins a framed file in b (reusing its capacity): header with a
// length to be filled by frameFinish.
func frameStart(b []byte, magic [8]byte) []byte {
	b = append(b[:0], magic[:]...)
	b = binary.LittleEndian.AppendUint16(b, formatVersion)
	b = append(b, 0, 0)
	return binary.LittleEndian.AppendUint64(b, 0)
}

// frameFinish fills in the length and appends the checksum.
func frameFinish(b []byte) []byte {
	binary.LittleEndian.PutUint64(b[12:20], uint64(len(b)-frameHead))
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// unframe checks a whole file and returns its payload (a sub-slice of b).
func unframe(b []byte, magic [8]byte) ([]byte, error) {
	if len(b) < frameExtra {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrCorrupt, len(b))
	}
	if [8]byte(b[:8]) != magic {
		return nil, fmt.Errorf("%w: bad magic %q", ErrCorrupt, b[:8])
	}
	if v := binary.LittleEndian.Uint16(b[8:10]); v != formatVersion || b[10] != 0 || b[11] != 0 {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrCorrupt, v, formatVersion)
	}
	n := binary.LittleEndian.Uint64(b[12:20])
	if n != uint64(len(b)-frameExtra) {
		return nil, fmt.Errorf("%w: length %d in a file of %d bytes", ErrCorrupt, n, len(b))
	}
	end := len(b) - frameTrailer
	if crc32.Checksum(b[:end], castagnoli) != binary.LittleEndian.Uint32(b[end:]) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	return b[frameHead:end], nil
}

// errShort is the decoder's error for a payload that ends too early or
// holds an impossible value.
var errShort = errors.New("truncated or malformed payload")

// decoder reads the compact encoding: unsigned and signed varints, and
// strings and byte strings as a length varint followed by the bytes.
// Strings are not copied: they point into the buffer, which must never be
// changed afterwards (the buffer is read from disk, decoded once and then
// only read).
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %w at offset %d", ErrCorrupt, errShort, d.off)
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) u32() uint32 {
	v := d.uvarint()
	if v > math.MaxUint32 {
		d.fail()
		return 0
	}
	return uint32(v)
}

func (d *decoder) byte1() byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.fail()
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

func (d *decoder) fixed64() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.b)-d.off < 8 {
		d.fail()
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b[d.off:])
	d.off += 8
	return v
}

// count reads a length or element count and checks it against the bytes
// left, each element taking at least min bytes, so that a corrupt count
// never makes the decoder allocate more than the file holds.
func (d *decoder) count(min int) int {
	v := d.uvarint()
	if d.err != nil {
		return 0
	}
	if v > uint64(len(d.b)-d.off)/uint64(min) {
		d.fail()
		return 0
	}
	return int(v)
}

func (d *decoder) bytes() []byte {
	n := d.count(1)
	if d.err != nil || n == 0 {
		return nil
	}
	s := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return s
}

func (d *decoder) str() string {
	n := d.count(1)
	if d.err != nil || n == 0 {
		return ""
	}
	s := unsafe.String(&d.b[d.off], n)
	d.off += n
	return s
}

// done reports an error unless the whole payload was consumed.
func (d *decoder) done() error {
	if d.err == nil && d.off != len(d.b) {
		d.err = fmt.Errorf("%w: %d bytes left over", ErrCorrupt, len(d.b)-d.off)
	}
	return d.err
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b []byte, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}
