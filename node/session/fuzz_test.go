package session

import (
	"bytes"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// criteriaFromBytes builds a search criteria from fuzz input: each byte
// picks a key, following bytes give its argument.
type byteSource struct {
	b []byte
}

func (s *byteSource) next() byte {
	if len(s.b) == 0 {
		return 0
	}
	c := s.b[0]
	s.b = s.b[1:]
	return c
}

func (s *byteSource) str() string {
	n := int(s.next() % 8)
	if n > len(s.b) {
		n = len(s.b)
	}
	v := string(s.b[:n])
	s.b = s.b[n:]
	return v
}

func (s *byteSource) criteria(depth int) imap.SearchCriteria {
	var c imap.SearchCriteria
	n := int(s.next() % 5)
	for i := 0; i < n && len(s.b) > 0; i++ {
		switch s.next() % 16 {
		case 0:
			c.SeqNum = append(c.SeqNum, imap.SeqSet{{Start: uint32(s.next() % 5), Stop: uint32(s.next() % 5)}})
		case 1:
			c.UID = append(c.UID, imap.UIDSet{{Start: imap.UID(s.next() % 40), Stop: imap.UID(s.next() % 40)}})
		case 2:
			c.Flag = append(c.Flag, []imap.Flag{imap.FlagSeen, FlagRecent, "$x", imap.FlagDeleted}[s.next()%4])
		case 3:
			c.NotFlag = append(c.NotFlag, []imap.Flag{imap.FlagSeen, FlagRecent, "$x", imap.FlagDeleted}[s.next()%4])
		case 4:
			c.Since = time.Date(2026, time.Month(s.next()%12+1), int(s.next()%28+1), 0, 0, 0, 0, time.UTC)
		case 5:
			c.Before = time.Date(2026, time.Month(s.next()%12+1), int(s.next()%28+1), 0, 0, 0, 0, time.UTC)
		case 6:
			c.SentSince = time.Date(2026, time.Month(s.next()%12+1), int(s.next()%28+1), 0, 0, 0, 0, time.UTC)
		case 7:
			c.SentBefore = time.Date(2026, time.Month(s.next()%12+1), int(s.next()%28+1), 0, 0, 0, 0, time.UTC)
		case 8:
			c.Header = append(c.Header, imap.SearchCriteriaHeaderField{Key: s.str(), Value: s.str()})
		case 9:
			c.Body = append(c.Body, s.str())
		case 10:
			c.Text = append(c.Text, s.str())
		case 11:
			c.Larger = int64(s.next())
		case 12:
			c.Smaller = int64(s.next())
		case 13:
			if depth < 4 {
				c.Not = append(c.Not, s.criteria(depth+1))
			}
		case 14:
			if depth < 4 {
				c.Or = append(c.Or, [2]imap.SearchCriteria{s.criteria(depth + 1), s.criteria(depth + 1)})
			}
		case 15:
			c.UID = append(c.UID, imap.SearchRes())
		}
	}
	return c
}

func FuzzMatcher(f *testing.F) {
	f.Add([]byte{3, 8, 3, 'S', 'u', 'b', 1, 'x', 9, 2, 'h', 'i'}, []byte(msgPlain))
	f.Add([]byte{4, 13, 2, 9, 3, 'c', 'a', 'f', 14, 1, 2, 1, 1, 10, 1, 'x'}, []byte(msgMultipart))
	f.Add([]byte{2, 6, 1, 1, 7, 2, 2}, []byte("Date: garbage\n\nbody"))
	f.Add([]byte{1, 9, 1, 'a'}, []byte("Content-Type: multipart/mixed; boundary=\"\"\n\n--\n--"))
	f.Add([]byte{1, 10, 1, 'a'}, []byte("Content-Type: message/rfc822\n\nContent-Type: message/rfc822\n\nContent-Type: text/plain; charset=x-nonsense\n\nq"))
	f.Fuzz(func(t *testing.T, crit []byte, content []byte) {
		src := &byteSource{b: crit}
		c := src.criteria(0)
		msg := &testMessage{seq: 1, uid: 7, flags: []imap.Flag{imap.FlagSeen}, date: time.Unix(1770000000, 0), content: toCRLF(content)}
		m := NewMatcher(&c, 1, 7, nil)
		if _, err := m.Match(msg); err != nil {
			t.Fatalf("match: %v", err)
		}
		// FETCH rendering of the same content must not panic either.
		bs := extractBodyStructure(msg.content)
		if bs == nil {
			t.Fatal("nil body structure")
		}
		_ = extractEnvelope(msg.content)
		for _, sec := range []*imap.FetchItemBodySection{
			{}, {Specifier: imap.PartSpecifierHeader}, {Specifier: imap.PartSpecifierText},
			{Part: []int{1}}, {Part: []int{1, 2}, Specifier: imap.PartSpecifierMIME},
			{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject"}},
			{Partial: &imap.SectionPartial{Offset: 3, Size: 5}},
		} {
			data := bodySection(msg.content, sec)
			if sec.Specifier == imap.PartSpecifierNone && len(sec.Part) == 0 && sec.Partial == nil && !bytes.Equal(data, msg.content) {
				t.Fatal("BODY[] differs from the content")
			}
		}
	})
}
