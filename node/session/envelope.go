package session

import (
	"bytes"
	"mime"
	"net/mail"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-message/charset"

	"github.com/nfsimap/nfsimap/node/front"
)

// ENVELOPE (RFC 3501 7.4.2) is built here from the raw header, the way
// Dovecot builds it, and sent through the front's placeholder swap
// (front.EnvelopePlaceholder): go-imap's own envelope writer only takes
// decoded values.
//
//   - Each field's value is the header text after the colon without the
//     white space that follows the colon; folded lines are joined ("\n"
//     between them, removed on output). When a field occurs twice the
//     last one counts, except that address lists are put together. NUL
//     becomes U+FFFD.
//   - Date, Message-ID and In-Reply-To are sent as written: line ends
//     removed (a space is put in when the next line starts without
//     white space), as a quoted string, or as a literal when they hold
//     8-bit bytes or more than four characters to escape.
//   - Subject and display names are sent "for humans": tabs, CR and LF
//     become spaces, runs of spaces one, leading and trailing spaces go;
//     the result is quoted when that changed nothing and it needs no
//     escaping, a literal otherwise ("" when nothing is left).
//     Encoded words stay encoded; the client decodes them.
//   - Addresses are parsed leniently (RFC 5322 with the obsolete forms):
//     display names with quoted strings unquoted, a comment after a bare
//     address as its name, source routes, groups as (NIL NIL "name" NIL)
//     ... (NIL NIL NIL NIL), and what is missing or broken as
//     MISSING_MAILBOX, MISSING_DOMAIN, SYNTAX_ERROR or INVALID_ROUTE.
//   - A header field that is absent is NIL; an empty one is "" (an
//     address field without addresses is NIL). Sender and Reply-To
//     default to From.
//
// 8-bit text is always sent as a literal, which is valid whether or not
// the client enabled UTF8=ACCEPT (Dovecot 2.3 does the same).

// envelopeFieldNames are the header fields ENVELOPE is made of, in order.
var envelopeFieldNames = [...]string{"Date", "Subject", "From", "Sender", "Reply-To", "To", "Cc", "Bcc", "In-Reply-To", "Message-ID"}

const (
	envDate = iota
	envSubject
	envFrom
	envSender
	envReplyTo
	envTo
	envCc
	envBcc
	envInReplyTo
	envMessageID
	envFields
)

// rawValue returns a header field's value as Dovecot's header parser
// gives it: the text after the colon without the white space after it
// (but one character of it when the value is all white space), lines
// joined with "\n", CR before LF and the last line end dropped, NUL as
// U+FFFD. ok is false for a line without a colon, which is no field.
func rawValue(raw []byte) (v []byte, ok bool) {
	first := nextLine(raw)
	line := raw[:first]
	c := bytes.IndexByte(line, ':')
	if c < 0 {
		return nil, false
	}
	v = trimLineEnd(line[c+1:])
	lwsp := 0
	for lwsp < len(v) && (v[lwsp] == ' ' || v[lwsp] == '\t') {
		lwsp++
	}
	if lwsp == len(v) && lwsp > 0 {
		lwsp = 1
	}
	out := append([]byte(nil), v[lwsp:]...)
	for rest := raw[first:]; len(rest) > 0; {
		n := nextLine(rest)
		out = append(out, '\n')
		out = append(out, trimLineEnd(rest[:n])...)
		rest = rest[n:]
	}
	if bytes.IndexByte(out, 0) >= 0 {
		out = bytes.ReplaceAll(out, []byte{0}, []byte("\uFFFD"))
	}
	return out, true
}

func trimLineEnd(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}

