package sortthread

import (
	"mime"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
	"golang.org/x/text/unicode/norm"
)

// wordDecoder decodes RFC 2047 encoded words in any charset go-message
// knows. It holds no mutable state.
var wordDecoder = &mime.WordDecoder{CharsetReader: charset.Reader}

// decodeHeader decodes RFC 2047 encoded words; on any decoding error the
// value is returned as it is.
func decodeHeader(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	d, err := wordDecoder.DecodeHeader(s)
	if err != nil {
		return s
	}
	return d
}

// BaseSubject returns the base subject of a raw Subject header value, as
// defined by RFC 5256 section 2.1, in its original case, and whether the
// extraction removed a reply or forward marker ("Re:", "Fwd:", a "(fwd)"
// trailer or a "[fwd: ...]" wrapper).
func BaseSubject(raw string) (base string, replyOrForward bool) {
	return extractBaseSubject(packWhitespace(decodeHeader(raw)))
}

// subjectKey returns the base subject in i;unicode-casemap form, for
// comparison. As Dovecot does, the subject is casemapped before the
// extraction.
func subjectKey(raw string) (key string, replyOrForward bool) {
	return extractBaseSubject(packWhitespace(UnicodeCasemap(decodeHeader(raw))))
}

// packWhitespace turns tabs, CR, LF and runs of spaces into single spaces
// (RFC 5256 section 2.1 step 1).
func packWhitespace(s string) string {
	clean := true
	for i := 0; i < len(s) && clean; i++ {
		switch s[i] {
		case '\t', '\r', '\n':
			clean = false
		case ' ':
			clean = i+1 >= len(s) || s[i+1] != ' '
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			if !space {
				b.WriteByte(' ')
			}
			space = true
			continue
		}
		space = false
		b.WriteByte(c)
	}
	return b.String()
}

// hasPrefixFold reports whether s begins with the ASCII prefix, ignoring
// ASCII case.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

// extractBaseSubject runs steps 2 to 6 of RFC 5256 section 2.1 on a subject
// whose whitespace is already packed.
func extractBaseSubject(s string) (string, bool) {
	replyFwd := false
	for {
		// (2) Remove trailing "(fwd)" and whitespace, repeatedly.
		for {
			if strings.HasSuffix(s, " ") || strings.HasSuffix(s, "\t") {
				s = s[:len(s)-1]
			} else if hasSuffixFold(s, "(fwd)") {
				s = s[:len(s)-5]
				replyFwd = true
			} else {
				break
			}
		}
		// (5) Repeat (3) and (4) until nothing changes.
		for {
			// (3) Remove a subj-leader.
			if n := leaderLen(s); n > 0 {
				if s[0] != ' ' && s[0] != '\t' {
					replyFwd = true
				}
				s = s[n:]
				continue
			}
			// (4) Remove a leading subj-blob if a non-empty subj-base remains.
			if n := blobLen(s, 0); n > 0 && n < len(s) {
				s = s[n:]
				continue
			}
			break
		}
		// (6) Unwrap "[fwd: ... ]" and start again from (2).
		if hasPrefixFold(s, "[fwd:") && strings.HasSuffix(s, "]") {
			s = s[5 : len(s)-1]
			replyFwd = true
			continue
		}
		return s, replyFwd
	}
}

// skipWSP returns the index of the first non-WSP byte at or after i.
func skipWSP(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

// blobLen returns the length of the subj-blob ("[" *BLOBCHAR "]" *WSP)
// starting at i, or 0.
func blobLen(s string, i int) int {
	if i >= len(s) || s[i] != '[' {
		return 0
	}
	j := i + 1
	for j < len(s) && s[j] != '[' && s[j] != ']' && s[j] != 0 {
		j++
	}
	if j >= len(s) || s[j] != ']' {
		return 0
	}
	return skipWSP(s, j+1) - i
}

// leaderLen returns the length of the subj-leader at the start of s:
// a single WSP, or *subj-blob subj-refwd where
// subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":".
func leaderLen(s string) int {
	if s == "" {
		return 0
	}
	if s[0] == ' ' || s[0] == '\t' {
		return 1
	}
	i := 0
	for {
		n := blobLen(s, i)
		if n == 0 {
			break
		}
		i += n
	}
	rest := s[i:]
	var kw int
	switch {
	case hasPrefixFold(rest, "re"):
		kw = 2
	case hasPrefixFold(rest, "fwd"):
		if n := refwdTail(s, i+3); n > 0 {
			return n
		}
		kw = 2
	case hasPrefixFold(rest, "fw"):
		kw = 2
	default:
		return 0
	}
	return refwdTail(s, i+kw)
}

// refwdTail matches *WSP [subj-blob] ":" at i and returns the end offset,
// or 0.
func refwdTail(s string, i int) int {
	i = skipWSP(s, i)
	i += blobLen(s, i)
	if i < len(s) && s[i] == ':' {
		return i + 1
	}
	return 0
}

// UnicodeCasemap returns s in the "titlecased canonicalized UTF-8" form of
// the i;unicode-casemap collation (RFC 5051): two strings are equal under
// the collation when their forms are equal, and are ordered by comparing
// the forms octet by octet. Each character is mapped to its simple
// titlecase, then replaced by its full compatibility decomposition (as
// Dovecot does). Invalid UTF-8 becomes U+FFFD, once per run of bad bytes.
func UnicodeCasemap(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return ASCIICasemap(s)
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	out := make([]byte, 0, len(s)+len(s)/2)
	var one [utf8.UTFMax]byte
	for _, r := range s {
		if r < 0x80 {
			if r >= 'a' && r <= 'z' {
				r -= 'a' - 'A'
			}
			out = append(out, byte(r))
			continue
		}
		t := unicode.ToTitle(r)
		n := utf8.EncodeRune(one[:], t)
		out = norm.NFKD.Append(out, one[:n]...)
	}
	return string(out)
}

// ASCIICasemap returns s in the form the i;ascii-casemap collation compares
// (RFC 4790 section 9.2): a-z mapped to A-Z, everything else unchanged.
func ASCIICasemap(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'a' && c <= 'z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'a' && b[j] <= 'z' {
					b[j] -= 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
