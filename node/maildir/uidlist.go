package maildir

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// UidlistName is the file, in each maildir, that maps file names to UIDs
// (Dovecot's dovecot-uidlist). Its dot-lock is UidlistName+".lock".
const UidlistName = "dovecot-uidlist"

// Uidlist is the content of a dovecot-uidlist file.
//
// Dovecot's formats, as its reader accepts them:
//
//	version 1: "1 <uidvalidity> <nextuid>", records "<uid> <filename>"
//	version 2: "2 <uidvalidity> <nextuid>", records "<uid> <flags> <filename>"
//	version 3: "3 V<uidvalidity> N<nextuid> G<guid> [<key><value>...]",
//	           records "<uid> [<key><value> ...] :<filename>"
//
// Keys are single upper-case letters; record keys Dovecot writes are for
// example S (size), W (virtual size) and G (message GUID). Unknown keys are
// kept. Marshal always writes version 3.
type Uidlist struct {
	// Version is the format version read (1, 2 or 3); 3 for a new list.
	Version int
	// UIDValidity is the mailbox's UIDVALIDITY; never 0 in a valid file.
	UIDValidity uint32
	// NextUID is the UID the next new message gets; above every record's.
	NextUID uint32
	// GUID is the mailbox GUID (32 hex digits); "" gets a random one when
	// written.
	GUID string
	// HeaderExt are other header fields, verbatim ("<key><value>").
	HeaderExt []string
	// Records are sorted by ascending UID, at most one per unique part.
	Records []UidRecord
}

// UidRecord is one message in a uidlist.
type UidRecord struct {
	UID uint32
	// Ext are the extension fields, verbatim ("S1234", "W1300").
	Ext []string
	// File is the file name as recorded. Dovecot's version 3 records the
	// unique part only; older versions the whole name. Compare with Unique.
	File string
}

// Unique returns the unique part of the recorded file name (before ':').
func (r UidRecord) Unique() string {
	u, _, _ := strings.Cut(r.File, ":")
	return u
}

// ParseUidlist parses a dovecot-uidlist file. On a broken file it returns
// an error wrapping ErrCorrupt together with what could be read: a nil
// *Uidlist when the header is unusable, otherwise the header and the valid
// records (sorted by UID, one per unique part; for a unique part listed
// twice the later line wins, as in Dovecot), with NextUID above them all.
// It never panics.
func ParseUidlist(data []byte) (*Uidlist, error) {
	lines := splitLines(data)
	if len(lines) == 0 {
		return nil, fmt.Errorf("%w: empty uidlist", ErrCorrupt)
	}
	u := &Uidlist{}
	hdr := lines[0]
	if len(hdr) < 2 || hdr[0] < '1' || hdr[0] > '3' || hdr[1] != ' ' {
		return nil, fmt.Errorf("%w: uidlist header %q: bad version", ErrCorrupt, clip(hdr))
	}
	u.Version = int(hdr[0] - '0')
	rest := hdr[2:]
	switch u.Version {
	case 1, 2:
		f := strings.Fields(rest)
		if len(f) < 2 {
			return nil, fmt.Errorf("%w: uidlist header %q", ErrCorrupt, clip(hdr))
		}
		u.UIDValidity = parseUint32(f[0])
		u.NextUID = parseUint32(f[1])
	case 3:
		for _, f := range strings.Fields(rest) {
			switch f[0] {
			case 'V':
				u.UIDValidity = parseUint32(f[1:])
			case 'N':
				u.NextUID = parseUint32(f[1:])
			case 'G':
				u.GUID = f[1:]
			default:
				u.HeaderExt = append(u.HeaderExt, f)
			}
		}
	}
	if u.UIDValidity == 0 || u.NextUID == 0 {
		return nil, fmt.Errorf("%w: uidlist header %q: uidvalidity or next uid missing", ErrCorrupt, clip(hdr))
	}
	var bad error
	byUnique := make(map[string]int, len(lines))
	var prev uint32
	for i, line := range lines[1:] {
		if line == "" {
			continue
		}
		rec, err := parseUidRecord(u.Version, line)
		if err == nil && rec.UID <= prev {
			err = fmt.Errorf("UIDs not ascending (%d after %d)", rec.UID, prev)
		}
		if err != nil {
			if bad == nil {
				bad = fmt.Errorf("%w: uidlist line %d: %v", ErrCorrupt, i+2, err)
			}
			if rec.UID == 0 {
				continue
			}
		}
		if rec.UID > prev {
			prev = rec.UID
		}
		if j, ok := byUnique[rec.Unique()]; ok {
			// Listed twice: the later line wins.
			u.Records[j].UID = 0
		}
		byUnique[rec.Unique()] = len(u.Records)
		u.Records = append(u.Records, rec)
	}
	// Drop the records replaced above and sort (only needed after errors).
	recs := u.Records[:0]
	for _, r := range u.Records {
		if r.UID != 0 {
			recs = append(recs, r)
		}
	}
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].UID < recs[j].UID })
	dedup := recs[:0]
	for i, r := range recs {
		if i > 0 && r.UID == dedup[len(dedup)-1].UID {
			continue
		}
		dedup = append(dedup, r)
	}
	u.Records = dedup
	if n := len(u.Records); n > 0 && u.NextUID <= u.Records[n-1].UID {
		if u.Records[n-1].UID == 0xffffffff {
			u.NextUID = 0xffffffff
		} else {
			u.NextUID = u.Records[n-1].UID + 1
		}
	}
	return u, bad
}

