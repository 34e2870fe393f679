// Package difftest compares nfsimap with Dovecot 2.3 on the same generated
// spool: the same commands go to both servers over a small raw IMAP client,
// and the answers are compared as parsed IMAP data (so that the free parts
// of the wire syntax, such as a quoted string against a literal, do not
// count as differences). Test support only.
//
// The tests (run as root with Debian's dovecot-imapd installed; skipped
// otherwise, failed when CI is set) generate one corpus per test with
// internal/corpus, give each server its own copy, map messages between
// the servers by INTERNALDATE (the corpus gives every message its own
// mtime), and compare:
//
//   - TestFetchSearchDifferential (300 messages): FLAGS, INTERNALDATE,
//     RFC822.SIZE, ENVELOPE, BODYSTRUCTURE, BODY[] and its sections and
//     partials, BINARY[1] with BINARY.SIZE[1], and UID SEARCH for a list
//     of criteria.
//   - TestSortThreadDifferential (2000 messages): UID SORT for single and
//     multiple keys, UID THREAD REFERENCES and ORDEREDSUBJECT.
//
// Every difference is explained by a rule in knownDifferences (kept on
// purpose, or a Dovecot quirk) or openBugs (nfsimap is wrong: the
// comparison skips with "open bug: ..."), or it fails the test.
package difftest

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Kind says what an IMAP value is.
type Kind int

// The kinds of IMAP values in a server response.
const (
	Atom   Kind = iota // atom or number, including section specs such as BODY[1.MIME]<0>
	String             // quoted string or literal
	Nil                // NIL
	List               // parenthesized list
)

// Value is one parsed IMAP value. For Atom and String, Str holds the text
// (a literal's bytes unchanged); for List, List holds the elements.
type Value struct {
	Kind Kind
	Str  string
	List []Value
}

// IsNil reports whether v is NIL.
func (v Value) IsNil() bool { return v.Kind == Nil }

// Number returns the value of a numeric atom.
func (v Value) Number() (uint64, error) {
	if v.Kind != Atom {
		return 0, fmt.Errorf("difftest: %s is not a number", v)
	}
	n, err := strconv.ParseUint(v.Str, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("difftest: %w", err)
	}
	return n, nil
}

// String writes v back in IMAP syntax (strings always quoted, with
// control characters escaped Go-style so the result prints on one line).
func (v Value) String() string {
	var b strings.Builder
	v.write(&b)
	return b.String()
}

func (v Value) write(b *strings.Builder) {
	switch v.Kind {
	case Atom:
		b.WriteString(v.Str)
	case Nil:
		b.WriteString("NIL")
	case String:
		b.WriteString(strconv.Quote(v.Str))
	case List:
		b.WriteByte('(')
		for i, e := range v.List {
			if i > 0 {
				b.WriteByte(' ')
			}
			e.write(b)
		}
		b.WriteByte(')')
	}
}

// Equal reports whether a and b are the same value. Atoms compare
// case-sensitively; callers normalise first where case is free.
func Equal(a, b Value) bool {
	if a.Kind != b.Kind || a.Str != b.Str || len(a.List) != len(b.List) {
		return false
	}
	for i := range a.List {
		if !Equal(a.List[i], b.List[i]) {
			return false
		}
	}
	return true
}

// ErrSyntax is returned for a response that does not parse.
var ErrSyntax = errors.New("difftest: response syntax error")

// ParseValues parses a sequence of space-separated IMAP values, as found in
// the rest of an untagged response after its name ("* 3 FETCH (...)": the
// "(...)" part). Literals must already be inline in the form "{N}\r\n"
// followed by N bytes, as they come on the wire.
func ParseValues(data []byte) ([]Value, error) {
	p := &parser{data: data}
	var out []Value
	for {
		p.skipSpaces()
		if p.pos >= len(p.data) {
			return out, nil
		}
		v, err := p.value(0)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
}

type parser struct {
	data []byte
	pos  int
}

// maxDepth bounds list nesting (BODYSTRUCTURE of deep MIME trees stays far
// below it).
const maxDepth = 100

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("%w at byte %d: %s", ErrSyntax, p.pos, fmt.Sprintf(format, args...))
}

