package maildir

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Flags are the standard maildir flags carried in a file name's info.
type Flags uint8

// The standard flags, with their letters and IMAP meanings.
const (
	FlagDraft   Flags = 1 << iota // 'D', \Draft
	FlagFlagged                   // 'F', \Flagged
	FlagPassed                    // 'P', passed (forwarded); no IMAP system flag
	FlagReplied                   // 'R', \Answered
	FlagSeen                      // 'S', \Seen
	FlagTrashed                   // 'T', \Deleted
)

// flagLetters lists the standard flags in ASCII order of their letters.
var flagLetters = [...]struct {
	f Flags
	c byte
}{
	{FlagDraft, 'D'}, {FlagFlagged, 'F'}, {FlagPassed, 'P'},
	{FlagReplied, 'R'}, {FlagSeen, 'S'}, {FlagTrashed, 'T'},
}

// String returns the flag letters in ASCII order ("FS").
func (f Flags) String() string {
	var b []byte
	for _, fl := range flagLetters {
		if f&fl.f != 0 {
			b = append(b, fl.c)
		}
	}
	return string(b)
}

func flagOfLetter(c byte) (Flags, bool) {
	for _, fl := range flagLetters {
		if fl.c == c {
			return fl.f, true
		}
	}
	return 0, false
}

// Name is a parsed maildir file name. The parser keeps everything it does
// not understand so that String gives back the name it was given.
//
// Layout: <unique>[:<info>], info "2,<flag letters>[,<extra fields>]".
// Comma fields inside the unique part (",S=1234", ",W=1300", UW-IMAP's
// ",U1030712092") belong to the unique part and never change. Comma fields
// after the flag letters are kept verbatim in Extra and never read as flags.
type Name struct {
	// Unique is everything before the first ':'. It never changes for the
	// life of a message and is the key of dovecot-uidlist.
	Unique string
	// HasInfo is true when the name has a ':'.
	HasInfo bool
	// Info is everything after the first ':', verbatim ("2,FS", "1,x", "2").
	Info string
	// Flags are the standard flags, read only from a "2," info.
	Flags Flags
	// Keywords holds the keyword letters 'a'..'z' present, sorted, no
	// duplicates. Letter 'a'+i is index i of dovecot-keywords.
	Keywords string
	// OtherFlags holds other characters of the flag field (unknown
	// upper-case flags, digits), sorted, kept when the flags change.
	OtherFlags string
	// Extra holds the info's comma fields after the flag letters, starting
	// with the comma (",U1234,W=88"), verbatim.
	Extra string
	// Size is the value of a ",S=<n>" field (the file's size), -1 if none.
	Size int64
	// VSize is the value of a ",W=<n>" field (the size with CRLF line
	// ends, RFC822.SIZE), -1 if none.
	VSize int64
	// UWUID is the UID recorded by UW-IMAP in a ",U<n>" or ",U=<n>" field,
	// 0 if none. Used only when a maildir is first seen without a uidlist.
	UWUID uint32
}

// validFileName reports whether s may be used as (part of) a maildir file
// name: not empty, not starting with '.', and free of '/', NUL, CR and LF.
func validFileName(s string) bool {
	if s == "" || s[0] == '.' {
		return false
	}
	return !strings.ContainsAny(s, "/\x00\r\n")
}

// ParseName parses a file name found in new/ or cur/. It never panics. A
// name that is not a maildir message name (empty, starting with '.',
// containing '/', NUL, CR or LF) gives an error wrapping ErrInvalidName;
// such files are ignored by Sync.
func ParseName(s string) (Name, error) {
	n := Name{Size: -1, VSize: -1}
	if !validFileName(s) {
		return n, fmt.Errorf("%w: file name %q", ErrInvalidName, s)
	}
	unique, info, hasInfo := strings.Cut(s, ":")
	if unique == "" {
		return n, fmt.Errorf("%w: file name %q has an empty unique part", ErrInvalidName, s)
	}
	n.Unique, n.Info, n.HasInfo = unique, info, hasInfo
	if rest, ok := strings.CutPrefix(info, "2,"); ok {
		flagField, _, _ := strings.Cut(rest, ",")
		if i := strings.IndexByte(rest, ','); i >= 0 {
			n.Extra = rest[i:]
		}
		var kw [26]bool
		var other []byte
		for i := 0; i < len(flagField); i++ {
			c := flagField[i]
			switch {
			case c >= 'a' && c <= 'z':
				kw[c-'a'] = true
			default:
				if f, ok := flagOfLetter(c); ok {
					n.Flags |= f
				} else if strings.IndexByte(string(other), c) < 0 {
					other = append(other, c)
				}
			}
		}
		var kb []byte
		for i, on := range kw {
			if on {
				kb = append(kb, byte('a'+i))
			}
		}
		n.Keywords = string(kb)
		sort.Slice(other, func(i, j int) bool { return other[i] < other[j] })
		n.OtherFlags = string(other)
	}
	n.Size = commaField(unique, n.Extra, "S=")
	n.VSize = commaField(unique, n.Extra, "W=")
	if v := commaField(unique, n.Extra, "U="); v > 0 && v <= 0xffffffff {
		n.UWUID = uint32(v)
	} else if v := commaField(unique, n.Extra, "U"); v > 0 && v <= 0xffffffff {
		n.UWUID = uint32(v)
	}
	return n, nil
}

// commaField finds ",<key><digits>" followed by ',', ':' or the end in one
// of the parts and returns the number, or -1.
func commaField(a, b, key string) int64 {
	for _, s := range [2]string{a, b} {
		for s != "" {
			i := strings.Index(s, ","+key)
			if i < 0 {
				break
			}
			s = s[i+1+len(key):]
			j := 0
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			if j > 0 && j <= 18 && (j == len(s) || s[j] == ',' || s[j] == ':') {
				v, err := strconv.ParseInt(s[:j], 10, 64)
				if err == nil {
					return v
				}
			}
		}
	}
	return -1
}

// String returns the file name.
func (n Name) String() string {
	if !n.HasInfo {
		return n.Unique
	}
	return n.Unique + ":" + n.Info
}

// WithFlags returns the file name with the given flags and keyword letters
// (any order, duplicates allowed; only 'a'..'z' are used). The unique part,
// unknown flag letters and Extra fields are kept. A name without a "2,"
// info (no info, ":1,...", ":2") gets a fresh ":2," info.
func (n Name) WithFlags(f Flags, keywords string) string {
	var letters []byte
	letters = append(letters, f.String()...)
	letters = append(letters, n.OtherFlags...)
	var kw [26]bool
	for i := 0; i < len(keywords); i++ {
		if c := keywords[i]; c >= 'a' && c <= 'z' {
			kw[c-'a'] = true
		}
	}
	for i, on := range kw {
		if on {
			letters = append(letters, byte('a'+i))
		}
	}
	sort.Slice(letters, func(i, j int) bool { return letters[i] < letters[j] })
	extra := ""
	if strings.HasPrefix(n.Info, "2,") {
		extra = n.Extra
	}
	return n.Unique + ":2," + string(letters) + extra
}
