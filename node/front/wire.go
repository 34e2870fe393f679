package front

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Errors of the line and command readers.
var (
	// errLineTooLong: a command line exceeded the configured limit. The
	// line has been read up to its end (and any non-synchronizing literal
	// it announced has been dropped).
	errLineTooLong = errors.New("command line too long")
	// errLiteralTooBig: a literal exceeded the limit for its command.
	errLiteralTooBig = errors.New("literal too big")
)

// literalHeader describes a literal announced at the end of a line:
// "{12}" (synchronizing) or "{12+}" (non-synchronizing, LITERAL+).
type literalHeader struct {
	size    int64
	nonSync bool
}

// maxLiteralDigits bounds the length of a literal's size: 18 digits fit in
// an int64.
const maxLiteralDigits = 18

// parseLiteralSuffix reports the literal announced at the end of line
// (given without its CRLF), if any.
func parseLiteralSuffix(line []byte) (literalHeader, bool) {
	n := len(line)
	if n < 3 || line[n-1] != '}' {
		return literalHeader{}, false
	}
	end := n - 1
	var h literalHeader
	if line[end-1] == '+' {
		h.nonSync = true
		end--
	}
	start := end
	for start > 0 && line[start-1] >= '0' && line[start-1] <= '9' {
		start--
	}
	if start == end || start == 0 || line[start-1] != '{' || end-start > maxLiteralDigits {
		return literalHeader{}, false
	}
	for _, c := range line[start:end] {
		h.size = h.size*10 + int64(c-'0')
	}
	return h, true
}

// trimCRLF removes the line ending (LF or CRLF) from line.
func trimCRLF(line []byte) []byte {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	return bytes.TrimSuffix(line, []byte{'\r'})
}

// lineReader reads command lines and literals from a client. It is used by
// one goroutine at a time.
type lineReader struct {
	br      *bufio.Reader
	maxLine int // longest accepted line, without its CRLF
	buf     []byte
}

// tailKeep is how many bytes of an over-long line are kept to find a
// literal header at its end.
const tailKeep = 2 + maxLiteralDigits + 4