// envelopeWire returns the ENVELOPE of a header (fields as from
// parseFields), parentheses included.
func envelopeWire(fields []mimeField) []byte {
	var vals [envFields][]byte
	var have [envFields]bool
	for _, f := range fields {
		for _, i := range []int{envDate, envSubject, envInReplyTo, envMessageID} {
			if strings.EqualFold(f.name, envelopeFieldNames[i]) {
				if v, ok := rawValue(f.raw); ok {
					vals[i], have[i] = v, true
				}
				break
			}
		}
	}
	var addrs [envFields][]envAddress
	for _, f := range fields {
		for i := envFrom; i <= envBcc; i++ {
			if strings.EqualFold(f.name, envelopeFieldNames[i]) {
				if v, ok := rawValue(f.raw); ok {
					addrs[i] = append(addrs[i], parseAddressList(v)...)
				}
				break
			}
		}
	}
	for _, i := range []int{envSender, envReplyTo} {
		if addrs[i] == nil {
			addrs[i] = addrs[envFrom]
		}
	}
	out := make([]byte, 0, 256)
	out = append(out, '(')
	for i := range envFields {
		if i > 0 {
			out = append(out, ' ')
		}
		switch {
		case i >= envFrom && i <= envBcc:
			out = appendAddressList(out, addrs[i])
		case !have[i]:
			out = append(out, "NIL"...)
		case i == envSubject:
			out = appendForHumans(out, vals[i])
		default:
			out = appendNStringNoLF(out, vals[i])
		}
	}
	return append(out, ')')
}

// appendLiteral writes b as a literal.
func appendLiteral(dst, b []byte) []byte {
	dst = append(dst, '{')
	dst = strconv.AppendInt(dst, int64(len(b)), 10)
	dst = append(dst, '}', '\r', '\n')
	return append(dst, b...)
}

// appendString writes b as a quoted string, or as a literal when it
// holds CR, LF or 8-bit bytes or more than four characters to escape.
func appendString(dst, b []byte) []byte {
	escapes := 0
	for _, c := range b {
		switch {
		case c == '"' || c == '\\':
			escapes++
			if escapes > 4 {
				return appendLiteral(dst, b)
			}
		case c == '\r' || c == '\n' || c == 0 || c >= 0x80:
			return appendLiteral(dst, b)
		}
	}
	dst = append(dst, '"')
	for _, c := range b {
		if c == '"' || c == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, c)
	}
	return append(dst, '"')
}

// appendNStringNoLF writes b without its line ends: a line end before a
// character other than white space becomes a space.
func appendNStringNoLF(dst, b []byte) []byte {
	if !bytes.ContainsAny(b, "\r\n") {
		return appendString(dst, b)
	}
	clean := make([]byte, 0, len(b))
	for i, c := range b {
		if c != '\r' && c != '\n' {
			clean = append(clean, c)
			continue
		}
		if i+1 < len(b) {
			switch b[i+1] {
			case ' ', '\t', '\r', '\n', 0:
			default:
				clean = append(clean, ' ')
			}
		}
	}
	return appendString(dst, clean)
}

// appendForHumans writes text meant to be read (a subject, a display
// name): see the file comment.
func appendForHumans(dst, b []byte) []byte {
	clean := make([]byte, 0, len(b))
	space := true // at the start, or after a space
	plain := true // no quoting, escaping or 8-bit
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			if !space {
				clean = append(clean, ' ')
			}
			space = true
		case 0:
			clean = append(clean, 0x80)
			space = false
			plain = false
		default:
			clean = append(clean, c)
			space = false
			if c == '"' || c == '\\' || c >= 0x80 {
				plain = false
			}
		}
	}
	if n := len(clean); n > 0 && clean[n-1] == ' ' {
		clean = clean[:n-1]
	}
	if plain && bytes.Equal(clean, b) {
		dst = append(dst, '"')
		dst = append(dst, b...)
		return append(dst, '"')
	}
	if len(clean) == 0 {
		return append(dst, `""`...)
	}
	return appendLiteral(dst, clean)
}

// envAddress is one address of an ENVELOPE address list; nil fields are
// NIL. A group is a start (only mailbox: the group's name) and an end
// (all nil).
type envAddress struct {
	name, route, mailbox, domain *string
	invalid                      bool
}

