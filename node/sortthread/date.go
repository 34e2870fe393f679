package sortthread

import (
	"strings"
	"time"
)

// parseMessageDate parses an RFC 5322 Date header leniently, accepting
// what Dovecot's message_date_parse accepts: an optional three-letter day
// name followed by ",", day, month name, 2- or 4-digit year (2-digit years
// below 70 are 20xx), hh:mm[:ss] (":" or "." between), and an optional
// zone (+hhmm, -hhmm, UT, GMT, the US zone names, military letters;
// anything else counts as +0000). Comments are ignored. It returns
// ok == false when the value is not a date.
func parseMessageDate(s string) (time.Time, bool) {
	var buf [8]string
	toks := dateTokens(buf[:0], s)
	if len(toks) > 0 && len(toks[0]) == 3 {
		// A day name must be followed by a comma.
		if len(toks) < 2 || toks[1] != "," {
			return time.Time{}, false
		}
		toks = toks[2:]
	}
	if len(toks) < 4 {
		return time.Time{}, false
	}
	day, ok := atoiDigits(toks[0], 1, 2)
	if !ok || day < 1 || day > 31 {
		return time.Time{}, false
	}
	month := 0
	if len(toks[1]) >= 3 {
		for i, m := range monthNames {
			if strings.EqualFold(toks[1][:3], m) {
				month = i + 1
				break
			}
		}
	}
	if month == 0 {
		return time.Time{}, false
	}
	year, ok := atoiDigits(toks[2], 2, 4)
	switch {
	case !ok || len(toks[2]) == 3:
		return time.Time{}, false
	case len(toks[2]) == 2 && year < 70:
		year += 2000
	case len(toks[2]) == 2:
		year += 1900
	case year < 1900:
		return time.Time{}, false
	}
	var clock [3]int
	rest, parts := toks[3], 0
	for rest != "" || parts == 0 {
		if parts == 3 {
			return time.Time{}, false
		}
		i := strings.IndexAny(rest, ":.")
		part, tail := rest, ""
		if i >= 0 {
			part, tail = rest[:i], rest[i+1:]
			if tail == "" {
				return time.Time{}, false
			}
		}
		minLen := 2
		if parts == 0 {
			minLen = 1
		}
		v, ok := atoiDigits(part, minLen, 2)
		if !ok {
			return time.Time{}, false
		}
		clock[parts] = v
		parts++
		rest = tail
	}
	if parts < 2 || clock[0] > 23 || clock[1] > 59 || clock[2] > 59 {
		return time.Time{}, false
	}
	offset := 0
	if len(toks) > 4 {
		offset = zoneOffset(toks[4])
	}
	t := time.Date(year, time.Month(month), day, clock[0], clock[1], clock[2], 0, time.UTC)
	if t.Day() != day {
		return time.Time{}, false
	}
	return t.Add(-time.Duration(offset) * time.Second), true
}

// dateTokens appends the words of a date to toks, dropping comments and
// splitting off commas; it stops after the capacity of toks.
func dateTokens(toks []string, s string) []string {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '(':
			_, i = readComment(s, i)
		case c == ',':
			toks = append(toks, ",")
			i++
		default:
			j := i
			for j < len(s) && s[j] != ' ' && s[j] != '\t' && s[j] != '\r' && s[j] != '\n' && s[j] != '(' && s[j] != ',' {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
		if len(toks) == cap(toks) {
			break
		}
	}
	return toks
}

// atoiDigits parses min..max decimal digits.
func atoiDigits(s string, minLen, maxLen int) (int, bool) {
	if len(s) < minLen || len(s) > maxLen {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// zoneOffset returns a zone's offset east of UTC in seconds. Unknown
// zones count as UTC.
func zoneOffset(z string) int {
	if len(z) == 5 && (z[0] == '+' || z[0] == '-') {
		hh, ok1 := atoiDigits(z[1:3], 2, 2)
		mm, ok2 := atoiDigits(z[3:5], 2, 2)
		if !ok1 || !ok2 {
			return 0
		}
		off := hh*3600 + mm*60
		if z[0] == '-' {
			off = -off
		}
		return off
	}
	switch len(z) {
	case 1: // military zones, the correct way round
		c := z[0] &^ 0x20
		switch {
		case c < 'A' || c > 'Z':
			return 0
		case c < 'J':
			return int(c-'A'+1) * 3600
		case c == 'J':
			return 0
		case c <= 'M':
			return int(c-'A') * 3600
		case c < 'Z':
			return -int(c-'M') * 3600
		}
		return 0
	case 3:
		if z[2] != 'T' && z[2] != 't' {
			return 0
		}
		var off int
		switch z[0] &^ 0x20 {
		case 'E':
			off = -5
		case 'C':
			off = -6
		case 'M':
			off = -7
		case 'P':
			off = -8
		default:
			return 0
		}
		switch z[1] &^ 0x20 {
		case 'D':
			return (off + 1) * 3600
		case 'S':
			return off * 3600
		}
	}
	return 0
}

// sentDate returns the "sent date" of RFC 5256 section 2.2: the Date header
// in UTC, or the internal date when the header is missing or unparsable,
// in whole seconds.
func sentDate(m *Message) int64 {
	if m.Date != "" {
		if t, ok := parseMessageDate(m.Date); ok {
			return t.Unix()
		}
	}
	return m.InternalDate.Unix()
}