// readLine reads one line and returns it without its line ending. The
// returned slice is valid until the next call. A line longer than maxLine
// is read to its end and reported with errLineTooLong; the returned slice
// then holds the line's last bytes, so the caller can still see whether it
// announced a literal.
func (r *lineReader) readLine() ([]byte, error) {
	r.buf = r.buf[:0]
	tooLong := false
	for {
		chunk, err := r.br.ReadSlice('\n')
		r.buf = append(r.buf, chunk...)
		if !tooLong && len(trimCRLF(r.buf)) > r.maxLine {
			tooLong = true
		}
		if tooLong && len(r.buf) > tailKeep {
			// Keep only the tail of the line.
			r.buf = append(r.buf[:0], r.buf[len(r.buf)-tailKeep:]...)
		}
		switch {
		case err == nil:
			if tooLong {
				return trimCRLF(r.buf), errLineTooLong
			}
			return trimCRLF(r.buf), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(r.buf) > 0:
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

// lineBuffered reports whether a whole line is already buffered, so that
// the next readLine returns without waiting for the client.
func (r *lineReader) lineBuffered() bool {
	b, _ := r.br.Peek(r.br.Buffered())
	return bytes.IndexByte(b, '\n') >= 0
}

// discard drops n bytes of input.
func (r *lineReader) discard(n int64) error {
	for n > 0 {
		step := n
		if step > 1<<30 {
			step = 1 << 30
		}
		d, err := r.br.Discard(int(step))
		n -= int64(d)
		if err != nil {
			return err
		}
	}
	return nil
}

// discardCommand drops the rest of a command whose last line read ended
// with the literal h, after the server refused that literal: a
// synchronizing literal is never sent (the client got no "+"), a
// non-synchronizing one is already on its way and is dropped with the rest
// of the command, including further literals. At most limit bytes are
// dropped; beyond that the connection should be closed (the error says so).
func (r *lineReader) discardCommand(h literalHeader, limit int64) error {
	for h.nonSync {
		if h.size > limit {
			return fmt.Errorf("dropping a %d-byte literal: %w", h.size, errLiteralTooBig)
		}
		limit -= h.size
		if err := r.discard(h.size); err != nil {
			return err
		}
		line, err := r.readLine()
		if err != nil && !errors.Is(err, errLineTooLong) {
			return err
		}
		var ok bool
		if h, ok = parseLiteralSuffix(line); !ok {
			return nil
		}
	}
	return nil
}

// commandLine is the start of a command: its tag, its name (upper-cased,
// "UID FETCH" for UID commands) and where its arguments start in the line.
type commandLine struct {
	tag  string
	name string
	args []byte // after the name and one SP; nil when there are none
}

// isTagChar reports whether c may appear in a tag (an atom character other
// than '+').
func isTagChar(c byte) bool {
	return isAtomChar(c) && c != '+'
}

// isAtomChar follows RFC 3501's ATOM-CHAR: any CHAR except atom-specials.
func isAtomChar(c byte) bool {
	if c <= ' ' || c >= 0x7f {
		return false
	}
	switch c {
	case '(', ')', '{', '%', '*', '"', '\\', ']':
		return false
	}
	return true
}

// splitCommand parses the start of a command line. It accepts what
// go-imap accepts: a tag, one SP, an atom; for UID, one SP and a second
// atom.
func splitCommand(line []byte) (commandLine, bool) {
	var c commandLine
	i := 0
	for i < len(line) && isTagChar(line[i]) {
		i++
	}
	if i == 0 || i >= len(line) || line[i] != ' ' {
		return c, false
	}
	c.tag = string(line[:i])
	rest := line[i+1:]
	name, rest, ok := splitAtom(rest)
	if !ok {
		return c, false
	}
	c.name = strings.ToUpper(name)
	if c.name == "UID" {
		if len(rest) == 0 {
			return c, false
		}
		sub, r2, ok := splitAtom(rest)
		if !ok {
			return c, false
		}
		c.name = "UID " + strings.ToUpper(sub)
		rest = r2
	}
	c.args = rest
	return c, true
}

// splitAtom takes one atom from the start of b (after an SP when b starts
// with one, as it does for all but the first) and returns the rest after
// the SP that follows it (nil when the atom ends the line).
func splitAtom(b []byte) (string, []byte, bool) {
	i := 0
	for i < len(b) && isAtomChar(b[i]) {
		i++
	}
	if i == 0 {
		return "", nil, false
	}
	atom := string(b[:i])
	if i == len(b) {
		return atom, nil, true
	}
	if b[i] != ' ' {
		return "", nil, false
	}
	return atom, b[i+1:], true
}

// argParser reads IMAP values from a command's raw arguments, in which
// literals appear inline as on the wire ("{5}\r\nhello").
type argParser struct {
	b   []byte
	pos int
}

func (p *argParser) atEnd() bool { return p.pos >= len(p.b) }

// sp consumes one space.
func (p *argParser) sp() bool {
	if p.pos < len(p.b) && p.b[p.pos] == ' ' {
		p.pos++
		return true
	}
	return false
}

func (p *argParser) peek() byte {
	if p.pos < len(p.b) {
		return p.b[p.pos]
	}
	return 0
}

// atom reads an atom.
func (p *argParser) atom() (string, bool) {
	start := p.pos
	for p.pos < len(p.b) && isAtomChar(p.b[p.pos]) {
		p.pos++
	}
	return string(p.b[start:p.pos]), p.pos > start
}

// quoted reads a quoted string.
func (p *argParser) quoted() (string, bool) {
	if p.peek() != '"' {
		return "", false
	}
	var sb strings.Builder
	for i := p.pos + 1; i < len(p.b); i++ {
		switch c := p.b[i]; c {
		case '"':
			p.pos = i + 1
			return sb.String(), true
		case '\\':
			if i+1 >= len(p.b) || (p.b[i+1] != '"' && p.b[i+1] != '\\') {
				return "", false
			}
			i++
			sb.WriteByte(p.b[i])
		case '\r', '\n':
			return "", false
		default:
			sb.WriteByte(c)
		}
	}
	return "", false
}

// literal reads an inline literal: "{N}" or "{N+}", CRLF, N bytes.
func (p *argParser) literal() (string, bool) {
	if p.peek() != '{' {
		return "", false
	}
	i := p.pos + 1
	var n int64
	digits := 0
	for i < len(p.b) && p.b[i] >= '0' && p.b[i] <= '9' && digits < maxLiteralDigits {
		n = n*10 + int64(p.b[i]-'0')
		i++
		digits++
	}
	if digits == 0 {
		return "", false
	}
	if i < len(p.b) && p.b[i] == '+' {
		i++
	}
	if i+3 > len(p.b) || p.b[i] != '}' || p.b[i+1] != '\r' || p.b[i+2] != '\n' {
		return "", false
	}
	i += 3
	if n > int64(len(p.b)-i) {
		return "", false
	}
	p.pos = i + int(n)
	return string(p.b[i:p.pos]), true
}

// astring reads an atom (with ']' allowed), a quoted string or a literal.
func (p *argParser) astring() (string, bool) {
	switch p.peek() {
	case '"':
		return p.quoted()
	case '{':
		return p.literal()
	}
	start := p.pos
	for p.pos < len(p.b) && (isAtomChar(p.b[p.pos]) || p.b[p.pos] == ']') {
		p.pos++
	}
	return string(p.b[start:p.pos]), p.pos > start
}

// nstring reads NIL, a quoted string or a literal; isNil reports NIL.
func (p *argParser) nstring() (s string, isNil, ok bool) {
	switch p.peek() {
	case '"':
		s, ok = p.quoted()
		return s, false, ok
	case '{':
		s, ok = p.literal()
		return s, false, ok
	}
	a, ok := p.atom()
	if ok && strings.EqualFold(a, "NIL") {
		return "", true, true
	}
	return "", false, false
}

// quote writes s as an IMAP quoted string, or as NIL's alternative: a
// literal when s holds bytes a quoted string cannot carry.
func quote(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\r' || c == '\n' || c == 0 || c >= 0x80 {
			dst = fmt.Appendf(dst, "{%d}\r\n", len(s))
			return append(dst, s...)
		}
	}
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, s[i])
	}
	return append(dst, '"')
}

