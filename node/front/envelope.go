package front

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"

	"github.com/emersion/go-imap/v2"
)

// Envelopes are sent as the session encodes them, not as go-imap does.
//
// go-imap writes an ENVELOPE only from an imap.Envelope of decoded values
// (a parsed date, a subject it re-encodes, bracketed message ids), so the
// raw header strings RFC 3501 asks for cannot pass through it. The
// session therefore hands go-imap a placeholder envelope that carries
// the encoded ENVELOPE (base64, in the display names of its From list)
// behind a marker in its Subject, and the command layer swaps the bytes
// go-imap writes for the placeholder,
//
//	(NIL "MARKER" (("CHUNK" NIL NIL NIL) ("CHUNK" NIL NIL NIL)) NIL NIL NIL NIL NIL NIL NIL)
//
// for the encoded envelope, outside literals only. The marker is 128
// random bits made when the process starts; it never leaves the process
// (a placeholder is always swapped, and a malformed one is dropped, not
// sent), so no client or message can produce one. Nothing is kept
// between writes but the start of a placeholder cut by a write boundary.

// envelopeMarker is the placeholder's subject: set once when the package
// is loaded and never changed.
var envelopeMarker = "NFSIMAPENVELOPE" + rand.Text()

// envelopeChunk is how many encoded bytes one display name carries:
// go-imap writes a string longer than 4096 bytes as a literal, which the
// swap would not recognise.
const envelopeChunk = 3000 // 4000 base64 characters

// placeholderStart is what every placeholder starts with, up to its
// first chunk.
var placeholderStart = []byte(placeholderStartText)

const placeholderStartHead = `(NIL "`

var placeholderStartText = placeholderStartHead + envelopeMarker + `" (("`

// placeholderKey is what the swap looks for: the placeholder up to the
// end of its marker.
var placeholderKey = placeholderStart[:len(placeholderStartHead)+len(envelopeMarker)]

// emptyEnvelope is the ENVELOPE of a message without header fields.
const emptyEnvelope = "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"

// EnvelopePlaceholder returns the envelope to give go-imap so that
// ENVELOPE (and the envelope in a BODYSTRUCTURE) is sent as wire: the
// complete ENVELOPE value, parentheses included, as the client must see
// it. It works only on connections whose ConnInfo.RawEnvelopes is true.
func EnvelopePlaceholder(wire []byte) *imap.Envelope {
	if len(wire) == 0 {
		wire = []byte(emptyEnvelope)
	}
	env := &imap.Envelope{
		Subject: envelopeMarker,
		// Non-nil and empty: go-imap writes NIL instead of the From list.
		Sender:  []imap.Address{},
		ReplyTo: []imap.Address{},
		From:    make([]imap.Address, 0, (len(wire)+envelopeChunk-1)/envelopeChunk),
	}
	for len(wire) > 0 {
		n := min(len(wire), envelopeChunk)
		env.From = append(env.From, imap.Address{Name: base64.RawStdEncoding.EncodeToString(wire[:n])})
		wire = wire[n:]
	}
	return env
}

// EnvelopeBytes returns the encoded envelope a placeholder carries, and
// false when env is not one.
func EnvelopeBytes(env *imap.Envelope) ([]byte, bool) {
	if env == nil || env.Subject != envelopeMarker || len(env.From) == 0 {
		return nil, false
	}
	var out []byte
	for _, a := range env.From {
		b, err := base64.RawStdEncoding.DecodeString(a.Name)
		if err != nil {
			return nil, false
		}
		out = append(out, b...)
	}
	return out, true
}

// envelopeSwap replaces placeholders in go-imap's output lines. It is
// used under the connection's outMu.
type envelopeSwap struct {
	hold    []byte // a possible placeholder start cut off by the end of a write
	dropped int    // malformed placeholders dropped (never expected)
}

