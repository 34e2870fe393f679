package session

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime/quotedprintable"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/nfsimap/nfsimap/node/front"
)

// This file reads a message's MIME structure straight from its bytes, the
// way Dovecot does, for FETCH: the header is read leniently (a field name
// may hold any byte, a line without a colon is kept as a field without a
// value), header bytes are served as they are in the message, and
// Content-Type and Content-Disposition parameters are kept as written
// (RFC 2231 and RFC 2047 forms are not decoded; that is the client's job).

// Nesting deeper than maxMIMEDepth (search.go) is served as opaque
// bodies.

// mimeField is one header field of a message or part.
type mimeField struct {
	name string // the name as written, without trailing white space
	raw  []byte // the whole field as in the message: all its lines with their line ends
}

// value returns the field's value: the text after the first colon with the
// line folding undone and the white space around it removed.
func (f mimeField) value() string {
	v := f.raw
	if i := bytes.IndexByte(v, ':'); i >= 0 {
		v = v[i+1:]
	} else {
		return ""
	}
	s := strings.NewReplacer("\r\n", "", "\n", "", "\r", "").Replace(string(v))
	return strings.Trim(s, " \t")
}

// nextLine returns the length of the line at the start of b, line end
// included.
func nextLine(b []byte) int {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return i + 1
	}
	return len(b)
}

// isBlankLine reports whether line (with its line end) is empty.
func isBlankLine(line []byte) bool {
	return string(line) == "\r\n" || string(line) == "\n"
}

// splitMIME cuts a message or part into its header fields, the empty line
// that ends them ("" when the header runs to the end) and the body.
func splitMIME(b []byte) (hdr, blank, body []byte) {
	for i := 0; i < len(b); {
		n := nextLine(b[i:])
		if isBlankLine(b[i : i+n]) {
			return b[:i], b[i : i+n], b[i+n:]
		}
		i += n
	}
	return b, nil, nil
}

// parseFields splits header bytes (as from splitMIME) into fields. A line
// starting with white space continues the field before it; any other line
// starts a field, whose name runs to the first colon (the whole line when
// there is none).
func parseFields(hdr []byte) []mimeField {
	var fields []mimeField
	for i := 0; i < len(hdr); {
		n := nextLine(hdr[i:])
		line := hdr[i : i+n]
		if (line[0] == ' ' || line[0] == '\t') && len(fields) > 0 {
			f := &fields[len(fields)-1]
			f.raw = hdr[i-len(f.raw) : i+n]
			i += n
			continue
		}
		name := line
		if c := bytes.IndexByte(line, ':'); c >= 0 {
			name = line[:c]
		}
		fields = append(fields, mimeField{name: strings.TrimRight(string(name), " \t\r\n"), raw: line})
		i += n
	}
	return fields
}

// fieldValue returns the value of the first field named name
// (case-insensitive) and whether there is one.
func fieldValue(fields []mimeField, name string) (string, bool) {
	for _, f := range fields {
		if strings.EqualFold(f.name, name) {
			return f.value(), true
		}
	}
	return "", false
}

// mediaType is a parsed Content-Type or Content-Disposition value.
type mediaType struct {
	value  string            // "text/plain", "attachment", lower case; "" when absent or malformed
	params map[string]string // names in lower case, values as written (quotes removed)
}

// parseMediaType reads "value; name=val; name2=\"val 2\"" without
// decoding RFC 2231 or RFC 2047 forms. It never fails: what does not parse
// is dropped.
func parseMediaType(s string) mediaType {
	var mt mediaType
	v, rest, _ := strings.Cut(s, ";")
	mt.value = strings.ToLower(strings.TrimSpace(v))
	for {
		rest = strings.TrimLeft(rest, " \t;")
		if rest == "" {
			break
		}
		eq := strings.IndexAny(rest, "=;")
		if eq < 0 || rest[eq] == ';' {
			// A name without a value: skip it.
			if eq < 0 {
				break
			}
			rest = rest[eq:]
			continue
		}
		name := strings.ToLower(strings.TrimSpace(rest[:eq]))
		rest = strings.TrimLeft(rest[eq+1:], " \t")
		var val string
		if strings.HasPrefix(rest, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(rest) && rest[i] != '"'; i++ {
				if rest[i] == '\\' && i+1 < len(rest) {
					i++
				}
				b.WriteByte(rest[i])
			}
			val = b.String()
			if i < len(rest) {
				i++
			}
			rest = rest[i:]
			if j := strings.IndexByte(rest, ';'); j >= 0 {
				rest = rest[j:]
			} else {
				rest = ""
			}
		} else {
			j := strings.IndexByte(rest, ';')
			if j < 0 {
				j = len(rest)
			}
			val = strings.TrimRight(rest[:j], " \t")
			rest = rest[j:]
		}
		if name == "" {
			continue
		}
		if mt.params == nil {
			mt.params = make(map[string]string)
		}
		if _, dup := mt.params[name]; !dup {
			mt.params[name] = val
		}
	}
	joinContinuations(mt.params)
	return mt
}

