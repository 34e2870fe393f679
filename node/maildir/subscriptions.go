package maildir

import (
	"bytes"
	"strings"
)

// SubscriptionsName is the subscriptions file in the folder root. Its
// dot-lock is SubscriptionsName+".lock".
const SubscriptionsName = "subscriptions"

const subsV2Header = "V\t2\n\n"

// ParseSubscriptions parses a subscriptions file: Dovecot's version 2
// ("V\t2" line, an empty line, then one name a line with the hierarchy
// levels separated by tabs, each level tab-escaped) or the old form (one
// name a line, hierarchy separator as is). sep is the IMAP hierarchy
// separator to join levels with. Empty names are skipped; the order is
// kept; duplicates are dropped. It never panics.
func ParseSubscriptions(data []byte, sep byte) []string {
	v2 := bytes.HasPrefix(data, []byte(subsV2Header))
	if v2 {
		data = data[len(subsV2Header):]
	}
	var names []string
	seen := map[string]bool{}
	for _, line := range splitLines(data) {
		if line == "" {
			continue
		}
		name := line
		if v2 {
			levels := strings.Split(line, "\t")
			for i, l := range levels {
				levels[i] = tabUnescape(l)
			}
			name = strings.Join(levels, string(sep))
		}
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		names = append(names, name)
	}
	return names
}

// MarshalSubscriptions writes names in Dovecot's version 2 format.
func MarshalSubscriptions(names []string, sep byte) []byte {
	var b bytes.Buffer
	b.WriteString(subsV2Header)
	for _, n := range names {
		if n == "" {
			continue
		}
		for i, l := range strings.Split(n, string(sep)) {
			if i > 0 {
				b.WriteByte('\t')
			}
			b.WriteString(tabEscape(l))
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// tabEscape is Dovecot's tab-escaping: \001 -> \0011, \t -> \001t,
// \r -> \001r, \n -> \001n.
func tabEscape(s string) string {
	if !strings.ContainsAny(s, "\x01\t\r\n") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case 1:
			b.WriteString("\x011")
		case '\t':
			b.WriteString("\x01t")
		case '\r':
			b.WriteString("\x01r")
		case '\n':
			b.WriteString("\x01n")
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func tabUnescape(s string) string {
	if strings.IndexByte(s, 1) < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != 1 || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case '1':
			b.WriteByte(1)
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case 'n':
			b.WriteByte('\n')
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}
