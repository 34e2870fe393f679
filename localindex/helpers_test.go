package localindex

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// testWriter sends log lines to the test's log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// clock is a settable clock for Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openTest(t testing.TB, dir string, mod func(*Config)) *Index {
	t.Helper()
	return openLogged(t, dir, mod, true)
}

// openQuiet opens an index whose log goes nowhere (for tests that log
// thousands of expected warnings).
func openQuiet(t testing.TB, dir string, mod func(*Config)) *Index {
	t.Helper()
	return openLogged(t, dir, mod, false)
}

func openLogged(t testing.TB, dir string, mod func(*Config), logged bool) *Index {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Dir = dir
	if mod != nil {
		mod(&cfg)
	}
	var logger *slog.Logger
	if _, ok := t.(*testing.T); ok && logged {
		logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	x, err := Open(cfg, logger)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return x
}

// makeRecord builds a parsed record whose contents all derive from uid, so
// that any record can be checked on its own.
func makeRecord(uid uint32) Record {
	r := Record{
		UID:           uid,
		File:          fmt.Sprintf("1700000000.M%dP42.host,S=%d:2,S", uid, 1000+uid),
		Flags:         FlagSeen,
		Parsed:        true,
		Size:          int64(1000 + uid),
		PhysicalSize:  int64(980 + uid),
		InternalDate:  time.Unix(1700000000+int64(uid), 0),
		Envelope:      fmt.Appendf(nil, `("Mon, 1 Jan 2024 00:00:00 +0000" "subject %d" (("A" NIL "a" "example.org")) NIL NIL (("B" NIL "b" "example.org")) NIL NIL NIL "<%d@example.org>")`, uid, uid),
		BodyStructure: fmt.Appendf(nil, `("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" %d %d NIL NIL NIL NIL)`, 900+uid, 20+uid%50),
		Header: Headers{
			Date:       "Mon, 1 Jan 2024 00:00:00 +0000",
			Subject:    fmt.Sprintf("subject %d", uid),
			From:       "A <a@example.org>",
			To:         "B <b@example.org>",
			MessageID:  fmt.Sprintf("<%d@example.org>", uid),
			InReplyTo:  fmt.Sprintf("<%d@example.org>", uid/2),
			References: fmt.Sprintf("<%d@example.org> <%d@example.org>", uid/4, uid/2),
			Present:    HeaderDate | HeaderSubject | HeaderFrom | HeaderTo | HeaderMessageID | HeaderInReplyTo | HeaderReferences | HeadersComplete,
		},
	}
	if uid%3 == 0 {
		r.Flags = 0
		r.Keywords = []string{"$Forwarded", fmt.Sprintf("kw%d", uid%5)}
	}
	if uid%5 == 0 {
		r.Header.Bcc = "C <c@example.org>"
		r.Header.Present |= HeaderBcc
		r.Header.More = []HeaderField{{Name: "To", Value: fmt.Sprintf("D%d <d@example.org>", uid)}, {Name: "Bcc", Value: ""}}
	}
	if uid%7 == 0 {
		r.InNew = true
		r.File = fmt.Sprintf("1700000000.M%dP42.host,S=%d", uid, 1000+uid)
	}
	return r
}

func recordsEqual(a, b Record) bool {
	return a.UID == b.UID && a.File == b.File && a.InNew == b.InNew && a.Flags == b.Flags &&
		strings.Join(a.Keywords, " ") == strings.Join(b.Keywords, " ") && len(a.Keywords) == len(b.Keywords) &&
		a.Parsed == b.Parsed && a.Size == b.Size && a.PhysicalSize == b.PhysicalSize &&
		a.InternalDate.Equal(b.InternalDate) && string(a.Envelope) == string(b.Envelope) &&
		string(a.BodyStructure) == string(b.BodyStructure) && a.Header.Equal(&b.Header)
}

// state is a copy of what a Mailbox holds, for comparisons.
type state struct {
	spool                SpoolState
	uidValidity, uidNext uint32
	keywords             string
	recs                 []Record
}

func stateOf(m *Mailbox) state {
	s := state{spool: m.Spool(), uidValidity: m.UIDValidity(), uidNext: m.UIDNext(), keywords: strings.Join(m.Keywords(), " ")}
	for _, r := range m.Records() {
		r.Keywords = append([]string(nil), r.Keywords...)
		r.Envelope = append([]byte(nil), r.Envelope...)
		r.BodyStructure = append([]byte(nil), r.BodyStructure...)
		r.File = strings.Clone(r.File)
		s.recs = append(s.recs, r)
	}
	return s
}

func (s state) equal(o state) bool {
	if s.spool != o.spool || s.uidValidity != o.uidValidity || s.uidNext != o.uidNext || s.keywords != o.keywords || len(s.recs) != len(o.recs) {
		return false
	}
	for i := range s.recs {
		if !recordsEqual(s.recs[i], o.recs[i]) {
			return false
		}
	}
	return true
}

func spoolN(n int64) SpoolState {
	return SpoolState{NewMtime: 1e18 + n, CurMtime: 2e18 + n, UidlistMtime: 3e18 + n, UidlistSize: 100 + n, NewIno: 7, CurIno: 8, UidlistIno: 9 + uint64(n)}
}

// fillMailbox builds and saves a mailbox with UIDs 1..n.
func fillMailbox(t testing.TB, x *Index, user, mailbox string, n int) *Mailbox {
	t.Helper()
	m := x.NewMailbox(user, mailbox, 1234)
	for uid := uint32(1); uid <= uint32(n); uid++ {
		m.Upsert(makeRecord(uid))
	}
	m.SetUIDNext(uint32(n) + 1)
	m.SetKeywords([]string{"$Forwarded", "kw0", "kw1"})
	if err := m.Save(spoolN(0)); err != nil {
		t.Fatalf("Save: %v", err)
	}
	return m
}

// bruteSummary computes a Mailbox's summary the slow way, to check the
// counts it keeps.
func bruteSummary(m *Mailbox) Summary {
	s := Summary{Spool: m.Spool(), UIDValidity: m.UIDValidity(), UIDNext: m.UIDNext(), Messages: uint32(m.Len())}
	for _, r := range m.Records() {
		if r.Flags&FlagSeen == 0 {
			s.Unseen++
		}
		if r.InNew {
			s.Recent++
		}
		deleted := r.Flags&FlagDeleted != 0
		if deleted {
			s.Deleted++
		}
		if s.Size >= 0 {
			if r.Parsed {
				s.Size += r.Size
				if deleted {
					s.DeletedSize += r.Size
				}
			} else {
				s.Size, s.DeletedSize = -1, -1
			}
		}
	}
	return s
}