// joinContinuations joins RFC 2231 continuations ("name*0*", "name*1*" or
// "name*0", "name*1") into one parameter, as Dovecot does: "name*" with the
// values put together, charset and language still in front, when the
// first section is encoded; "name" otherwise. Nothing is decoded.
func joinContinuations(params map[string]string) {
	type section struct {
		value   string
		encoded bool
	}
	sets := make(map[string]map[int]section)
	for k, v := range params {
		star := strings.IndexByte(k, '*')
		if star <= 0 || star == len(k)-1 {
			continue
		}
		num := strings.TrimSuffix(k[star+1:], "*")
		n, err := strconv.Atoi(num)
		if err != nil || n < 0 || strconv.Itoa(n) != num {
			continue
		}
		base := k[:star]
		if sets[base] == nil {
			sets[base] = make(map[int]section)
		}
		sets[base][n] = section{value: v, encoded: strings.HasSuffix(k, "*")}
		delete(params, k)
	}
	for base, set := range sets {
		first, ok := set[0]
		if !ok {
			// No section 0: keep the sections as they were.
			for n, sec := range set {
				k := base + "*" + strconv.Itoa(n)
				if sec.encoded {
					k += "*"
				}
				params[k] = sec.value
			}
			continue
		}
		var b strings.Builder
		for n := 0; ; n++ {
			sec, ok := set[n]
			if !ok {
				break
			}
			b.WriteString(sec.value)
		}
		name := base
		if first.encoded {
			name += "*"
		}
		if _, dup := params[name]; !dup {
			params[name] = b.String()
		}
	}
}

// contentType returns the part's media type, type and subtype in lower
// case. A part without a valid Content-Type is text/plain, or
// message/rfc822 inside a multipart/digest (RFC 2046 5.1.5).
func contentType(fields []mimeField, parent string) (typ, sub string, mt mediaType, present bool) {
	v, ok := fieldValue(fields, "Content-Type")
	if ok {
		mt = parseMediaType(v)
		if t, s, ok := strings.Cut(mt.value, "/"); ok && t != "" && s != "" {
			return t, s, mt, true
		}
	}
	if parent == "multipart/digest" && !ok {
		return "message", "rfc822", mt, false
	}
	return "text", "plain", mediaType{params: mt.params}, ok
}

// splitMultipart returns the parts of a multipart body: each part's bytes
// run from after its delimiter line to before the line end that precedes
// the next delimiter (RFC 2046 5.1.1). A body without a closing delimiter
// ends its last part at the end.
func splitMultipart(body []byte, boundary string) [][]byte {
	if boundary == "" {
		return nil
	}
	delim := []byte("--" + boundary)
	var parts [][]byte
	start := -1 // where the current part's bytes begin
	for i := 0; i < len(body); {
		n := nextLine(body[i:])
		line := body[i : i+n]
		if bytes.HasPrefix(line, delim) {
			rest := bytes.TrimRight(line[len(delim):], "\r\n")
			closing := bytes.HasPrefix(rest, []byte("--"))
			if closing || len(bytes.Trim(rest, " \t")) == 0 {
				if start >= 0 {
					end := i
					if end > start && body[end-1] == '\n' {
						end--
						if end > start && body[end-1] == '\r' {
							end--
						}
					}
					parts = append(parts, body[start:end])
				}
				if closing {
					return parts
				}
				start = i + n
			}
		}
		i += n
	}
	if start >= 0 {
		parts = append(parts, body[start:])
	}
	return parts
}

// extractBodyStructureRaw builds the BODYSTRUCTURE of a message from its
// bytes (CRLF line ends).
func extractBodyStructureRaw(content []byte) imap.BodyStructure {
	bs := partStructure(content, "", 0)
	fixBodyStructure(bs, 0)
	return bs
}

