package sortthread

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-message/charset"
)

// flagRecent is \Recent, which go-imap keeps internal (it is gone from
// IMAP4rev2). NEW, OLD and RECENT are expressed with it, as go-imap's own
// SEARCH parser does, so one matcher serves SEARCH, SORT and THREAD.
const flagRecent imap.Flag = "\\Recent"

// ParseSort parses the arguments of a SORT (or UID SORT) command: all that
// follows "SORT " up to, not including, the final CRLF, literals inline:
//
//	[RETURN (opts)] (sort-criteria) charset search-key *(SP search-key)
//
// A syntax error wraps ErrSyntax; an unknown charset wraps ErrBadCharset
// (reported only when the rest of the command is well-formed).
func ParseSort(args []byte) (*SortCommand, error) {
	l := &lexer{buf: args}
	cmd := &SortCommand{}
	if word, ok := l.peekWord(); ok && strings.EqualFold(word, "RETURN") {
		l.pos += len(word)
		if err := l.sp(); err != nil {
			return nil, err
		}
		ret, err := l.returnOptions()
		if err != nil {
			return nil, err
		}
		cmd.Return = ret
		if err := l.sp(); err != nil {
			return nil, err
		}
	}
	keys, err := l.sortCriteria()
	if err != nil {
		return nil, err
	}
	cmd.Keys = keys
	if err := l.sp(); err != nil {
		return nil, err
	}
	cmd.Charset, cmd.Criteria, err = l.charsetAndKeys()
	if err != nil {
		return nil, err
	}
	return cmd, nil
}

// ParseThread parses the arguments of a THREAD (or UID THREAD) command:
//
//	algorithm SP charset SP search-key *(SP search-key)
//
// An algorithm other than ORDEREDSUBJECT or REFERENCES wraps
// ErrUnknownAlgorithm (and ErrSyntax).
func ParseThread(args []byte) (*ThreadCommand, error) {
	l := &lexer{buf: args}
	alg, err := l.atom()
	if err != nil {
		return nil, err
	}
	cmd := &ThreadCommand{Algorithm: strings.ToUpper(alg)}
	switch cmd.Algorithm {
	case AlgorithmOrderedSubject, AlgorithmReferences:
	default:
		return nil, fmt.Errorf("%w: %w: %q", ErrSyntax, ErrUnknownAlgorithm, alg)
	}
	if err := l.sp(); err != nil {
		return nil, err
	}
	cmd.Charset, cmd.Criteria, err = l.charsetAndKeys()
	if err != nil {
		return nil, err
	}
	return cmd, nil
}

// ParseSearchKeys parses a search program (search-key *(SP search-key))
// whose strings are in the named charset, and decodes them to UTF-8.
func ParseSearchKeys(args []byte, charsetName string) (*imap.SearchCriteria, error) {
	dec, cerr := charsetDecoder(charsetName)
	l := &lexer{buf: args}
	p := &searchParser{l: l, decode: dec}
	c, err := p.program()
	if err != nil {
		return nil, err
	}
	if cerr != nil {
		return nil, cerr
	}
	return c, nil
}

// peekWord returns the atom at the current position without consuming it.
func (l *lexer) peekWord() (string, bool) {
	end := l.pos
	for end < len(l.buf) && isAtomChar(l.buf[end]) {
		end++
	}
	if end == l.pos {
		return "", false
	}
	return string(l.buf[l.pos:end]), true
}

// returnOptions reads "(" [opt *(SP opt)] ")".
func (l *lexer) returnOptions() ([]string, error) {
	if err := l.expect('('); err != nil {
		return nil, err
	}
	ret := []string{}
	for n := 0; l.peek() != ')'; n++ {
		if n > 0 {
			if err := l.sp(); err != nil {
				return nil, err
			}
		}
		opt, err := l.atom()
		if err != nil {
			return nil, err
		}
		opt = strings.ToUpper(opt)
		switch opt {
		case ReturnMin, ReturnMax, ReturnAll, ReturnCount:
		default:
			return nil, l.errorf("unsupported RETURN option %q", opt)
		}
		dup := false
		for _, o := range ret {
			dup = dup || o == opt
		}
		if !dup {
			ret = append(ret, opt)
		}
		if l.eof() {
			return nil, l.errorf("unterminated RETURN list")
		}
	}
	l.pos++
	if len(ret) == 0 {
		ret = []string{ReturnAll}
	}
	return ret, nil
}

