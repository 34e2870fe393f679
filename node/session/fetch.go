package session

import (
	"bufio"
	"bytes"
	"fmt"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"

	"github.com/nfsimap/nfsimap/node/front"
)

// toCRLF returns b with every bare LF turned into CRLF. Maildir files are
// often stored with LF line ends; IMAP serves CRLF. b itself is returned
// when it has no bare LF.
func toCRLF(b []byte) []byte {
	bare := 0
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			bare++
		}
	}
	if bare == 0 {
		return b
	}
	out := make([]byte, 0, len(b)+bare)
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}

// fetchMessage is one message as FETCH renders it.
type fetchMessage struct {
	seqNum       uint32
	uid          imap.UID
	flags        []imap.Flag
	internalDate time.Time
	size         int64 // RFC822.SIZE (CRLF); < 0 when unknown
	// envelope and bodyStructure come from the index; nil: extract them
	// from the content.
	envelope      *imap.Envelope
	bodyStructure imap.BodyStructure
	// content returns the message with CRLF line ends.
	content func() ([]byte, error)
	// rawEnvelopes: the connection passes through the front's
	// placeholder swap (front.ConnInfo.RawEnvelopes), so envelopes go
	// out as encoded from the header; otherwise in go-imap's form.
	rawEnvelopes bool
}

// fetchNeedsContent reports whether the options need the message text,
// given what m already has.
func fetchNeedsContent(m *fetchMessage, opts *imap.FetchOptions) bool {
	return (opts.Envelope && m.envelope == nil) || (opts.BodyStructure != nil && m.bodyStructure == nil) ||
		len(opts.BodySection) > 0 || len(opts.BinarySection) > 0 || len(opts.BinarySectionSize) > 0 ||
		(opts.RFC822Size && m.size < 0)
}

// fetchSetsSeen reports whether the options fetch a body section without
// .PEEK, which sets \Seen in a read-write mailbox.
func fetchSetsSeen(opts *imap.FetchOptions) bool {
	for _, bs := range opts.BodySection {
		if !bs.Peek {
			return true
		}
	}
	for _, bs := range opts.BinarySection {
		if !bs.Peek {
			return true
		}
	}
	return false
}

// writeFetch renders one FETCH response. withFlags forces FLAGS into the
// response (used when the fetch itself set \Seen).
func writeFetch(w *imapserver.FetchWriter, m *fetchMessage, opts *imap.FetchOptions, withFlags bool) error {
	var content []byte
	if fetchNeedsContent(m, opts) {
		var err error
		content, err = m.content()
		if err != nil {
			return err
		}
	}
	rw := w.CreateMessage(m.seqNum)
	if opts.UID {
		rw.WriteUID(m.uid)
	}
	if opts.Flags || withFlags {
		rw.WriteFlags(m.flags)
	}
	if opts.InternalDate {
		rw.WriteInternalDate(m.internalDate)
	}
	if opts.RFC822Size {
		size := m.size
		if size < 0 {
			size = int64(len(content))
		}
		rw.WriteRFC822Size(size)
	}
	if opts.Envelope {
		env := m.envelope
		if env == nil {
			env = extractEnvelope(content)
		}
		if !m.rawEnvelopes {
			env = goimapEnvelope(env)
		}
		rw.WriteEnvelope(env)
	}
	if opts.BodyStructure != nil {
		bs := m.bodyStructure
		if bs == nil {
			bs = extractBodyStructure(content)
		}
		if !m.rawEnvelopes {
			goimapEnvelopes(bs)
		}
		rw.WriteBodyStructure(bs)
	}
	for _, bs := range opts.BodySection {
		data := literalSafe(bodySection(content, bs))
		if err := writeLiteral(rw.WriteBodySection(bs, int64(len(data))), data); err != nil {
			return err
		}
	}
	for _, bs := range opts.BinarySection {
		data, _ := binarySectionRaw(content, bs)
		if err := writeLiteral(rw.WriteBinarySection(bs, int64(len(data))), data); err != nil {
			return err
		}
	}
	for _, bss := range opts.BinarySectionSize {
		data, _ := binarySectionRaw(content, &imap.FetchItemBinarySection{Part: bss.Part})
		rw.WriteBinarySectionSize(bss, uint32(len(data)))
	}
	return rw.Close()
}