// readArgs reads the rest of a command whose first line's arguments are
// args: every literal announced at a line's end, up to max bytes in total
// (calling cont before reading a synchronizing one, which must send "+"),
// and the lines that follow them. It returns the arguments with the
// literals inline, as on the wire. When a literal would pass max it
// returns errLiteralTooBig and that literal's header, having read nothing
// of it: the caller replies and calls discardCommand.
func (r *lineReader) readArgs(args []byte, max int64, cont func() error) ([]byte, literalHeader, error) {
	raw := append([]byte(nil), args...)
	last := raw // the last line read: only it may announce a literal
	var total int64
	for {
		h, ok := parseLiteralSuffix(last)
		if !ok {
			return raw, h, nil
		}
		total += h.size
		if total > max {
			return nil, h, errLiteralTooBig
		}
		if !h.nonSync {
			if err := cont(); err != nil {
				return nil, h, err
			}
		}
		raw = append(raw, '\r', '\n')
		start := len(raw)
		raw = append(raw, make([]byte, h.size)...)
		if _, err := io.ReadFull(r.br, raw[start:]); err != nil {
			return nil, h, err
		}
		line, err := r.readLine()
		if err != nil {
			return nil, h, err
		}
		start = len(raw)
		raw = append(raw, line...)
		last = raw[start:]
	}
}
