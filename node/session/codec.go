package session

import (
	"encoding/binary"
	"errors"
	"maps"
	"slices"

	"github.com/emersion/go-imap/v2"

	"github.com/nfsimap/nfsimap/node/front"
)

// The local index keeps a message's ENVELOPE and BODYSTRUCTURE as opaque
// bytes; this is their encoding: varints and length-prefixed strings, a
// version byte first. The bytes come from the node's own disk, which the
// index checksums, but the decoder still treats them as outside input: it
// never panics, bounds every length and nesting level, and reports
// errCodec, upon which the message is parsed from the spool again.

// Version 3 keeps envelopes as the encoded ENVELOPE (envelope.go)
// rather than decoded values.
const codecVersion = 3

// maxCodecDepth bounds the nesting of body structures (multiparts and
// message/rfc822 parts) in both directions.
const maxCodecDepth = 64

var errCodec = errors.New("session: bad cached envelope or body structure")

type encoder struct{ b []byte }

func (e *encoder) uv(v uint64)  { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) iv(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) str(s string) { e.uv(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) strs(ss []string) {
	e.uv(uint64(len(ss)))
	for _, s := range ss {
		e.str(s)
	}
}

func (e *encoder) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

// params writes a parameter map in key order (so equal maps give equal
// bytes); nil and empty are kept apart.
func (e *encoder) params(m map[string]string) {
	if m == nil {
		e.uv(0)
		return
	}
	e.uv(uint64(len(m)) + 1)
	for _, k := range slices.Sorted(maps.Keys(m)) {
		e.str(k)
		e.str(m[k])
	}
}

func (e *encoder) envelope(env *imap.Envelope) {
	if env == nil {
		e.bool(false)
		return
	}
	e.bool(true)
	e.b = binary.AppendUvarint(e.b, 0) // room for more forms
	wire := wireOf(env)
	e.uv(uint64(len(wire)))
	e.b = append(e.b, wire...)
}

func (e *encoder) disposition(d *imap.BodyStructureDisposition) {
	if d == nil {
		e.bool(false)
		return
	}
	e.bool(true)
	e.str(d.Value)
	e.params(d.Params)
}

func (e *encoder) bodyStructure(bs imap.BodyStructure, depth int) {
	if depth > maxCodecDepth {
		bs = emptyTextPart() // cut off absurd nesting rather than fail
	}
	switch bs := bs.(type) {
	case *imap.BodyStructureMultiPart:
		e.b = append(e.b, 'm')
		e.str(bs.Subtype)
		e.uv(uint64(len(bs.Children)))
		for _, c := range bs.Children {
			e.bodyStructure(c, depth+1)
		}
		if bs.Extended == nil {
			e.bool(false)
			return
		}
		e.bool(true)
		e.params(bs.Extended.Params)
		e.disposition(bs.Extended.Disposition)
		e.strs(bs.Extended.Language)
		e.str(bs.Extended.Location)
	case *imap.BodyStructureSinglePart:
		e.b = append(e.b, 's')
		e.str(bs.Type)
		e.str(bs.Subtype)
		e.params(bs.Params)
		e.str(bs.ID)
		e.str(bs.Description)
		e.str(bs.Encoding)
		e.uv(uint64(bs.Size))
		if m := bs.MessageRFC822; m != nil {
			e.bool(true)
			e.envelope(m.Envelope)
			e.bodyStructure(m.BodyStructure, depth+1)
			e.iv(m.NumLines)
		} else {
			e.bool(false)
		}
		if bs.Text != nil {
			e.bool(true)
			e.iv(bs.Text.NumLines)
		} else {
			e.bool(false)
		}
		if bs.Extended == nil {
			e.bool(false)
			return
		}
		e.bool(true)
		e.disposition(bs.Extended.Disposition)
		e.strs(bs.Extended.Language)
		e.str(bs.Extended.Location)
	default:
		e.b = append(e.b, 'n')
	}
}

// encodeEnvelope and encodeBodyStructure give the bytes kept in the index.
func encodeEnvelope(env *imap.Envelope) []byte {
	e := encoder{b: []byte{codecVersion}}
	e.envelope(env)
	return e.b
}

func encodeBodyStructure(bs imap.BodyStructure) []byte {
	e := encoder{b: []byte{codecVersion}}
	e.bodyStructure(bs, 0)
	return e.b
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() { d.err = errCodec; d.b = nil }

func (d *decoder) uv() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) iv() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a length and checks that at least min bytes per item are
// left, so a damaged length cannot make a huge allocation.
func (d *decoder) count(min int) int {
	n := d.uv()
	if d.err != nil || n > uint64(len(d.b)/max(min, 1)) {
		if n != 0 {
			d.fail()
		}
		return 0
	}
	return int(n)
}

func (d *decoder) str() string {
	n := d.uv()
	if d.err != nil || n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) strs() []string {
	n := d.count(1)
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.str()
	}
	return out
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) == 0 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bool() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail()
	return false
}