func writeLiteral(wc interface {
	Write([]byte) (int, error)
	Close() error
}, data []byte) error {
	if _, err := wc.Write(data); err != nil {
		wc.Close()
		return fmt.Errorf("write literal: %w", err)
	}
	if err := wc.Close(); err != nil {
		return fmt.Errorf("write literal: %w", err)
	}
	return nil
}

func readHeader(content []byte) textproto.Header {
	h, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(content)))
	return h
}

// goimapEnvelope turns a placeholder (front.EnvelopePlaceholder) into an
// envelope go-imap can write itself.
func goimapEnvelope(env *imap.Envelope) *imap.Envelope {
	if wire, ok := front.EnvelopeBytes(env); ok {
		return plainEnvelope(wire)
	}
	return env
}

// goimapEnvelopes does goimapEnvelope for the envelopes of the
// message/rfc822 parts in bs, in place.
func goimapEnvelopes(bs imap.BodyStructure) {
	switch bs := bs.(type) {
	case *imap.BodyStructureMultiPart:
		for _, c := range bs.Children {
			goimapEnvelopes(c)
		}
	case *imap.BodyStructureSinglePart:
		if m := bs.MessageRFC822; m != nil {
			m.Envelope = goimapEnvelope(m.Envelope)
			goimapEnvelopes(m.BodyStructure)
		}
	}
}

// extractBodyStructure reads the structure from the message bytes
// (extract.go: lenient header, parameters as written), made safe to
// write: go-imap's writer panics on a multipart without parts (a broken
// boundary gives one), so such a multipart gets one empty text/plain part.
func extractBodyStructure(content []byte) imap.BodyStructure {
	return extractBodyStructureRaw(content)
}

func fixBodyStructure(bs imap.BodyStructure, depth int) {
	switch bs := bs.(type) {
	case *imap.BodyStructureMultiPart:
		if len(bs.Children) == 0 {
			bs.Children = []imap.BodyStructure{emptyTextPart()}
		}
		if bs.Extended == nil {
			bs.Extended = &imap.BodyStructureMultiPartExt{}
		}
		for _, c := range bs.Children {
			fixBodyStructure(c, depth+1)
		}
	case *imap.BodyStructureSinglePart:
		if bs.Type == "" {
			bs.Type, bs.Subtype = "text", "plain"
		}
		if bs.Subtype == "" {
			bs.Subtype = "plain"
		}
		if bs.Extended == nil {
			bs.Extended = &imap.BodyStructureSinglePartExt{}
		}
		if msg := bs.MessageRFC822; msg != nil {
			if msg.BodyStructure == nil {
				msg.BodyStructure = emptyTextPart()
			}
			if msg.Envelope == nil {
				msg.Envelope = &imap.Envelope{}
			}
			fixBodyStructure(msg.BodyStructure, depth+1)
		}
	}
}

func emptyTextPart() *imap.BodyStructureSinglePart {
	return &imap.BodyStructureSinglePart{
		Type:     "text",
		Subtype:  "plain",
		Params:   map[string]string{"charset": "us-ascii"},
		Encoding: "7bit",
		Text:     &imap.BodyStructureText{},
		Extended: &imap.BodyStructureSinglePartExt{},
	}
}

// bodySection returns the bytes of one BODY[...] item. The whole message,
// its header and its text are cut from the stored bytes directly, so they
// are byte-exact; parts and header field lists are cut from them too
// (extract.go bodySectionRaw), never rewritten.
func bodySection(content []byte, bs *imap.FetchItemBodySection) []byte {
	if len(bs.Part) == 0 && len(bs.HeaderFields) == 0 && len(bs.HeaderFieldsNot) == 0 {
		var data []byte
		switch bs.Specifier {
		case imap.PartSpecifierNone:
			data = content
		case imap.PartSpecifierHeader:
			data = content[:headerLength(content)]
		case imap.PartSpecifierText:
			data = content[headerLength(content):]
		}
		if data != nil {
			return partial(data, bs.Partial)
		}
	}
	data, _ := bodySectionRaw(content, bs)
	return data
}

func partial(b []byte, p *imap.SectionPartial) []byte {
	if p == nil {
		return b
	}
	if p.Offset >= int64(len(b)) || p.Offset < 0 {
		return nil
	}
	end := p.Offset + p.Size
	if end > int64(len(b)) || end < p.Offset {
		end = int64(len(b))
	}
	return b[p.Offset:end]
}