func partStructure(b []byte, parent string, depth int) imap.BodyStructure {
	hdr, _, body := splitMIME(b)
	fields := parseFields(hdr)
	typ, sub, mt, _ := contentType(fields, parent)
	disp := dispositionOf(fields)
	lang := languageOf(fields)
	loc, _ := fieldValue(fields, "Content-Location")
	if typ == "multipart" && depth < maxMIMEDepth {
		mp := &imap.BodyStructureMultiPart{Subtype: sub}
		for _, p := range splitMultipart(body, mt.params["boundary"]) {
			mp.Children = append(mp.Children, partStructure(p, typ+"/"+sub, depth+1))
		}
		mp.Extended = &imap.BodyStructureMultiPartExt{Params: mt.params, Disposition: disp, Language: lang, Location: loc}
		return mp
	}
	if typ == "multipart" {
		typ, sub = "text", "plain"
	}
	sp := &imap.BodyStructureSinglePart{
		Type:     typ,
		Subtype:  sub,
		Params:   mt.params,
		Size:     uint32(len(body)),
		Extended: &imap.BodyStructureSinglePartExt{Disposition: disp, Language: lang, Location: loc},
	}
	sp.ID, _ = fieldValue(fields, "Content-ID")
	sp.Description, _ = fieldValue(fields, "Content-Description")
	sp.Encoding, _ = fieldValue(fields, "Content-Transfer-Encoding")
	sp.Encoding = strings.ToLower(sp.Encoding)
	lines := int64(bytes.Count(body, []byte("\n")))
	switch {
	case typ == "message" && (sub == "rfc822" || sub == "global") && depth < maxMIMEDepth:
		sp.MessageRFC822 = &imap.BodyStructureMessageRFC822{
			Envelope:      extractEnvelope(body),
			BodyStructure: partStructure(body, "", depth+1),
			NumLines:      lines,
		}
	case typ == "text":
		sp.Text = &imap.BodyStructureText{NumLines: lines}
	}
	return sp
}

func dispositionOf(fields []mimeField) *imap.BodyStructureDisposition {
	v, ok := fieldValue(fields, "Content-Disposition")
	if !ok {
		return nil
	}
	mt := parseMediaType(v)
	if mt.value == "" {
		return nil
	}
	return &imap.BodyStructureDisposition{Value: mt.value, Params: mt.params}
}

func languageOf(fields []mimeField) []string {
	v, ok := fieldValue(fields, "Content-Language")
	if !ok || v == "" {
		return nil
	}
	var l []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			l = append(l, s)
		}
	}
	return l
}

// extractEnvelope builds the ENVELOPE of a message from its header,
// read leniently, encoded as Dovecot encodes it (envelope.go), and
// returns it as the front's placeholder, which carries those bytes past
// go-imap's envelope writer (fetch.go turns it into go-imap's form for
// connections that do not come through the front).
func extractEnvelope(content []byte) *imap.Envelope {
	hdr, _, _ := splitMIME(content)
	return front.EnvelopePlaceholder(envelopeWire(parseFields(hdr)))
}

// mimePart is a part found by its section number.
type mimePart struct {
	whole  []byte // header, empty line and body
	hdr    []byte // header fields
	blank  []byte // the empty line after them, "" when there is none
	body   []byte
	fields []mimeField
	parent string // the enclosing multipart's type ("multipart/mixed"), "" at the top
}

func newMIMEPart(b []byte, parent string) mimePart {
	hdr, blank, body := splitMIME(b)
	return mimePart{whole: b, hdr: hdr, blank: blank, body: body, fields: parseFields(hdr), parent: parent}
}

// isMessage reports whether the part holds a message (message/rfc822).
func (p mimePart) isMessage() bool {
	typ, sub, _, _ := contentType(p.fields, p.parent)
	return typ == "message" && (sub == "rfc822" || sub == "global")
}

// findPart follows a section part number (RFC 3501 6.4.5) from the whole
// message. Part 1 of a message that is not a multipart is its body.
func findPart(content []byte, path []int) (mimePart, bool) {
	p := newMIMEPart(content, "")
	for i, n := range path {
		if i >= maxMIMEDepth {
			return mimePart{}, false
		}
		if i > 0 && p.isMessage() {
			p = newMIMEPart(p.body, "")
		}
		typ, sub, mt, _ := contentType(p.fields, p.parent)
		if typ != "multipart" {
			if n != 1 {
				return mimePart{}, false
			}
			// Part 1 of a single-part entity is the entity itself.
			continue
		}
		parts := splitMultipart(p.body, mt.params["boundary"])
		if n < 1 || n > len(parts) {
			return mimePart{}, false
		}
		p = newMIMEPart(parts[n-1], typ+"/"+sub)
	}
	return p, true
}

