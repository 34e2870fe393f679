package sortthread

import "bytes"

// ParseHeader fills m's Date, Subject, From, To, Cc, MessageID, InReplyTo
// and References from a raw message header (the bytes up to the first
// empty line; a whole message may be passed). Field names are matched
// case-insensitively; the first occurrence of a field wins; folded values
// are unfolded (the CRLF is removed, the whitespace kept). Fields not
// present are set to "". Lines may end in CRLF or LF.
func (m *Message) ParseHeader(header []byte) {
	m.Date, m.Subject, m.From, m.To, m.Cc = "", "", "", "", ""
	m.MessageID, m.InReplyTo, m.References = "", "", ""
	var seen [8]bool
	var cur *string // the field being read, nil if not wanted or seen
	var val []byte
	flush := func() {
		if cur != nil {
			*cur = string(bytes.TrimSpace(val))
		}
		cur, val = nil, val[:0]
	}
	for len(header) > 0 {
		line := header
		if i := bytes.IndexByte(header, '\n'); i >= 0 {
			line, header = header[:i], header[i+1:]
		} else {
			header = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if cur != nil {
				val = append(val, line...)
			}
			continue
		}
		flush()
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			continue
		}
		name := bytes.TrimRight(line[:colon], " \t")
		slot := -1
		var field *string
		switch {
		case bytes.EqualFold(name, []byte("Date")):
			slot, field = 0, &m.Date
		case bytes.EqualFold(name, []byte("Subject")):
			slot, field = 1, &m.Subject
		case bytes.EqualFold(name, []byte("From")):
			slot, field = 2, &m.From
		case bytes.EqualFold(name, []byte("To")):
			slot, field = 3, &m.To
		case bytes.EqualFold(name, []byte("Cc")):
			slot, field = 4, &m.Cc
		case bytes.EqualFold(name, []byte("Message-ID")):
			slot, field = 5, &m.MessageID
		case bytes.EqualFold(name, []byte("In-Reply-To")):
			slot, field = 6, &m.InReplyTo
		case bytes.EqualFold(name, []byte("References")):
			slot, field = 7, &m.References
		}
		if slot < 0 || seen[slot] {
			continue
		}
		seen[slot] = true
		cur = field
		val = append(val, line[colon+1:]...)
	}
	flush()
}