func appendAddressList(dst []byte, l []envAddress) []byte {
	if len(l) == 0 {
		return append(dst, "NIL"...)
	}
	dst = append(dst, '(')
	for _, a := range l {
		dst = append(dst, '(')
		if a.name == nil {
			dst = append(dst, "NIL"...)
		} else {
			dst = appendForHumans(dst, []byte(*a.name))
		}
		for _, s := range []*string{a.route, a.mailbox, a.domain} {
			dst = append(dst, ' ')
			if s == nil {
				dst = append(dst, "NIL"...)
			} else {
				dst = appendNStringNoLF(dst, []byte(*s))
			}
		}
		dst = append(dst, ')')
	}
	return append(dst, ')')
}

// --- the address parser ---
//
// Its functions return what the RFC 5322 parsing steps of Dovecot's
// lib-mail return, so broken input ends up the same: 1 when input is
// left, 0 at its end, -1 on a syntax error.

type addrParser struct {
	b       []byte
	p       int
	comment []byte // text of the last comment skipped
	str     []byte // scratch for the current token
	cur     envAddress
	out     []envAddress
}

func strp(b []byte) *string { s := string(b); return &s }

func constp(s string) *string { return &s }

// atext reports whether c may be part of an atom (RFC 5322 atext, and
// any 8-bit byte).
func atext(c byte) bool {
	if c >= 0x80 {
		return true
	}
	if c <= ' ' || c == 0x7f {
		return false
	}
	return !strings.ContainsRune("\"(),.:;<>@[\\]", rune(c))
}

func (a *addrParser) end() bool { return a.p >= len(a.b) }

// ch returns the current byte, 0 at the end.
func (a *addrParser) ch() byte {
	if a.p < len(a.b) {
		return a.b[a.p]
	}
	return 0
}

func (a *addrParser) more() int {
	if a.end() {
		return 0
	}
	return 1
}

func (a *addrParser) skipComment() int {
	a.comment = a.comment[:0]
	level := 1
	a.p++
	start := a.p
	for ; a.p < len(a.b); a.p++ {
		switch a.b[a.p] {
		case '(':
			level++
		case ')':
			level--
			if level == 0 {
				a.comment = append(a.comment, a.b[start:a.p]...)
				a.p++
				return a.more()
			}
		case '\\':
			a.comment = append(a.comment, a.b[start:a.p]...)
			start = a.p + 1
			a.p++
			if a.p >= len(a.b) {
				return -1
			}
		}
	}
	return -1
}

func (a *addrParser) skipLWSP() int {
	for a.p < len(a.b) {
		switch a.b[a.p] {
		case ' ', '\t', '\r', '\n':
			a.p++
			continue
		case '(':
			if a.skipComment() < 0 {
				return -1
			}
			continue
		}
		break
	}
	return a.more()
}

func (a *addrParser) dotAtom() int {
	if a.end() || !atext(a.ch()) {
		return -1
	}
	start := a.p
	a.p++
	for a.p < len(a.b) {
		if atext(a.b[a.p]) {
			a.p++
			continue
		}
		a.str = append(a.str, a.b[start:a.p]...)
		if ret := a.skipLWSP(); ret <= 0 {
			return ret
		}
		if a.ch() != '.' {
			return 1
		}
		a.p++
		a.str = append(a.str, '.')
		if ret := a.skipLWSP(); ret <= 0 {
			return ret
		}
		start = a.p
	}
	a.str = append(a.str, a.b[start:a.p]...)
	return 0
}

func (a *addrParser) quotedString() int {
	a.p++
	start := a.p
	for ; a.p < len(a.b); a.p++ {
		switch a.b[a.p] {
		case '"':
			a.str = append(a.str, a.b[start:a.p]...)
			a.p++
			return a.skipLWSP()
		case '\n':
			n := a.p
			if n > start && a.b[n-1] == '\r' {
				n--
			}
			a.str = append(a.str, a.b[start:n]...)
			start = a.p + 1
		case '\\':
			a.p++
			if a.p >= len(a.b) {
				return -1
			}
			a.str = append(a.str, a.b[start:a.p-1]...)
			start = a.p
		}
	}
	return -1
}