// sortCriteria reads "(" sort-criterion *(SP sort-criterion) ")".
func (l *lexer) sortCriteria() ([]SortKey, error) {
	if err := l.expect('('); err != nil {
		return nil, err
	}
	var keys []SortKey
	reverse := false
	for {
		word, err := l.atom()
		if err != nil {
			return nil, err
		}
		word = strings.ToUpper(word)
		switch SortCriterion(word) {
		case SortArrival, SortCc, SortDate, SortFrom, SortSize, SortSubject, SortTo,
			SortDisplayFrom, SortDisplayTo:
			keys = append(keys, SortKey{Criterion: SortCriterion(word), Reverse: reverse})
			reverse = false
		default:
			if word != "REVERSE" || reverse {
				return nil, l.errorf("bad sort key %q", word)
			}
			reverse = true
		}
		if l.peek() == ')' {
			l.pos++
			break
		}
		if err := l.sp(); err != nil {
			return nil, err
		}
	}
	if reverse {
		return nil, l.errorf("REVERSE without a sort key")
	}
	return keys, nil
}

// charsetAndKeys reads "charset SP search-key *(SP search-key)" to the end.
func (l *lexer) charsetAndKeys() (string, *imap.SearchCriteria, error) {
	name, err := l.astring()
	if err != nil {
		return "", nil, err
	}
	if err := l.sp(); err != nil {
		return "", nil, err
	}
	dec, cerr := charsetDecoder(name)
	p := &searchParser{l: l, decode: dec}
	c, err := p.program()
	if err != nil {
		return "", nil, err
	}
	if cerr != nil {
		return "", nil, cerr
	}
	return name, c, nil
}

// charsetDecoder returns a function converting strings in the named charset
// to UTF-8. For an unknown charset it returns the identity and an error
// wrapping ErrBadCharset.
func charsetDecoder(name string) (func(string) (string, error), error) {
	identity := func(s string) (string, error) { return s, nil }
	switch strings.ToUpper(name) {
	case "UTF-8", "US-ASCII", "UTF8", "ASCII":
		return identity, nil
	}
	if _, err := charset.Reader(name, bytes.NewReader(nil)); err != nil {
		return identity, fmt.Errorf("%w: %q: %w", ErrBadCharset, name, err)
	}
	return func(s string) (string, error) {
		isASCII := true
		for i := 0; i < len(s) && isASCII; i++ {
			isASCII = s[i] < 0x80 && s[i] != 0x1b // ESC starts ISO-2022 shifts
		}
		if isASCII {
			return s, nil
		}
		r, err := charset.Reader(name, strings.NewReader(s))
		if err != nil {
			return "", fmt.Errorf("%w: %q: %w", ErrBadCharset, name, err)
		}
		out, err := io.ReadAll(r)
		if err != nil {
			return "", fmt.Errorf("%w: string not in charset %q: %w", ErrSyntax, name, err)
		}
		return string(out), nil
	}, nil
}

// searchParser turns search keys into an imap.SearchCriteria.
type searchParser struct {
	l      *lexer
	decode func(string) (string, error)
}

// program reads search-key *(SP search-key) up to the end of input.
func (p *searchParser) program() (*imap.SearchCriteria, error) {
	c := &imap.SearchCriteria{}
	for {
		if err := p.key(c, 0); err != nil {
			return nil, err
		}
		if p.l.eof() {
			return c, nil
		}
		if err := p.l.sp(); err != nil {
			return nil, err
		}
	}
}

// text reads an astring and decodes it from the command's charset.
func (p *searchParser) text() (string, error) {
	if err := p.l.sp(); err != nil {
		return "", err
	}
	s, err := p.l.astring()
	if err != nil {
		return "", err
	}
	return p.decode(s)
}

