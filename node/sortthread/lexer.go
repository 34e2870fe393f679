package sortthread

import (
	"fmt"
	"strconv"
)

// maxDepth bounds the nesting of parentheses, NOT and OR in a search
// program, so that hostile input cannot exhaust the stack.
const maxDepth = 100

// lexer reads IMAP command arguments from a byte slice. Literals are
// expected inline, as on the wire: "{5}\r\nhello" or "{5+}\r\nhello".
type lexer struct {
	buf []byte
	pos int
}

func (l *lexer) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: at offset %d: %s", ErrSyntax, l.pos, fmt.Sprintf(format, args...))
}

func (l *lexer) eof() bool { return l.pos >= len(l.buf) }

func (l *lexer) peek() byte {
	if l.pos >= len(l.buf) {
		return 0
	}
	return l.buf[l.pos]
}

// sp consumes exactly one space.
func (l *lexer) sp() error {
	if l.peek() != ' ' {
		return l.errorf("expected space")
	}
	l.pos++
	return nil
}

// expect consumes the byte c.
func (l *lexer) expect(c byte) error {
	if l.peek() != c {
		return l.errorf("expected %q", c)
	}
	l.pos++
	return nil
}

// isAtomChar reports whether c may appear in an atom. 8-bit bytes are
// accepted so that UTF-8 search strings may be written as atoms.
func isAtomChar(c byte) bool {
	switch {
	case c <= 0x1f || c == 0x7f:
		return false
	case c == '(' || c == ')' || c == '{' || c == ' ' || c == '%' || c == '*' ||
		c == '"' || c == '\\' || c == ']':
		return false
	}
	return true
}

// isAStringChar reports whether c may appear in the atom form of an
// astring (ATOM-CHAR / resp-specials).
func isAStringChar(c byte) bool { return isAtomChar(c) || c == ']' }

// atom reads a non-empty atom.
func (l *lexer) atom() (string, error) {
	start := l.pos
	for l.pos < len(l.buf) && isAtomChar(l.buf[l.pos]) {
		l.pos++
	}
	if l.pos == start {
		return "", l.errorf("expected atom")
	}
	return string(l.buf[start:l.pos]), nil
}

// searchAtom reads a search key name or a sequence set: an atom that may
// also contain "*".
func (l *lexer) searchAtom() (string, error) {
	start := l.pos
	for l.pos < len(l.buf) && (isAtomChar(l.buf[l.pos]) || l.buf[l.pos] == '*') {
		l.pos++
	}
	if l.pos == start {
		return "", l.errorf("expected search key")
	}
	return string(l.buf[start:l.pos]), nil
}

// astring reads an atom, a quoted string or a literal.
func (l *lexer) astring() (string, error) {
	switch l.peek() {
	case '"':
		return l.quoted()
	case '{':
		return l.literal()
	}
	start := l.pos
	for l.pos < len(l.buf) && isAStringChar(l.buf[l.pos]) {
		l.pos++
	}
	if l.pos == start {
		return "", l.errorf("expected string")
	}
	return string(l.buf[start:l.pos]), nil
}

// quoted reads a quoted string; the only escapes are \\ and \".
func (l *lexer) quoted() (string, error) {
	if err := l.expect('"'); err != nil {
		return "", err
	}
	var out []byte
	for {
		if l.eof() {
			return "", l.errorf("unterminated quoted string")
		}
		c := l.buf[l.pos]
		l.pos++
		switch c {
		case '"':
			return string(out), nil
		case '\\':
			if l.eof() {
				return "", l.errorf("unterminated quoted string")
			}
			e := l.buf[l.pos]
			if e != '\\' && e != '"' {
				return "", l.errorf("bad escape in quoted string")
			}
			l.pos++
			out = append(out, e)
		case '\r', '\n', 0:
			return "", l.errorf("CR, LF or NUL in quoted string")
		default:
			out = append(out, c)
		}
	}
}

// literal reads "{n}\r\n" or "{n+}\r\n" followed by n bytes.
func (l *lexer) literal() (string, error) {
	if err := l.expect('{'); err != nil {
		return "", err
	}
	start := l.pos
	for l.pos < len(l.buf) && l.buf[l.pos] >= '0' && l.buf[l.pos] <= '9' {
		l.pos++
	}
	if l.pos == start || l.pos-start > 10 {
		return "", l.errorf("bad literal length")
	}
	n, err := strconv.ParseUint(string(l.buf[start:l.pos]), 10, 32)
	if err != nil {
		return "", l.errorf("bad literal length")
	}
	if l.peek() == '+' {
		l.pos++
	}
	if err := l.expect('}'); err != nil {
		return "", err
	}
	if err := l.expect('\r'); err != nil {
		return "", err
	}
	if err := l.expect('\n'); err != nil {
		return "", err
	}
	if uint64(len(l.buf)-l.pos) < n {
		return "", l.errorf("literal shorter than announced")
	}
	s := string(l.buf[l.pos : l.pos+int(n)])
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return "", l.errorf("NUL in literal")
		}
	}
	l.pos += int(n)
	return s, nil
}