func (a *addrParser) atomOrDot() int {
	start := a.p
	for ; a.p < len(a.b); a.p++ {
		if c := a.b[a.p]; !atext(c) && c != '.' {
			a.str = append(a.str, a.b[start:a.p]...)
			return a.skipLWSP()
		}
	}
	a.str = append(a.str, a.b[start:a.p]...)
	return 0
}

func (a *addrParser) phrase() int {
	if a.end() {
		return 0
	}
	if a.ch() == '.' {
		return -1
	}
	for {
		var ret int
		if a.ch() == '"' {
			ret = a.quotedString()
		} else {
			ret = a.atomOrDot()
		}
		if ret <= 0 {
			return ret
		}
		if c := a.ch(); !atext(c) && c != '"' && c != '.' {
			break
		}
		a.str = append(a.str, ' ')
	}
	return a.skipLWSP()
}

func (a *addrParser) domainLiteral() int {
	start := a.p
	for ; a.p < len(a.b); a.p++ {
		switch a.b[a.p] {
		case '\\':
			a.p++
			if a.p >= len(a.b) {
				return -1
			}
		case ']':
			a.p++
			a.str = append(a.str, a.b[start:a.p]...)
			return a.skipLWSP()
		}
	}
	return -1
}

// domain reads "@" domain into str.
func (a *addrParser) domain() int {
	a.p++
	if a.skipLWSP() <= 0 {
		return -1
	}
	if a.ch() == '[' {
		return a.domainLiteral()
	}
	return a.dotAtom()
}

// atom reads one atom into str.
func (a *addrParser) atom() int {
	if a.end() || !atext(a.ch()) {
		return -1
	}
	start := a.p
	for a.p++; a.p < len(a.b); a.p++ {
		if !atext(a.b[a.p]) {
			a.str = append(a.str, a.b[start:a.p]...)
			return a.skipLWSP()
		}
	}
	a.str = append(a.str, a.b[start:]...)
	return 0
}

// looseDotAtom reads a local part whose dots may lead, trail or repeat
// ("first..last.", ".x"), as mail programs write them.
func (a *addrParser) looseDotAtom() int {
	ret := -1
	for {
		for a.ch() == '.' {
			a.str = append(a.str, '.')
			a.p++
			if a.end() {
				return 0
			}
			ret = 1
		}
		if a.ch() == '@' {
			break
		}
		ret = a.atom()
		if ret <= 0 || a.ch() != '.' {
			break
		}
	}
	return ret
}

func (a *addrParser) localPart() int {
	a.str = a.str[:0]
	var ret int
	if a.ch() == '"' {
		ret = a.quotedString()
	} else {
		ret = a.looseDotAtom()
	}
	if ret < 0 {
		return -1
	}
	a.cur.mailbox = strp(a.str)
	return ret
}

func (a *addrParser) domainPart() int {
	a.str = a.str[:0]
	ret := a.domain()
	if ret < 0 {
		return -1
	}
	a.cur.domain = strp(a.str)
	return ret
}

func (a *addrParser) domainList() int {
	a.str = a.str[:0]
	for {
		if a.end() {
			return 0
		}
		if a.ch() != '@' {
			break
		}
		if len(a.str) > 0 {
			a.str = append(a.str, ',')
		}
		a.str = append(a.str, '@')
		if ret := a.domain(); ret <= 0 {
			return ret
		}
		for a.skipLWSP() > 0 && a.ch() == ',' {
			a.p++
		}
	}
	a.cur.route = strp(a.str)
	return 1
}

func (a *addrParser) angleAddr() int {
	a.p++ // '<'
	if a.skipLWSP() <= 0 {
		return -1
	}
	if a.ch() == '@' {
		if a.domainList() > 0 && a.ch() == ':' {
			a.p++
		} else {
			a.cur.route = constp("INVALID_ROUTE")
			if a.end() {
				return -1
			}
		}
		if a.skipLWSP() <= 0 {
			return -1
		}
	}
	if a.ch() != '>' {
		if a.localPart() <= 0 {
			return -1
		}
		if a.ch() == '@' {
			if a.domainPart() <= 0 {
				return -1
			}
		}
	}
	if a.ch() != '>' {
		return -1
	}
	a.p++
	return a.skipLWSP()
}

