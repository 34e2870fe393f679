package maildir

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// KeywordsName is the file, in each maildir, that names the keyword
// letters (Dovecot's dovecot-keywords). Lines are "<index> <name>"; index
// 0 is letter 'a', 25 is 'z'. Its dot-lock is KeywordsName+".lock".
const KeywordsName = "dovecot-keywords"

// MaxKeywords is the number of keyword letters a maildir name can carry.
const MaxKeywords = 26

// ParseKeywords parses a dovecot-keywords file into a slice indexed by
// keyword index ("" for an unused index), at most MaxKeywords long. Bad
// lines, indexes out of range and repeated names are skipped; an error
// wrapping ErrCorrupt tells about the first one, together with the usable
// result. It never panics.
func ParseKeywords(data []byte) ([]string, error) {
	var kw []string
	var bad error
	seen := map[string]bool{}
	for i, line := range splitLines(data) {
		if line == "" {
			continue
		}
		idxs, name, ok := strings.Cut(line, " ")
		idx, err := strconv.Atoi(idxs)
		if !ok || err != nil || idx < 0 || idx >= MaxKeywords || !validKeyword(name) || seen[name] {
			if bad == nil {
				bad = fmt.Errorf("%w: keywords line %d: %q", ErrCorrupt, i+1, clip(line))
			}
			continue
		}
		for len(kw) <= idx {
			kw = append(kw, "")
		}
		if kw[idx] != "" {
			if bad == nil {
				bad = fmt.Errorf("%w: keywords line %d: index %d repeated", ErrCorrupt, i+1, idx)
			}
			continue
		}
		kw[idx] = name
		seen[name] = true
	}
	return kw, bad
}

// MarshalKeywords writes a dovecot-keywords file for kw (indexed as
// ParseKeywords returns it).
func MarshalKeywords(kw []string) []byte {
	var b bytes.Buffer
	for i, k := range kw {
		if k == "" || i >= MaxKeywords {
			continue
		}
		fmt.Fprintf(&b, "%d %s\n", i, k)
	}
	return b.Bytes()
}

// validKeyword accepts an IMAP flag-keyword: printable ASCII without
// space, parentheses, braces, '%', '*', '"', '\\' and ']'. The session
// layer checks the IMAP syntax; this keeps the file parseable.
func validKeyword(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}
