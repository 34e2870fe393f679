package localindex

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// Bits of a record's flag byte.
const (
	recInNew  = 1 << 0
	recParsed = 1 << 1
	recDate   = 1 << 2
	recKnown  = recInNew | recParsed | recDate
)

// appendRecord encodes one record.
func appendRecord(b []byte, r *Record) []byte {
	b = binary.AppendUvarint(b, uint64(r.UID))
	var bits byte
	if r.InNew {
		bits |= recInNew
	}
	if r.Parsed {
		bits |= recParsed
		if !r.InternalDate.IsZero() {
			bits |= recDate
		}
	}
	b = append(b, bits)
	b = binary.AppendUvarint(b, uint64(r.Flags))
	b = appendStr(b, r.File)
	b = binary.AppendUvarint(b, uint64(len(r.Keywords)))
	for _, k := range r.Keywords {
		b = appendStr(b, k)
	}
	if !r.Parsed {
		return b
	}
	b = binary.AppendVarint(b, r.Size)
	b = binary.AppendVarint(b, r.PhysicalSize)
	if bits&recDate != 0 {
		b = binary.AppendVarint(b, r.InternalDate.UnixNano())
	}
	b = appendBytes(b, r.Envelope)
	b = appendBytes(b, r.BodyStructure)
	h := &r.Header
	for _, s := range [...]string{h.Date, h.Subject, h.From, h.To, h.Cc, h.MessageID, h.InReplyTo, h.References, h.Bcc} {
		b = appendStr(b, s)
	}
	b = binary.AppendUvarint(b, uint64(h.Present))
	b = binary.AppendUvarint(b, uint64(len(h.More)))
	for _, f := range h.More {
		b = appendStr(b, f.Name)
		b = appendStr(b, f.Value)
	}
	return b
}

// recordSize estimates the encoded size of a record (for buffer sizing).
func recordSize(r *Record) int {
	n := 24 + len(r.File) + len(r.Envelope) + len(r.BodyStructure)
	for _, k := range r.Keywords {
		n += 2 + len(k)
	}
	h := &r.Header
	n += 24 + len(h.Date) + len(h.Subject) + len(h.From) + len(h.To) + len(h.Cc) +
		len(h.MessageID) + len(h.InReplyTo) + len(h.References) + len(h.Bcc)
	for _, f := range h.More {
		n += 4 + len(f.Name) + len(f.Value)
	}
	return n
}

// record decodes one record into r. Keyword slices are cut from *kwArena
// to save an allocation per record.
func (d *decoder) record(r *Record, kwArena *[]string) {
	r.UID = d.u32()
	bits := d.byte1()
	if bits&^recKnown != 0 {
		d.fail()
		return
	}
	r.InNew = bits&recInNew != 0
	r.Parsed = bits&recParsed != 0
	r.Flags = Flags(d.u32())
	r.File = d.str()
	if n := d.count(1); n > 0 {
		a := *kwArena
		if cap(a)-len(a) < n {
			a = make([]string, 0, max(n, 64))
		}
		start := len(a)
		for range n {
			a = append(a, d.str())
		}
		r.Keywords = a[start:len(a):len(a)]
		*kwArena = a
	}
	if !r.Parsed {
		if bits&recDate != 0 {
			d.fail()
		}
		return
	}
	r.Size = d.varint()
	r.PhysicalSize = d.varint()
	if bits&recDate != 0 {
		r.InternalDate = time.Unix(0, d.varint())
	}
	r.Envelope = d.bytes()
	r.BodyStructure = d.bytes()
	h := &r.Header
	h.Date, h.Subject, h.From, h.To = d.str(), d.str(), d.str(), d.str()
	h.Cc, h.MessageID, h.InReplyTo, h.References = d.str(), d.str(), d.str(), d.str()
	h.Bcc = d.str()
	if p := d.uvarint(); p > math.MaxUint16 {
		d.fail()
	} else {
		h.Present = HeaderSet(p)
	}
	if n := d.count(2); n > 0 {
		h.More = make([]HeaderField, n)
		for i := range h.More {
			h.More[i] = HeaderField{Name: d.str(), Value: d.str()}
		}
	}
	if r.UID == 0 || r.Size < 0 || r.PhysicalSize < 0 {
		d.fail()
	}
}

// mailboxHead is the part of an index file and of every log entry that
// describes the whole mailbox.
type mailboxHead struct {
	spool                SpoolState
	uidValidity, uidNext uint32
	keywords             []string
}

func appendHead(b []byte, h *mailboxHead) []byte {
	b = appendSpool(b, h.spool)
	b = binary.AppendUvarint(b, uint64(h.uidValidity))
	b = binary.AppendUvarint(b, uint64(h.uidNext))
	b = binary.AppendUvarint(b, uint64(len(h.keywords)))
	for _, k := range h.keywords {
		b = appendStr(b, k)
	}
	return b
}

func (d *decoder) head() mailboxHead {
	h := mailboxHead{spool: d.spool(), uidValidity: d.u32(), uidNext: d.u32()}
	if n := d.count(1); n > 0 {
		h.keywords = make([]string, n)
		for i := range h.keywords {
			h.keywords[i] = d.str()
		}
	}
	return h
}

// encodeIndex gives the whole index file of a mailbox.
func encodeIndex(buf []byte, gen uint64, user, mailbox string, h *mailboxHead, recs []Record) []byte {
	size := frameExtra + 64 + len(user) + len(mailbox)
	for i := range recs {
		size += recordSize(&recs[i])
	}
	if cap(buf) < size {
		buf = make([]byte, 0, size)
	}
	b := frameStart(buf, magicIndex)
	b = binary.LittleEndian.AppendUint64(b, gen)
	b = appendStr(b, user)
	b = appendStr(b, mailbox)
	b = appendHead(b, h)
	b = binary.AppendUvarint(b, uint64(len(recs)))
	for i := range recs {
		b = appendRecord(b, &recs[i])
	}
	return frameFinish(b)
}

// decodedIndex is an index file decoded.
type decodedIndex struct {
	gen           uint64
	user, mailbox string
	head          mailboxHead
	recs          []Record
}

// decodeIndex checks and decodes an index file. Strings and byte slices in
// the result point into b.
func decodeIndex(b []byte) (*decodedIndex, error) {
	p, err := unframe(b, magicIndex)
	if err != nil {
		return nil, err
	}
	d := decoder{b: p}
	di := &decodedIndex{gen: d.fixed64()}
	di.user = d.str()
	di.mailbox = d.str()
	di.head = d.head()
	n := d.count(4) // a record takes at least 4 bytes
	if d.err != nil {
		return nil, d.err
	}
	di.recs = make([]Record, n)
	var arena []string
	for i := range di.recs {
		d.record(&di.recs[i], &arena)
		if d.err != nil {
			return nil, d.err
		}
		if i > 0 && di.recs[i].UID <= di.recs[i-1].UID {
			return nil, fmt.Errorf("%w: UIDs out of order at record %d", ErrCorrupt, i)
		}
	}
	if err := d.done(); err != nil {
		return nil, err
	}
	if di.gen == 0 {
		return nil, fmt.Errorf("%w: zero generation", ErrCorrupt)
	}
	return di, nil
}