func (a *addrParser) nameAddr() int {
	a.str = a.str[:0]
	if a.phrase() <= 0 || a.ch() != '<' {
		return -1
	}
	if len(a.str) > 0 {
		a.cur.name = strp(a.str)
	}
	if a.angleAddr() < 0 {
		a.cur.domain = constp("SYNTAX_ERROR")
		a.cur.invalid = true
	}
	return a.more()
}

func (a *addrParser) addrSpec() int {
	a.comment = a.comment[:0]
	quoted := a.ch() == '"'
	ret := a.localPart()
	if ret <= 0 {
		a.cur.invalid = true
	}
	ret2 := -2
	if ret != 0 && !a.end() && a.ch() == '@' {
		ret2 = a.domainPart()
		if ret2 <= 0 {
			ret = ret2
		}
	}
	switch {
	case len(a.comment) > 0:
		a.cur.name = strp(a.comment)
	case ret2 == -2:
		// A lone word is a mailbox; words after it make it a name.
		a.str = append(a.str, ' ')
		n := len(a.str)
		a.phrase()
		if len(a.str) != n {
			a.cur.mailbox = nil
			a.cur.name = strp(a.str)
		} else if !quoted {
			a.cur.domain = constp("")
		}
		a.cur.invalid = true
		ret = -1
	}
	return ret
}

func (a *addrParser) add() {
	a.out = append(a.out, a.cur)
	a.cur = envAddress{}
}

func (a *addrParser) addFixed() {
	if a.cur.mailbox == nil {
		a.cur.mailbox = constp("MISSING_MAILBOX")
		a.cur.invalid = true
	}
	if a.cur.domain == nil || *a.cur.domain == "" {
		a.cur.domain = constp("MISSING_DOMAIN")
		a.cur.invalid = true
	}
	a.add()
}

func (a *addrParser) mailbox() int {
	start := a.p
	ret := a.nameAddr()
	if ret < 0 {
		a.p = start
		ret = a.addrSpec()
		if a.cur.invalid && a.cur.name == nil && a.cur.mailbox != nil && a.cur.domain == nil {
			a.cur.name, a.cur.mailbox = a.cur.mailbox, nil
		}
	}
	if ret < 0 {
		a.cur.invalid = true
	}
	a.addFixed()
	return ret
}

func (a *addrParser) group() int {
	a.str = a.str[:0]
	if a.phrase() <= 0 || a.ch() != ':' {
		return -1
	}
	a.p++
	ret := a.skipLWSP()
	a.cur.mailbox = strp(a.str)
	a.add()
	if ret > 0 && a.ch() != ';' {
		for {
			a.mailbox() // a broken mailbox does not end the group
			if a.end() || a.ch() != ',' {
				break
			}
			a.p++
			if a.skipLWSP() <= 0 {
				ret = -1
				break
			}
		}
	}
	if ret >= 0 {
		if a.end() || a.ch() != ';' {
			ret = -1
		} else {
			a.p++
			ret = a.skipLWSP()
		}
	}
	a.add() // the end of the group
	if ret == 0 {
		return 0
	}
	return 1
}

func (a *addrParser) address() int {
	start := a.p
	ret := a.group()
	if ret < 0 {
		a.p = start
		ret = a.mailbox()
	}
	return ret
}

// parseAddressList parses an address header's value; nil when it has no
// address.
func parseAddressList(v []byte) []envAddress {
	a := &addrParser{b: v}
	if a.skipLWSP() <= 0 {
		return nil
	}
	for {
		if a.address() == 0 {
			break
		}
		if a.end() || a.ch() != ',' {
			break
		}
		a.p++
		if ret := a.skipLWSP(); ret <= 0 {
			if ret < 0 {
				a.addFixed() // ends with garbage
			}
			break
		}
	}
	return a.out
}