func (d *decoder) params() map[string]string {
	n := d.uv()
	if n == 0 || d.err != nil {
		return nil
	}
	n--
	if n > uint64(len(d.b)/2) {
		d.fail()
		return nil
	}
	m := make(map[string]string, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		k := d.str()
		m[k] = d.str()
	}
	return m
}

func (d *decoder) envelope() *imap.Envelope {
	if !d.bool() {
		return nil
	}
	if d.uv() != 0 {
		d.fail()
		return nil
	}
	n := d.uv()
	if d.err != nil || n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	wire := d.b[:n]
	d.b = d.b[n:]
	// The bytes go to clients as they are: they must be one ENVELOPE.
	if !validEnvelope(wire) {
		d.fail()
		return nil
	}
	return front.EnvelopePlaceholder(wire) // copies wire
}

func (d *decoder) disposition() *imap.BodyStructureDisposition {
	if !d.bool() {
		return nil
	}
	return &imap.BodyStructureDisposition{Value: d.str(), Params: d.params()}
}

func (d *decoder) bodyStructure(depth int) imap.BodyStructure {
	if depth > maxCodecDepth+1 {
		d.fail()
		return nil
	}
	switch d.byte() {
	case 'm':
		mp := &imap.BodyStructureMultiPart{Subtype: d.str()}
		n := d.count(1)
		for i := 0; i < n && d.err == nil; i++ {
			mp.Children = append(mp.Children, d.bodyStructure(depth+1))
		}
		if d.bool() {
			mp.Extended = &imap.BodyStructureMultiPartExt{Params: d.params(), Disposition: d.disposition(), Language: d.strs(), Location: d.str()}
		}
		return mp
	case 's':
		sp := &imap.BodyStructureSinglePart{Type: d.str(), Subtype: d.str(), Params: d.params(), ID: d.str(), Description: d.str(), Encoding: d.str()}
		size := d.uv()
		if size > 1<<32-1 {
			d.fail()
		}
		sp.Size = uint32(size)
		if d.bool() {
			m := &imap.BodyStructureMessageRFC822{Envelope: d.envelope()}
			m.BodyStructure = d.bodyStructure(depth + 1)
			m.NumLines = d.iv()
			sp.MessageRFC822 = m
		}
		if d.bool() {
			sp.Text = &imap.BodyStructureText{NumLines: d.iv()}
		}
		if d.bool() {
			sp.Extended = &imap.BodyStructureSinglePartExt{Disposition: d.disposition(), Language: d.strs(), Location: d.str()}
		}
		return sp
	case 'n':
		return nil
	}
	d.fail()
	return nil
}

func (d *decoder) start(b []byte) {
	d.b = b
	if d.byte() != codecVersion {
		d.fail()
	}
}

func (d *decoder) finish() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	return d.err
}

// decodeEnvelope and decodeBodyStructure read what the encoders wrote;
// anything else gives errCodec.
func decodeEnvelope(b []byte) (*imap.Envelope, error) {
	var d decoder
	d.start(b)
	env := d.envelope()
	if err := d.finish(); err != nil {
		return nil, err
	}
	return env, nil
}

func decodeBodyStructure(b []byte) (imap.BodyStructure, error) {
	var d decoder
	d.start(b)
	bs := d.bodyStructure(0)
	if err := d.finish(); err != nil {
		return nil, err
	}
	if bs == nil {
		return nil, errCodec
	}
	// Whatever the bytes say, the result must be safe to write.
	fixBodyStructure(bs, 0)
	return bs, nil
}