// feed appends seg, a piece of go-imap's output outside literals, to dst
// with every complete placeholder replaced by its envelope, and keeps a
// trailing piece that may start a placeholder for the next call.
func (s *envelopeSwap) feed(dst, seg []byte) []byte {
	data := seg
	if len(s.hold) > 0 {
		s.hold = append(s.hold, seg...)
		data = s.hold
	}
	var rest []byte
	for len(data) > 0 {
		i := bytes.Index(data, placeholderKey)
		if i < 0 {
			k := partialStart(data)
			dst = append(dst, data[:len(data)-k]...)
			rest = data[len(data)-k:]
			break
		}
		dst = append(dst, data[:i]...)
		n, st := scanPlaceholder(data[i:])
		if st == placeholderComplete {
			var ok bool
			if dst, ok = decodePlaceholder(dst, data[i:i+n]); !ok {
				st = placeholderBad
			}
		}
		switch st {
		case placeholderComplete:
		case placeholderPartial:
			rest = data[i:]
			n = len(data) - i
		case placeholderBad:
			// Our own output is malformed: drop the marker rather than
			// send it (the client sees a broken response either way).
			s.dropped++
			n = len(placeholderKey)
		}
		data = data[i+n:]
	}
	s.hold = append(s.hold[:0], rest...)
	if len(s.hold) == 0 && cap(s.hold) > envelopeChunk*4 {
		s.hold = nil
	}
	return dst
}

// pending returns how many bytes are held back.
func (s *envelopeSwap) pending() int { return len(s.hold) }

// partialStart returns the length of the longest suffix of b that is a
// proper prefix of a placeholder start.
func partialStart(b []byte) int {
	head := placeholderStart
	for k := min(len(b), len(head)-1); k > 0; k-- {
		if b[len(b)-k] == '(' && bytes.Equal(b[len(b)-k:], head[:k]) {
			return k
		}
	}
	return 0
}

type placeholderState int

const (
	placeholderComplete placeholderState = iota
	placeholderPartial                   // b ends inside a placeholder
	placeholderBad                       // not go-imap's rendering of a placeholder
)

// scanPlaceholder checks the placeholder at the start of b (which starts
// with placeholderKey) and returns its length and whether it is complete.
func scanPlaceholder(b []byte) (n int, st placeholderState) {
	pos := 0
	// expect matches lit at pos.
	expect := func(lit string) placeholderState {
		rest := b[pos:]
		if len(rest) < len(lit) {
			if string(rest) == lit[:len(rest)] {
				return placeholderPartial
			}
			return placeholderBad
		}
		if string(rest[:len(lit)]) != lit {
			return placeholderBad
		}
		pos += len(lit)
		return placeholderComplete
	}
	if st := expect(placeholderStartText); st != placeholderComplete {
		return 0, st
	}
	for {
		start := pos
		for pos < len(b) && isBase64(b[pos]) {
			pos++
		}
		if pos-start > 4*envelopeChunk/3+4 {
			return 0, placeholderBad
		}
		if pos == len(b) {
			return 0, placeholderPartial
		}
		if pos == start {
			return 0, placeholderBad
		}
		if st := expect(`" NIL NIL NIL)`); st != placeholderComplete {
			return 0, st
		}
		if pos == len(b) {
			return 0, placeholderPartial
		}
		if b[pos] == ')' {
			pos++
			break
		}
		if st := expect(` ("`); st != placeholderComplete {
			return 0, st
		}
	}
	if st := expect(` NIL NIL NIL NIL NIL NIL NIL)`); st != placeholderComplete {
		return 0, st
	}
	return pos, placeholderComplete
}

// decodePlaceholder appends the envelope a complete placeholder (as
// checked by scanPlaceholder) carries to dst; dst is unchanged and ok
// false when a chunk is not base64.
func decodePlaceholder(dst, b []byte) ([]byte, bool) {
	n := len(dst)
	b = b[len(placeholderStart):]
	for {
		end := bytes.IndexByte(b, '"')
		out, err := base64.RawStdEncoding.AppendDecode(dst, b[:end])
		if err != nil {
			return dst[:n], false
		}
		dst = out
		b = b[end+len(`" NIL NIL NIL)`):]
		if b[0] == ')' {
			return dst, true
		}
		b = b[len(` ("`):]
	}
}

func isBase64(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/'
}