// --- reading an ENVELOPE back ---

// envelopeReader reads an ENVELOPE as envelopeWire writes it.
type envelopeReader struct {
	b     []byte
	p     int
	ok    bool
	check bool // only check the syntax: return no values
}

func (r *envelopeReader) lit(s string) {
	if r.ok && bytes.HasPrefix(r.b[r.p:], []byte(s)) {
		r.p += len(s)
		return
	}
	r.ok = false
}

// nstring reads NIL, a quoted string or a literal; nil for NIL.
func (r *envelopeReader) nstring() *string {
	if !r.ok || r.p >= len(r.b) {
		r.ok = false
		return nil
	}
	switch r.b[r.p] {
	case 'N':
		r.lit("NIL")
		return nil
	case '"':
		var s []byte
		for r.p++; r.p < len(r.b); r.p++ {
			c := r.b[r.p]
			switch {
			case c == '"':
				r.p++
				if r.check {
					return nil
				}
				return strp(s)
			case c == '\\':
				r.p++
				if r.p >= len(r.b) || (r.b[r.p] != '"' && r.b[r.p] != '\\') {
					r.ok = false
					return nil
				}
				if !r.check {
					s = append(s, r.b[r.p])
				}
			case c == '\r' || c == '\n' || c == 0:
				r.ok = false
				return nil
			case !r.check:
				s = append(s, c)
			}
		}
	case '{':
		end := bytes.IndexByte(r.b[r.p:], '}')
		if end < 0 {
			break
		}
		n, err := strconv.ParseUint(string(r.b[r.p+1:r.p+end]), 10, 31)
		r.p += end + 1
		if err != nil || !bytes.HasPrefix(r.b[r.p:], []byte("\r\n")) || uint64(len(r.b)-r.p-2) < n {
			break
		}
		r.p += 2
		s := r.b[r.p : r.p+int(n)]
		r.p += int(n)
		if bytes.IndexByte(s, 0) >= 0 {
			break
		}
		if r.check {
			return nil
		}
		return strp(s)
	}
	r.ok = false
	return nil
}

func (r *envelopeReader) addresses() []envAddress {
	if r.ok && r.p < len(r.b) && r.b[r.p] == 'N' {
		r.lit("NIL")
		return nil
	}
	r.lit("(")
	var out []envAddress
	for r.ok {
		r.lit("(")
		var a envAddress
		a.name = r.nstring()
		r.lit(" ")
		a.route = r.nstring()
		r.lit(" ")
		a.mailbox = r.nstring()
		r.lit(" ")
		a.domain = r.nstring()
		r.lit(")")
		if !r.check {
			out = append(out, a)
		}
		if r.p < len(r.b) && r.b[r.p] == ')' {
			r.p++
			return out
		}
	}
	return nil
}

// readEnvelope parses an ENVELOPE (RFC 3501 grammar: envelope, with
// addresses in a list without separators); false when b is not exactly
// one.
func readEnvelope(b []byte) (strs [envFields]*string, addrs [envFields][]envAddress, ok bool) {
	r := &envelopeReader{b: b, ok: true}
	r.lit("(")
	for i := range envFields {
		if i > 0 {
			r.lit(" ")
		}
		if i >= envFrom && i <= envBcc {
			addrs[i] = r.addresses()
		} else {
			strs[i] = r.nstring()
		}
	}
	r.lit(")")
	return strs, addrs, r.ok && r.p == len(b)
}

// validEnvelope reports whether b is one ENVELOPE; it allocates nothing.
func validEnvelope(b []byte) bool {
	r := &envelopeReader{b: b, ok: true, check: true}
	r.lit("(")
	for i := range envFields {
		if i > 0 {
			r.lit(" ")
		}
		if i >= envFrom && i <= envBcc {
			r.addresses()
		} else {
			r.nstring()
		}
	}
	r.lit(")")
	return r.ok && r.p == len(b)
}