// bodySectionRaw returns the bytes of BODY[section], byte for byte as in
// the message, and false when the section does not exist.
func bodySectionRaw(content []byte, bs *imap.FetchItemBodySection) ([]byte, bool) {
	p, ok := findPart(content, bs.Part)
	if !ok {
		return nil, false
	}
	if len(bs.Part) > 0 {
		switch bs.Specifier {
		case imap.PartSpecifierNone:
			return partial(p.body, bs.Partial), true
		case imap.PartSpecifierMIME:
			return partial(headerBytes(p), bs.Partial), true
		}
		// HEADER and TEXT of a part refer to the message it holds.
		if !p.isMessage() {
			return nil, false
		}
		p = newMIMEPart(p.body, "")
	}
	var data []byte
	switch {
	case len(bs.HeaderFields) > 0:
		data = filterFields(p, bs.HeaderFields, true)
	case len(bs.HeaderFieldsNot) > 0:
		data = filterFields(p, bs.HeaderFieldsNot, false)
	case bs.Specifier == imap.PartSpecifierHeader:
		data = headerBytes(p)
	case bs.Specifier == imap.PartSpecifierText:
		data = p.body
	default:
		data = p.whole
	}
	return partial(data, bs.Partial), true
}

// headerBytes is the header of a part with the empty line after it, when
// there is one.
func headerBytes(p mimePart) []byte {
	return p.whole[:len(p.hdr)+len(p.blank)]
}

// filterFields returns the fields of p named in names (keep) or not named
// there (!keep), as they are in the message. HEADER.FIELDS always ends in
// an empty line; HEADER.FIELDS.NOT keeps the message's empty line, and
// has none when the message has none (RFC 3501 6.4.5), as Dovecot does.
func filterFields(p mimePart, names []string, keep bool) []byte {
	var out []byte
	for _, f := range p.fields {
		named := false
		for _, n := range names {
			if strings.EqualFold(f.name, n) {
				named = true
				break
			}
		}
		if named == keep {
			out = append(out, f.raw...)
			if !bytes.HasSuffix(f.raw, []byte("\n")) {
				out = append(out, '\r', '\n')
			}
		}
	}
	switch {
	case keep:
		out = append(out, '\r', '\n')
	case len(p.blank) > 0:
		out = append(out, p.blank...)
	}
	if out == nil {
		out = []byte{}
	}
	return out
}

// binarySectionRaw returns BINARY[section]: the part with its
// Content-Transfer-Encoding undone and nothing else changed (RFC 3516:
// the charset stays). ok is false when the section does not exist or its
// encoding is unknown.
func binarySectionRaw(content []byte, bs *imap.FetchItemBinarySection) ([]byte, bool) {
	p, ok := findPart(content, bs.Part)
	if !ok {
		return nil, false
	}
	enc, _ := fieldValue(p.fields, "Content-Transfer-Encoding")
	body, ok := decodeTransfer(p.body, enc)
	if !ok {
		return nil, false
	}
	if len(bs.Part) == 0 {
		body = append(append([]byte{}, headerBytes(p)...), body...)
	}
	return partial(body, bs.Partial), true
}

// decodeTransfer undoes a Content-Transfer-Encoding. Damaged base64 and
// quoted-printable decode as far as they go, as Dovecot does.
func decodeTransfer(b []byte, enc string) ([]byte, bool) {
	switch strings.ToLower(strings.TrimSpace(enc)) {
	case "", "7bit", "8bit", "binary":
		return b, true
	case "base64":
		clean := make([]byte, 0, len(b))
		for _, c := range b {
			if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' {
				clean = append(clean, c)
			}
		}
		if len(clean)%4 == 1 {
			clean = clean[:len(clean)-1] // a lone sextet holds no byte
		}
		out := make([]byte, base64.RawStdEncoding.DecodedLen(len(clean)))
		n, _ := base64.RawStdEncoding.Decode(out, clean)
		return out[:n], true
	case "quoted-printable":
		out, _ := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(b)))
		return out, true
	}
	return nil, false
}

// literalSafe returns b with every NUL byte replaced by 0x80, the same
// length: IMAP literals may not hold NUL (RFC 3501 CHAR8), and Dovecot
// sends 0x80 in its place. Only BINARY literals (literal8) carry NULs.
// b itself is returned when it has none.
func literalSafe(b []byte) []byte {
	if bytes.IndexByte(b, 0) < 0 {
		return b
	}
	out := bytes.Clone(b)
	for i, c := range out {
		if c == 0 {
			out[i] = 0x80
		}
	}
	return out
}