// key reads one search key and intersects it into c.
func (p *searchParser) key(c *imap.SearchCriteria, depth int) error {
	l := p.l
	if depth > maxDepth {
		return l.errorf("search program nested too deeply")
	}
	if l.peek() == '(' {
		l.pos++
		sub := &imap.SearchCriteria{}
		for {
			if err := p.key(sub, depth+1); err != nil {
				return err
			}
			if l.peek() == ')' {
				l.pos++
				break
			}
			if err := l.sp(); err != nil {
				return err
			}
		}
		andInto(c, sub)
		return nil
	}
	word, err := l.searchAtom()
	if err != nil {
		return err
	}
	name := strings.ToUpper(word)
	switch name {
	case "ALL":
	case "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "SEEN":
		c.Flag = append(c.Flag, systemFlag(name))
	case "UNANSWERED", "UNDELETED", "UNDRAFT", "UNFLAGGED", "UNSEEN":
		c.NotFlag = append(c.NotFlag, systemFlag(name[2:]))
	case "RECENT":
		c.Flag = append(c.Flag, flagRecent)
	case "NEW":
		c.Flag = append(c.Flag, flagRecent)
		c.NotFlag = append(c.NotFlag, imap.FlagSeen)
	case "OLD":
		c.NotFlag = append(c.NotFlag, flagRecent)
	case "KEYWORD", "UNKEYWORD":
		if err := l.sp(); err != nil {
			return err
		}
		kw, err := l.atom()
		if err != nil {
			return err
		}
		if name == "KEYWORD" {
			c.Flag = append(c.Flag, imap.Flag(kw))
		} else {
			c.NotFlag = append(c.NotFlag, imap.Flag(kw))
		}
	case "BCC", "CC", "FROM", "SUBJECT", "TO":
		v, err := p.text()
		if err != nil {
			return err
		}
		c.Header = append(c.Header, imap.SearchCriteriaHeaderField{Key: headerKey(name), Value: v})
	case "HEADER":
		if err := l.sp(); err != nil {
			return err
		}
		field, err := l.astring()
		if err != nil {
			return err
		}
		v, err := p.text()
		if err != nil {
			return err
		}
		c.Header = append(c.Header, imap.SearchCriteriaHeaderField{Key: field, Value: v})
	case "BODY":
		v, err := p.text()
		if err != nil {
			return err
		}
		c.Body = append(c.Body, v)
	case "TEXT":
		v, err := p.text()
		if err != nil {
			return err
		}
		c.Text = append(c.Text, v)
	case "BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE":
		if err := l.sp(); err != nil {
			return err
		}
		d, err := l.date()
		if err != nil {
			return err
		}
		var dc imap.SearchCriteria
		next := d.AddDate(0, 0, 1)
		switch name {
		case "BEFORE":
			dc.Before = d
		case "ON":
			dc.Since, dc.Before = d, next
		case "SINCE":
			dc.Since = d
		case "SENTBEFORE":
			dc.SentBefore = d
		case "SENTON":
			dc.SentSince, dc.SentBefore = d, next
		case "SENTSINCE":
			dc.SentSince = d
		}
		andInto(c, &dc)
	case "LARGER", "SMALLER":
		if err := l.sp(); err != nil {
			return err
		}
		n, err := l.number64()
		if err != nil {
			return err
		}
		if name == "LARGER" {
			andInto(c, &imap.SearchCriteria{Larger: n})
		} else if n == 0 {
			// Nothing is smaller than 0 octets; Smaller 0 would mean "no
			// limit", so say "NOT ALL" instead.
			c.Not = append(c.Not, imap.SearchCriteria{})
		} else {
			andInto(c, &imap.SearchCriteria{Smaller: n})
		}
	case "NOT":
		if err := l.sp(); err != nil {
			return err
		}
		var sub imap.SearchCriteria
		if err := p.key(&sub, depth+1); err != nil {
			return err
		}
		c.Not = append(c.Not, sub)
	case "OR":
		var pair [2]imap.SearchCriteria
		for i := range pair {
			if err := l.sp(); err != nil {
				return err
			}
			if err := p.key(&pair[i], depth+1); err != nil {
				return err
			}
		}
		c.Or = append(c.Or, pair)
	case "UID":
		if err := l.sp(); err != nil {
			return err
		}
		w, err := l.searchAtom()
		if err != nil {
			return err
		}
		set, err := parseNumSet(w)
		if err != nil {
			return fmt.Errorf("%w: UID %q: %w", ErrSyntax, w, err)
		}
		c.UID = append(c.UID, imap.UIDSet(toUIDRanges(set)))
	default:
		set, err := parseNumSet(word)
		if err != nil {
			return fmt.Errorf("%w: unknown search key %q", ErrSyntax, word)
		}
		c.SeqNum = append(c.SeqNum, set)
	}
	return nil
}

func systemFlag(name string) imap.Flag {
	return imap.Flag("\\" + name[:1] + strings.ToLower(name[1:]))
}

// headerKey gives the header field name for BCC, CC, FROM, SUBJECT and TO,
// spelled as go-imap's own SEARCH parser spells it.
func headerKey(name string) string {
	switch name {
	case "BCC":
		return "Bcc"
	case "CC":
		return "Cc"
	case "FROM":
		return "From"
	case "SUBJECT":
		return "Subject"
	default:
		return "To"
	}
}

func toUIDRanges(s imap.SeqSet) []imap.UIDRange {
	out := make([]imap.UIDRange, len(s))
	for i, r := range s {
		out[i] = imap.UIDRange{Start: imap.UID(r.Start), Stop: imap.UID(r.Stop)}
	}
	return out
}