func parseUidRecord(version int, line string) (UidRecord, error) {
	var rec UidRecord
	i := 0
	for i < len(line) && line[i] >= '0' && line[i] <= '9' {
		i++
	}
	if i == 0 || i > 10 || i >= len(line) || line[i] != ' ' {
		return rec, fmt.Errorf("bad UID in %q", clip(line))
	}
	uid, err := strconv.ParseUint(line[:i], 10, 32)
	if err != nil || uid == 0 || uid == 0xffffffff {
		return rec, fmt.Errorf("bad UID in %q", clip(line))
	}
	rest := strings.TrimLeft(line[i:], " ")
	switch version {
	case 1:
		rec.File = rest
	case 2:
		_, file, ok := strings.Cut(rest, " ")
		if !ok {
			return rec, fmt.Errorf("no file name in %q", clip(line))
		}
		rec.File = strings.TrimLeft(file, " ")
	default:
		for rest != "" && rest[0] != ':' {
			field, after, _ := strings.Cut(rest, " ")
			if field[0] >= 'A' && field[0] <= 'Z' {
				rec.Ext = append(rec.Ext, field)
			} else if after == "" {
				// No ':' before the name: take the last field as the name.
				rest = field
				break
			}
			rest = strings.TrimLeft(after, " ")
		}
		rec.File = strings.TrimPrefix(rest, ":")
	}
	if rec.File == "" || strings.ContainsAny(rec.File, "/\x00") {
		return rec, fmt.Errorf("bad file name in %q", clip(line))
	}
	rec.UID = uint32(uid)
	return rec, nil
}

// Marshal returns the version 3 file. It fills in GUID when empty.
func (u *Uidlist) Marshal() []byte {
	if u.GUID == "" {
		u.GUID = newGUID()
	}
	var b bytes.Buffer
	b.Grow(64 + len(u.Records)*48)
	fmt.Fprintf(&b, "3 V%d N%d G%s", u.UIDValidity, u.NextUID, u.GUID)
	for _, e := range u.HeaderExt {
		b.WriteByte(' ')
		b.WriteString(e)
	}
	b.WriteByte('\n')
	var num [10]byte
	for _, r := range u.Records {
		b.Write(strconv.AppendUint(num[:0], uint64(r.UID), 10))
		for _, e := range r.Ext {
			b.WriteByte(' ')
			b.WriteString(e)
		}
		b.WriteString(" :")
		b.WriteString(r.Unique())
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func newGUID() string {
	var g [16]byte
	_, _ = rand.Read(g[:])
	return hex.EncodeToString(g[:])
}

func splitLines(data []byte) []string {
	s := string(data)
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines
}

func parseUint32(s string) uint32 {
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0
	}
	return uint32(v)
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
