package session

import (
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// fuzzHeaderKeys are the HEADER keys the equivalence fuzz target uses:
// the indexed fields in several spellings and two that are not indexed.
var fuzzHeaderKeys = []string{"Subject", "FROM", "to", "Cc", "bcc", "Message-ID", "In-Reply-To", "references", "Date", "X-Other", "Subject "}

// indexedKeys gives the HEADER keys of c names from fuzzHeaderKeys.
func indexedKeys(c *imap.SearchCriteria) {
	for i := range c.Header {
		k := c.Header[i].Key
		n := 0
		if k != "" {
			n = int(k[0])
		}
		c.Header[i].Key = fuzzHeaderKeys[n%len(fuzzHeaderKeys)]
	}
	for i := range c.Not {
		indexedKeys(&c.Not[i])
	}
	for i := range c.Or {
		indexedKeys(&c.Or[i][0])
		indexedKeys(&c.Or[i][1])
	}
}

// FuzzSearchIndexEquivalence: for any message and criteria, the matcher
// gives the same answer with the header fields from the index (headersOf)
// as from the file, and reads the file only for keys the index cannot
// answer.
func FuzzSearchIndexEquivalence(f *testing.F) {
	for i, m := range corpusFixed {
		f.Add([]byte{2, 8, byte(i), 1, 'e', 6, 1, 1}, []byte(m))
		f.Add([]byte{3, 13, 1, 8, 2, 0, 14, 1, 8, 3, 1, 'x', 1, 7, 3, 2}, []byte(m))
	}
	f.Add([]byte{1, 8, 0, 0}, []byte("Subject:\n\n"))
	f.Add([]byte{1, 8, 2, 0, 0}, []byte("To: a\nTo: b\n =?utf-8?q?=C3=A9?=\n\nx"))
	f.Fuzz(func(t *testing.T, crit []byte, content []byte) {
		src := &byteSource{b: crit}
		c := src.criteria(0)
		indexedKeys(&c)
		msg := &testMessage{seq: 1, uid: 7, flags: []imap.Flag{imap.FlagSeen}, date: time.Unix(1770000000, 0), content: toCRLF(content)}
		h := headersOf(msg.content)
		im := &indexedTestMessage{testMessage: msg, headers: &h}
		want, err := NewMatcher(&c, 1, 7, nil).Match(msg)
		if err != nil {
			t.Fatal(err)
		}
		got, err := NewMatcher(&c, 1, 7, nil).Match(im)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("criteria %+v: %v with the index, %v from the file", c, got, want)
		}
		if indexOnly(&c) && im.reads != 0 {
			t.Fatalf("criteria %+v: the file was read %d times", c, im.reads)
		}
	})
}