// parseNumSet parses a sequence-set ("1,3:5,7:*"). "$" and 0 are refused.
func parseNumSet(s string) (imap.SeqSet, error) {
	var set imap.SeqSet
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, ":")
		a, err := parseSeqNumber(lo)
		if err != nil {
			return nil, err
		}
		if !isRange {
			set.AddNum(a)
			continue
		}
		b, err := parseSeqNumber(hi)
		if err != nil {
			return nil, err
		}
		set.AddRange(a, b)
	}
	return set, nil
}

// parseSeqNumber parses nz-number or "*" (returned as 0).
func parseSeqNumber(s string) (uint32, error) {
	if s == "*" {
		return 0, nil
	}
	if s == "" || s[0] < '1' || s[0] > '9' {
		return 0, fmt.Errorf("bad number %q", s)
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("bad number %q: %w", s, err)
	}
	return uint32(n), nil
}

// number64 reads a decimal number up to 2^63-1.
func (l *lexer) number64() (int64, error) {
	start := l.pos
	for l.pos < len(l.buf) && l.buf[l.pos] >= '0' && l.buf[l.pos] <= '9' {
		l.pos++
	}
	if start == l.pos {
		return 0, l.errorf("expected number")
	}
	n, err := strconv.ParseInt(string(l.buf[start:l.pos]), 10, 64)
	if err != nil {
		return 0, l.errorf("number out of range")
	}
	return n, nil
}

var monthNames = [...]string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}

// date reads date = date-text / DQUOTE date-text DQUOTE, with
// date-text = 1*2DIGIT "-" 3ALPHA "-" 4DIGIT. The result is midnight UTC.
func (l *lexer) date() (time.Time, error) {
	var s string
	var err error
	if l.peek() == '"' {
		s, err = l.quoted()
	} else {
		s, err = l.atom()
	}
	if err != nil {
		return time.Time{}, err
	}
	d, err := parseIMAPDate(s)
	if err != nil {
		return time.Time{}, l.errorf("bad date %q", s)
	}
	return d, nil
}

func parseIMAPDate(s string) (time.Time, error) {
	bad := fmt.Errorf("%w: bad date %q", ErrSyntax, s)
	dayStr, rest, ok := strings.Cut(s, "-")
	if !ok || len(dayStr) < 1 || len(dayStr) > 2 {
		return time.Time{}, bad
	}
	monStr, yearStr, ok := strings.Cut(rest, "-")
	if !ok || len(monStr) != 3 || len(yearStr) != 4 {
		return time.Time{}, bad
	}
	day, err := strconv.Atoi(dayStr)
	if err != nil || day < 1 || day > 31 || dayStr[0] == '+' || dayStr[0] == '-' {
		return time.Time{}, bad
	}
	year, err := strconv.Atoi(yearStr)
	if err != nil || yearStr[0] < '0' || yearStr[0] > '9' {
		return time.Time{}, bad
	}
	month := 0
	for i, m := range monthNames {
		if strings.EqualFold(m, monStr) {
			month = i + 1
		}
	}
	if month == 0 {
		return time.Time{}, bad
	}
	t := time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC)
	if t.Day() != day { // 31-Feb-2024
		return time.Time{}, bad
	}
	return t, nil
}

// andInto intersects src into dst. Unlike imap.SearchCriteria.And it keeps
// a SMALLER limit when src has none.
func andInto(dst, src *imap.SearchCriteria) {
	dst.SeqNum = append(dst.SeqNum, src.SeqNum...)
	dst.UID = append(dst.UID, src.UID...)
	dst.Since = laterOf(dst.Since, src.Since)
	dst.SentSince = laterOf(dst.SentSince, src.SentSince)
	dst.Before = earlierOf(dst.Before, src.Before)
	dst.SentBefore = earlierOf(dst.SentBefore, src.SentBefore)
	dst.Header = append(dst.Header, src.Header...)
	dst.Body = append(dst.Body, src.Body...)
	dst.Text = append(dst.Text, src.Text...)
	dst.Flag = append(dst.Flag, src.Flag...)
	dst.NotFlag = append(dst.NotFlag, src.NotFlag...)
	if src.Larger > dst.Larger {
		dst.Larger = src.Larger
	}
	if src.Smaller != 0 && (dst.Smaller == 0 || src.Smaller < dst.Smaller) {
		dst.Smaller = src.Smaller
	}
	dst.Not = append(dst.Not, src.Not...)
	dst.Or = append(dst.Or, src.Or...)
	if src.ModSeq != nil && dst.ModSeq == nil {
		dst.ModSeq = src.ModSeq
	}
}

func laterOf(a, b time.Time) time.Time {
	if a.IsZero() || b.After(a) {
		return b
	}
	return a
}

func earlierOf(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}