func (p *parser) skipSpaces() {
	for p.pos < len(p.data) && p.data[p.pos] == ' ' {
		p.pos++
	}
}

func (p *parser) value(depth int) (Value, error) {
	if depth > maxDepth {
		return Value{}, p.errorf("lists nested too deep")
	}
	if p.pos >= len(p.data) {
		return Value{}, p.errorf("value expected")
	}
	switch c := p.data[p.pos]; c {
	case '(':
		p.pos++
		v := Value{Kind: List, List: []Value{}}
		for {
			p.skipSpaces()
			if p.pos >= len(p.data) {
				return Value{}, p.errorf("unclosed list")
			}
			if p.data[p.pos] == ')' {
				p.pos++
				return v, nil
			}
			e, err := p.value(depth + 1)
			if err != nil {
				return Value{}, err
			}
			v.List = append(v.List, e)
		}
	case '"':
		return p.quoted()
	case '{', '~':
		return p.literal()
	case ')':
		return Value{}, p.errorf("unexpected ')'")
	default:
		return p.atom()
	}
}

func (p *parser) quoted() (Value, error) {
	p.pos++ // opening quote
	var b []byte
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		p.pos++
		switch c {
		case '"':
			return Value{Kind: String, Str: string(b)}, nil
		case '\\':
			if p.pos >= len(p.data) {
				return Value{}, p.errorf("unfinished escape")
			}
			b = append(b, p.data[p.pos])
			p.pos++
		case '\r', '\n':
			return Value{}, p.errorf("line end in quoted string")
		default:
			b = append(b, c)
		}
	}
	return Value{}, p.errorf("unclosed quoted string")
}

// literal reads "{N}\r\n" (or "~{N}\r\n" for literal8) and N bytes.
func (p *parser) literal() (Value, error) {
	if p.data[p.pos] == '~' {
		p.pos++
		if p.pos >= len(p.data) || p.data[p.pos] != '{' {
			return Value{}, p.errorf("'{' expected after '~'")
		}
	}
	p.pos++ // '{'
	end := p.pos
	for end < len(p.data) && p.data[end] >= '0' && p.data[end] <= '9' {
		end++
	}
	n, err := strconv.ParseUint(string(p.data[p.pos:end]), 10, 31)
	if err != nil {
		return Value{}, p.errorf("bad literal size: %v", err)
	}
	if end+3 > len(p.data) || string(p.data[end:end+3]) != "}\r\n" {
		return Value{}, p.errorf("'}\\r\\n' expected after literal size")
	}
	start := end + 3
	if uint64(len(p.data)-start) < n {
		return Value{}, p.errorf("literal of %d bytes truncated", n)
	}
	p.pos = start + int(n)
	return Value{Kind: String, Str: string(p.data[start:p.pos])}, nil
}

// atom reads an atom. A '[' starts a section spec that runs to the next
// ']' whatever it holds ("BODY[HEADER.FIELDS (FROM)]"), and a '<' right
// after it an origin ("<0>").
func (p *parser) atom() (Value, error) {
	start := p.pos
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		switch {
		case c == '[':
			end := bytes.IndexByte(p.data[p.pos:], ']')
			if end < 0 {
				return Value{}, p.errorf("unclosed '['")
			}
			p.pos += end + 1
			if p.pos < len(p.data) && p.data[p.pos] == '<' {
				end := bytes.IndexByte(p.data[p.pos:], '>')
				if end < 0 {
					return Value{}, p.errorf("unclosed '<'")
				}
				p.pos += end + 1
			}
			continue
		case c == ' ' || c == '(' || c == ')' || c == '"' || c == '{' || c < ' ' || c == 0x7f:
		default:
			p.pos++
			continue
		}
		break
	}
	if p.pos == start {
		return Value{}, p.errorf("unexpected byte %q", p.data[p.pos])
	}
	s := string(p.data[start:p.pos])
	if strings.EqualFold(s, "NIL") {
		return Value{Kind: Nil}, nil
	}
	return Value{Kind: Atom, Str: s}, nil
}
