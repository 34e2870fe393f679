package sortthread

import "strings"

// firstAddress is what SORT needs of the first address of an address
// header: the local part (addr-mailbox), the domain, and the display name
// (still RFC 2047 encoded).
type firstAddress struct {
	mailbox, domain, name string
	group                 bool // mailbox is a group name
	ok                    bool // an address (or group) was found
}

// Placeholders for the parts of a broken address, as Dovecot's address
// parser fills them in (and so they sort the same).
const (
	missingMailbox = "MISSING_MAILBOX"
	missingDomain  = "MISSING_DOMAIN"
)

// fill puts the placeholders into empty parts of a (non-group) address.
func (a firstAddress) fill() firstAddress {
	if a.mailbox == "" {
		a.mailbox = missingMailbox
	}
	if a.domain == "" {
		a.domain = missingDomain
	}
	a.ok = true
	return a
}

// parseFirstAddress leniently parses the first address of an address list
// header. For a group ("name: a@b, c@d;") it returns the group name as the
// mailbox, as the IMAP envelope's group marker does. Missing parts are
// filled in as Dovecot does: "<>" is MISSING_MAILBOX@MISSING_DOMAIN, a
// bare word is a mailbox without domain, several bare words are a
// display name without address.
func parseFirstAddress(s string) firstAddress {
	var words []string // phrase words so far (quoted strings unquoted)
	var comment string // the last comment seen after a word
	bare := func() firstAddress {
		if len(words) == 1 {
			return firstAddress{mailbox: words[0], name: comment}.fill()
		}
		return firstAddress{name: strings.Join(words, " ")}.fill()
	}
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '(':
			var text string
			text, i = readComment(s, i)
			if len(words) > 0 {
				comment = text
			}
		case c == '"':
			var text string
			text, i = readQuoted(s, i)
			words = append(words, text)
		case c == ',':
			if len(words) > 0 {
				return bare()
			}
			i++
		case c == '<':
			a := parseAngleAddr(s, i+1)
			a.name = strings.Join(words, " ")
			return a.fill()
		case c == ':':
			name := strings.Join(words, " ")
			return firstAddress{mailbox: name, group: true, ok: true}
		case c == '@':
			local := strings.Join(words, "")
			domain, rest := readDomain(s, i+1)
			return firstAddress{mailbox: local, domain: domain, name: trailingComment(rest)}.fill()
		case c == ';' || c == '>' || c == ')':
			i++
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n()\"<>,:;@", rune(s[j])) {
				j++
			}
			if j == i { // cannot happen with the cases above; never stall
				j++
			}
			words = append(words, s[i:j])
			i = j
		}
	}
	if len(words) > 0 {
		return bare()
	}
	return firstAddress{}
}

// parseAngleAddr parses the inside of "<[route:]local@domain>" starting at
// i (just after "<").
func parseAngleAddr(s string, i int) firstAddress {
	end := strings.IndexByte(s[i:], '>')
	var inner string
	if end < 0 {
		inner = s[i:]
	} else {
		inner = s[i : i+end]
	}
	// Drop a source route ("@a,@b:").
	if strings.HasPrefix(strings.TrimSpace(inner), "@") {
		if k := strings.IndexByte(inner, ':'); k >= 0 {
			inner = inner[k+1:]
		}
	}
	inner = stripCFWS(inner)
	at := strings.LastIndexByte(inner, '@')
	if at < 0 {
		return firstAddress{mailbox: inner}
	}
	return firstAddress{mailbox: inner[:at], domain: inner[at+1:]}
}

// stripCFWS removes whitespace and comments and unquotes quoted strings.
func stripCFWS(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		switch s[i] {
		case ' ', '\t', '\r', '\n':
			i++
		case '(':
			_, i = readComment(s, i)
		case '"':
			var text string
			text, i = readQuoted(s, i)
			b.WriteString(text)
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String()
}

// readDomain reads the domain after "@" up to "," or the end; it returns
// the domain and the remaining text.
func readDomain(s string, i int) (string, string) {
	j := i
	for j < len(s) && s[j] != ',' && s[j] != '(' && s[j] != ';' {
		j++
	}
	return stripCFWS(s[i:j]), s[j:]
}

// trailingComment returns the text of a comment that follows a bare
// address ("a@b (Name)"), if any, before the next ",".
func trailingComment(rest string) string {
	for i := 0; i < len(rest); {
		switch rest[i] {
		case ' ', '\t', '\r', '\n':
			i++
		case '(':
			text, _ := readComment(rest, i)
			return text
		default:
			return ""
		}
	}
	return ""
}

// readComment reads a (possibly nested) comment starting at s[i] == '('.
func readComment(s string, i int) (string, int) {
	depth := 0
	var b strings.Builder
	for i < len(s) {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			b.WriteByte(s[i+1])
			i += 2
			continue
		case c == '(':
			if depth > 0 {
				b.WriteByte(c)
			}
			depth++
		case c == ')':
			depth--
			if depth == 0 {
				return strings.TrimSpace(b.String()), i + 1
			}
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
		i++
	}
	return strings.TrimSpace(b.String()), i
}

// readQuoted reads a quoted string starting at s[i] == '"'.
func readQuoted(s string, i int) (string, int) {
	var b strings.Builder
	i++
	for i < len(s) {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			b.WriteByte(s[i+1])
			i += 2
			continue
		case c == '"':
			return b.String(), i + 1
		case c == '\r' || c == '\n':
		default:
			b.WriteByte(c)
		}
		i++
	}
	return b.String(), i
}

// addressKey returns the FROM/TO/CC sort key of an address header: the
// first address's local part, casemapped.
func addressKey(header string) string {
	a := parseFirstAddress(header)
	return UnicodeCasemap(a.mailbox)
}

// displayKey returns the DISPLAYFROM/DISPLAYTO sort key (RFC 5957): the
// decoded display name of the first address if it is not empty, else the
// address itself (a group: its name), casemapped.
func displayKey(header string) string {
	a := parseFirstAddress(header)
	if !a.ok {
		return ""
	}
	name := strings.TrimSpace(packWhitespace(decodeHeader(a.name)))
	if name == "" {
		name = a.mailbox
		if !a.group {
			name += "@" + a.domain
		}
	}
	return UnicodeCasemap(name)
}