// envWordDecoder decodes RFC 2047 words for plainEnvelope.
var envWordDecoder = mime.WordDecoder{CharsetReader: charset.Reader}

func decodeWords(s *string) string {
	if s == nil {
		return ""
	}
	if d, err := envWordDecoder.DecodeHeader(*s); err == nil {
		return d
	}
	return *s
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// msgIDs returns the ids inside angle brackets in s, or s itself when it
// has none.
func msgIDs(s string) []string {
	var ids []string
	for {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i:], '>')
		if j < 0 {
			break
		}
		ids = append(ids, s[i+1:i+j])
		s = s[i+j+1:]
	}
	if ids == nil && strings.TrimSpace(s) != "" {
		ids = []string{strings.TrimSpace(s)}
	}
	return ids
}

// plainEnvelope turns an encoded envelope into go-imap's form (decoded
// subject and names, a parsed date, ids without brackets), for
// connections that do not pass through the front's placeholder swap.
func plainEnvelope(wire []byte) *imap.Envelope {
	strs, addrs, ok := readEnvelope(wire)
	env := &imap.Envelope{}
	if !ok {
		return env
	}
	if d := strs[envDate]; d != nil {
		if t, err := mail.ParseDate(*d); err == nil {
			env.Date = t
		}
	}
	env.Subject = decodeWords(strs[envSubject])
	conv := func(l []envAddress) []imap.Address {
		var out []imap.Address
		for _, a := range l {
			out = append(out, imap.Address{Name: decodeWords(a.name), Mailbox: deref(a.mailbox), Host: deref(a.domain)})
		}
		return out
	}
	env.From = conv(addrs[envFrom])
	env.Sender = conv(addrs[envSender])
	env.ReplyTo = conv(addrs[envReplyTo])
	env.To = conv(addrs[envTo])
	env.Cc = conv(addrs[envCc])
	env.Bcc = conv(addrs[envBcc])
	if s := strs[envInReplyTo]; s != nil {
		env.InReplyTo = msgIDs(*s)
	}
	if s := strs[envMessageID]; s != nil {
		if ids := msgIDs(*s); len(ids) > 0 {
			env.MessageID = ids[0]
		}
	}
	return env
}

// wireOf returns the encoded envelope of env: what a placeholder carries,
// or env's values written in the same form (an envelope that was not
// made from a header, such as the empty one of a part without one).
func wireOf(env *imap.Envelope) []byte {
	if wire, ok := front.EnvelopeBytes(env); ok {
		return wire
	}
	if env == nil {
		env = &imap.Envelope{}
	}
	out := []byte{'('}
	if env.Date.IsZero() {
		out = append(out, "NIL"...)
	} else {
		out = appendString(out, []byte(env.Date.Format("Mon, 02 Jan 2006 15:04:05 -0700")))
	}
	out = append(out, ' ')
	if env.Subject == "" {
		out = append(out, "NIL"...)
	} else {
		out = appendForHumans(out, []byte(env.Subject))
	}
	conv := func(l []imap.Address) []envAddress {
		var out []envAddress
		for _, a := range l {
			ea := envAddress{mailbox: constp(a.Mailbox)}
			if a.Name != "" {
				ea.name = constp(a.Name)
			}
			if a.Host != "" {
				ea.domain = constp(a.Host)
			}
			out = append(out, ea)
		}
		return out
	}
	from := conv(env.From)
	for _, l := range [][]envAddress{from, conv(env.Sender), conv(env.ReplyTo), conv(env.To), conv(env.Cc), conv(env.Bcc)} {
		out = append(out, ' ')
		out = appendAddressList(out, l)
	}
	out = append(out, ' ')
	if len(env.InReplyTo) == 0 {
		out = append(out, "NIL"...)
	} else {
		out = appendString(out, []byte("<"+strings.Join(env.InReplyTo, "> <")+">"))
	}
	out = append(out, ' ')
	if env.MessageID == "" {
		out = append(out, "NIL"...)
	} else {
		out = appendString(out, []byte("<"+env.MessageID+">"))
	}
	return append(out, ')')
}
