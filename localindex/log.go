package localindex

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// A mailbox's change log holds the changes made after its index file was
// written, so that a flag change does not rewrite a large index file:
//
//	header  24 bytes: magic "nfsixLOG", version (2), zero (2), the
//	        generation of the index file it belongs to (8), CRC32C of
//	        these 20 bytes (4)
//	entries, each: length of payload (4), CRC32C of the length and the
//	        payload (4), payload
//
// An entry's payload is the whole mailbox head (spool state, UIDVALIDITY,
// UIDNEXT, keywords) followed by the record changes since the previous
// entry. Each entry is one commit: after applying it, the records equal the
// spool at the entry's spool state. A torn or damaged entry ends the log:
// the entries before it still give a consistent, older state.
const (
	logHead      = 24
	logEntryHead = 8

	opUpsert = 1
	opRemove = 2
	opFlags  = 3
)

// errStaleLog: the log belongs to an older index file (a crash between
// writing a new index file and removing the old log). Not corruption.
var errStaleLog = errors.New("log of another index generation")

func appendLogHeader(b []byte, gen uint64) []byte {
	b = append(b, magicLog[:]...)
	b = binary.LittleEndian.AppendUint16(b, formatVersion)
	b = append(b, 0, 0)
	b = binary.LittleEndian.AppendUint64(b, gen)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[len(b)-20:], castagnoli))
}

// startEntry reserves the entry header; finishEntry fills it.
func startEntry(b []byte) ([]byte, int) {
	start := len(b)
	return append(b, make([]byte, logEntryHead)...), start
}

func finishEntry(b []byte, start int) []byte {
	n := len(b) - start - logEntryHead
	binary.LittleEndian.PutUint32(b[start:], uint32(n))
	crc := crc32.Checksum(b[start:start+4], castagnoli)
	crc = crc32.Update(crc, castagnoli, b[start+logEntryHead:])
	binary.LittleEndian.PutUint32(b[start+4:], crc)
	return b
}

// appendFlagsOp encodes a flags-only change.
func appendFlagsOp(b []byte, uid uint32, file string, inNew bool, flags Flags, keywords []string) []byte {
	b = append(b, opFlags)
	b = binary.AppendUvarint(b, uint64(uid))
	var bits byte
	if inNew {
		bits = recInNew
	}
	b = append(b, bits)
	b = binary.AppendUvarint(b, uint64(flags))
	b = appendStr(b, file)
	b = binary.AppendUvarint(b, uint64(len(keywords)))
	for _, k := range keywords {
		b = appendStr(b, k)
	}
	return b
}

// logOp is one decoded change.
type logOp struct {
	kind byte
	rec  Record // opUpsert: the record; opFlags: UID, File, InNew, Flags, Keywords; opRemove: UID
}

func (d *decoder) op(arena *[]string) logOp {
	var o logOp
	o.kind = d.byte1()
	switch o.kind {
	case opUpsert:
		d.record(&o.rec, arena)
	case opRemove:
		o.rec.UID = d.u32()
	case opFlags:
		o.rec.UID = d.u32()
		bits := d.byte1()
		if bits&^recInNew != 0 {
			d.fail()
		}
		o.rec.InNew = bits&recInNew != 0
		o.rec.Flags = Flags(d.u32())
		o.rec.File = d.str()
		if n := d.count(1); n > 0 {
			o.rec.Keywords = make([]string, n)
			for i := range o.rec.Keywords {
				o.rec.Keywords[i] = d.str()
			}
		}
	default:
		d.fail()
	}
	if o.rec.UID == 0 {
		d.fail()
	}
	return o
}

// parseLog checks a log against the generation of its index file and calls
// apply for every good entry in order. It returns the length of the good
// prefix; a non-nil error says the log did not end cleanly there (torn,
// damaged, or errStaleLog / a bad header with valid 0).
func parseLog(b []byte, gen uint64, apply func(h *mailboxHead, ops []logOp)) (valid int, err error) {
	if len(b) < logHead || [8]byte(b[:8]) != magicLog ||
		binary.LittleEndian.Uint16(b[8:10]) != formatVersion || b[10] != 0 || b[11] != 0 ||
		crc32.Checksum(b[:20], castagnoli) != binary.LittleEndian.Uint32(b[20:24]) {
		return 0, fmt.Errorf("%w: bad log header", ErrCorrupt)
	}
	if binary.LittleEndian.Uint64(b[12:20]) != gen {
		return 0, errStaleLog
	}
	off := logHead
	var arena []string
	for off < len(b) {
		if len(b)-off < logEntryHead {
			return off, fmt.Errorf("%w: torn log entry header at %d", ErrCorrupt, off)
		}
		n := int(binary.LittleEndian.Uint32(b[off:]))
		if n > len(b)-off-logEntryHead {
			return off, fmt.Errorf("%w: torn log entry at %d", ErrCorrupt, off)
		}
		crc := crc32.Checksum(b[off:off+4], castagnoli)
		crc = crc32.Update(crc, castagnoli, b[off+logEntryHead:off+logEntryHead+n])
		if crc != binary.LittleEndian.Uint32(b[off+4:]) {
			return off, fmt.Errorf("%w: log entry checksum at %d", ErrCorrupt, off)
		}
		d := decoder{b: b[off+logEntryHead : off+logEntryHead+n]}
		h := d.head()
		nops := d.count(2)
		var ops []logOp
		if d.err == nil && nops > 0 {
			ops = make([]logOp, 0, nops)
		}
		for i := 0; i < nops && d.err == nil; i++ {
			ops = append(ops, d.op(&arena))
		}
		if err := d.done(); err != nil {
			return off, err
		}
		apply(&h, ops)
		off += logEntryHead + n
	}
	return off, nil
}
