package session

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"

	"github.com/nfsimap/nfsimap/localindex"
	"github.com/nfsimap/nfsimap/node/maildir"
)

// indexedTestMessage is a corpus message whose header fields also come
// from a local index; it counts the reads of its content.
type indexedTestMessage struct {
	*testMessage
	headers *localindex.Headers
	reads   int
}

func (m *indexedTestMessage) Content() ([]byte, error) {
	m.reads++
	return m.testMessage.Content()
}

func (m *indexedTestMessage) IndexedHeaders() (*localindex.Headers, bool) {
	return m.headers, m.headers != nil
}

var _ IndexedMessage = (*indexedTestMessage)(nil)

// indexCorpus stores headersOf of every corpus message in a real local
// index, saves it, loads it back and returns the messages with the
// loaded fields: the fields the matcher gets went through the index's
// encoding.
func indexCorpus(t *testing.T, msgs []*testMessage) []*indexedTestMessage {
	t.Helper()
	cfg := localindex.DefaultConfig()
	cfg.Dir = t.TempDir()
	x, err := localindex.Open(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	mb := x.NewMailbox("alice", "INBOX", 1)
	for _, m := range msgs {
		rec := parseMessage(m.content, int64(len(m.content)), m.date)
		rec.UID, rec.File = uint32(m.uid), fmt.Sprintf("%d.corpus:2,", m.uid)
		mb.Upsert(rec)
	}
	mb.SetUIDNext(uint32(len(msgs) + 1))
	if err := mb.Save(localindex.SpoolState{NewMtime: 1, CurMtime: 2}); err != nil {
		t.Fatal(err)
	}
	mb.Close()
	loaded, err := x.LoadMailbox("alice", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	defer loaded.Close()
	out := make([]*indexedTestMessage, len(msgs))
	for i, m := range msgs {
		rec, ok := loaded.Lookup(uint32(m.uid))
		if !ok || !rec.Parsed {
			t.Fatalf("message %d not in the loaded index", m.uid)
		}
		if h := headersOf(m.content); !rec.Header.Equal(&h) {
			t.Fatalf("message %d: header fields changed in the index: %+v, want %+v", m.uid, rec.Header, h)
		}
		h := rec.Header
		out[i] = &indexedTestMessage{testMessage: m, headers: &h}
	}
	return out
}

// indexOnly reports whether the index and the session state can answer
// every key of c (no BODY, TEXT or HEADER of a field the index lacks).
func indexOnly(c *imap.SearchCriteria) bool {
	if len(c.Body) > 0 || len(c.Text) > 0 {
		return false
	}
	m := NewMatcher(nil, 0, 0, nil)
	for _, hf := range c.Header {
		if m.field(hf.Key) < 0 {
			return false
		}
	}
	for i := range c.Not {
		if !indexOnly(&c.Not[i]) {
			return false
		}
	}
	for i := range c.Or {
		if !indexOnly(&c.Or[i][0]) || !indexOnly(&c.Or[i][1]) {
			return false
		}
	}
	return true
}

// TestSearchIndexEquivalence searches the corpus twice, once reading
// every message and once with the header fields from a local index, and
// wants the same messages for every criterion; criteria the index can
// answer must not read a message.
func TestSearchIndexEquivalence(t *testing.T) {
	t.Logf("corpus seed %d", corpusSeed)
	plain := searchCorpus()
	files := make([]SearchMessage, len(plain))
	for i, m := range plain {
		files[i] = m
	}
	indexed := indexCorpus(t, plain)
	viaIndex := make([]SearchMessage, len(indexed))
	for i, m := range indexed {
		viaIndex[i] = m
	}
	want, err := corpusResults(files)
	if err != nil {
		t.Fatal(err)
	}
	crit := corpusCriteria()
	names := make([]string, 0, len(crit))
	for name := range crit {
		names = append(names, name)
	}
	sort.Strings(names)
	nonEmpty := 0
	for _, name := range names {
		for _, m := range indexed {
			m.reads = 0
		}
		c := crit[name]
		mt := NewMatcher(c, uint32(len(viaIndex)), imap.UID(len(viaIndex)), nil)
		var got []imap.UID
		reads := 0
		for _, msg := range viaIndex {
			ok, err := mt.Match(msg)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if ok {
				got = append(got, msg.UID())
			}
		}
		for _, m := range indexed {
			reads += m.reads
		}
		if !uidsEqual(got, want[name]) {
			t.Errorf("%s: from the index %v, from the files %v", name, got, want[name])
		}
		if indexOnly(c) && reads != 0 {
			t.Errorf("%s: %d messages read, want none", name, reads)
		}
		if len(want[name]) > 0 {
			nonEmpty++
		}
	}
	t.Logf("%d criteria, %d with matches", len(names), nonEmpty)
}

// TestSearchIndexCorpusCases pins down what the file search (and so the
// index) finds for the corpus's hand-written cases.
func TestSearchIndexCorpusCases(t *testing.T) {
	plain := searchCorpus()
	indexed := indexCorpus(t, plain)
	hdr := func(k, v string) *imap.SearchCriteria {
		return &imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: k, Value: v}}}
	}
	day := func(d int) time.Time { return time.Date(2026, 2, d, 0, 0, 0, 0, time.UTC) }
	cases := []struct {
		name string
		c    *imap.SearchCriteria
		want []imap.UID // among the hand-written messages (UIDs 1 to len(corpusFixed))
	}{
		{"encoded word decoded", hdr("Subject", "grüße aus münchen"), []imap.UID{1}},
		{"encoded text not matched", hdr("Subject", "R3LDvMOf"), nil},
		{"adjacent words joined", hdr("Subject", "café crème"), []imap.UID{2}},
		{"unknown charset kept", hdr("From", "=?x-unknown?q?abc?="), []imap.UID{2}},
		{"folded value unfolded", hdr("Subject", "subject continued here and here"), []imap.UID{3}},
		{"folded encoded words", hdr("To", "renée dupont"), []imap.UID{3}},
		{"second Subject", hdr("Subject", "second subject"), []imap.UID{4}},
		{"third Cc", hdr("Cc", "zürich"), []imap.UID{4}},
		{"second Message-ID", hdr("Message-ID", "rep2"), []imap.UID{4}},
		{"empty Subject present", hdr("Subject", ""), []imap.UID{1, 2, 3, 4, 6, 7, 8, 10, 11, 12, 13, 14}},
		{"empty Bcc present", hdr("Bcc", ""), []imap.UID{4, 6}},
		{"missing From", hdr("From", ""), []imap.UID{1, 2, 3, 6, 7, 10, 11, 12, 13}},
		{"key spelled in upper case", hdr("subject", "upper key"), []imap.UID{7}},
		{"key with a space before the colon", hdr("Cc", "spaced"), []imap.UID{7}},
		{"fields after a damaged line", hdr("From", "after"), nil},
		{"header starting with a space", hdr("Subject", "indented"), nil},
		{"raw UTF-8", hdr("Subject", "привет"), []imap.UID{11}},
		{"ISO-8859-7 word", hdr("Subject", "ελληνικά"), []imap.UID{13}},
		// The first Date field counts ("yesterday": unusable, so the
		// internal date, 1-Feb 03:00, stands in), not the second.
		{"first Date field", &imap.SearchCriteria{SentSince: day(4), SentBefore: day(5)}, nil},
		{"first Date unusable", &imap.SearchCriteria{SentSince: day(1), SentBefore: day(2), UID: []imap.UIDSet{imap.UIDSetNum(4)}}, []imap.UID{4}},
		{"Date in its own zone", &imap.SearchCriteria{SentSince: day(7), SentBefore: day(8)}, nil},
		{"Date in its own zone 2", &imap.SearchCriteria{SentSince: day(6), SentBefore: day(7)}, []imap.UID{11}},
	}
	fixed := imap.UIDSet{{Start: 1, Stop: imap.UID(len(corpusFixed))}}
	for _, tc := range cases {
		c := *tc.c
		c.UID = append(slices.Clone(c.UID), fixed)
		for _, via := range []string{"files", "index"} {
			mt := NewMatcher(&c, uint32(len(plain)), imap.UID(len(plain)), nil)
			var got []imap.UID
			for i := range plain {
				var msg SearchMessage = plain[i]
				if via == "index" {
					msg = indexed[i]
				}
				ok, err := mt.Match(msg)
				if err != nil {
					t.Fatal(err)
				}
				if ok {
					got = append(got, msg.UID())
				}
			}
			if !uidsEqual(got, tc.want) {
				t.Errorf("%s (%s): got %v, want %v", tc.name, via, got, tc.want)
			}
		}
	}
}

// TestSearchCheapKeysFirst: a key on the text reads only the messages the
// cheap keys leave, wherever the keys stand in the criteria.
func TestSearchCheapKeysFirst(t *testing.T) {
	plain := searchCorpus()
	hdr := func(k, v string) imap.SearchCriteria {
		return imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: k, Value: v}}}
	}
	seen := imap.SearchCriteria{Flag: []imap.Flag{imap.FlagSeen}}
	body := imap.SearchCriteria{Body: []string{"body"}}
	cases := []struct {
		name  string
		c     imap.SearchCriteria
		reads func(m *testMessage, h *localindex.Headers) bool // which messages may be read
	}{
		{"UNSEEN BODY", imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}, Body: []string{"body"}},
			func(m *testMessage, _ *localindex.Headers) bool { return !hasFlag(m.flags, imap.FlagSeen) }},
		{"BODY NOT SEEN", imap.SearchCriteria{Body: []string{"body"}, Not: []imap.SearchCriteria{seen}},
			func(m *testMessage, _ *localindex.Headers) bool { return !hasFlag(m.flags, imap.FlagSeen) }},
		{"OR BODY SUBJECT, UNSEEN", imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}, Or: [][2]imap.SearchCriteria{{body, hdr("Subject", "report")}}},
			func(m *testMessage, h *localindex.Headers) bool {
				return !hasFlag(m.flags, imap.FlagSeen) && !indexedContains(h, "Subject", "report")
			}},
		{"BODY SUBJECT", imap.SearchCriteria{Body: []string{"body"}, Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "lunch"}}},
			func(m *testMessage, h *localindex.Headers) bool { return indexedContains(h, "Subject", "lunch") }},
		{"NOT (SEEN OR BODY x TO y)", imap.SearchCriteria{Not: []imap.SearchCriteria{{Flag: []imap.Flag{imap.FlagSeen}, Or: [][2]imap.SearchCriteria{{body, hdr("To", "example")}}}}},
			func(m *testMessage, h *localindex.Headers) bool {
				return hasFlag(m.flags, imap.FlagSeen) && !indexedContains(h, "To", "example")
			}},
		{"TEXT found in an indexed field", imap.SearchCriteria{Text: []string{"from: "}, Header: []imap.SearchCriteriaHeaderField{{Key: "From", Value: ""}}},
			func(m *testMessage, h *localindex.Headers) bool { return false }},
		{"LARGER BODY", imap.SearchCriteria{Larger: 1 << 20, Body: []string{"body"}},
			func(m *testMessage, _ *localindex.Headers) bool { return false }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			indexed := indexCorpus(t, plain)
			files := make([]SearchMessage, len(plain))
			for i, m := range plain {
				files[i] = m
			}
			want := NewMatcher(&tc.c, uint32(len(plain)), imap.UID(len(plain)), nil)
			got := NewMatcher(&tc.c, uint32(len(plain)), imap.UID(len(plain)), nil)
			for i, m := range indexed {
				ok1, err1 := want.Match(files[i])
				ok2, err2 := got.Match(m)
				if err1 != nil || err2 != nil || ok1 != ok2 {
					t.Errorf("message %d: %v %v from the files, %v %v with the index", m.uid, ok1, err1, ok2, err2)
				}
				if m.reads > 0 && !tc.reads(m.testMessage, m.headers) {
					t.Errorf("message %d read (flags %v, subject %q)", m.uid, m.flags, m.headers.Subject)
				}
				if m.reads > 1 {
					t.Errorf("message %d read %d times", m.uid, m.reads)
				}
			}
		})
	}
}

// indexedContains is a plain restatement of the search of an indexed
// field: some field of the name contains needle once decoded.
func indexedContains(h *localindex.Headers, name, needle string) bool {
	values := map[string]string{"Subject": h.Subject, "To": h.To}
	bits := map[string]localindex.HeaderSet{"Subject": localindex.HeaderSubject, "To": localindex.HeaderTo}
	if h.Present&bits[name] == 0 {
		return false
	}
	if strings.Contains(strings.ToLower(decodeHeaderValue(values[name])), needle) {
		return true
	}
	for _, f := range h.More {
		if f.Name == name && strings.Contains(strings.ToLower(decodeHeaderValue(f.Value)), needle) {
			return true
		}
	}
	return false
}

// TestSearchIndexIncompleteHeaders: fields without HeadersComplete (a
// record that only knows the first values) are not trusted: the matcher
// reads the file.
func TestSearchIndexIncompleteHeaders(t *testing.T) {
	plain := searchCorpus()
	indexed := indexCorpus(t, plain)
	c := &imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "second"}}}
	mt := NewMatcher(c, uint32(len(plain)), imap.UID(len(plain)), nil)
	var got []imap.UID
	for _, m := range indexed {
		h := *m.headers
		h.Present, h.More = 0, nil
		m.headers = &h
		ok, err := mt.Match(m)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			got = append(got, m.uid)
		}
		if m.reads != 1 {
			t.Errorf("message %d read %d times, want once", m.uid, m.reads)
		}
	}
	if !uidsEqual(got, []imap.UID{4}) {
		t.Errorf("got %v, want [4]", got)
	}
}

// writeCorpusMaildir writes msgs into the maildir dir (cur/, unseen
// unless the message has \Seen, mtimes their internal dates) and gives
// them UIDs.
func writeCorpusMaildir(t *testing.T, dir string, msgs []*testMessage) {
	t.Helper()
	for _, d := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for i, m := range msgs {
		flags := ""
		if hasFlag(m.flags, imap.FlagSeen) {
			flags = "S"
		}
		// ,S= and ,W= give the sizes, so that FETCH INTERNALDATE needs
		// only a stat, not a read.
		name := fmt.Sprintf("%d.M%dP1.corpus,S=%d,W=%d:2,%s", m.date.Unix(), i, len(m.content), len(toCRLF(m.content)), flags)
		path := filepath.Join(dir, "cur", name)
		if err := os.WriteFile(path, m.content, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, m.date, m.date); err != nil {
			t.Fatal(err)
		}
	}
	opt := maildir.DefaultOptions()
	opt.NoFsync = true
	store, err := maildir.New(maildir.Paths{Inbox: dir, Root: dir}, opt)
	if err != nil {
		t.Fatal(err)
	}
	mbox, err := store.Mailbox(t.Context(), "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mbox.Sync(t.Context(), maildir.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	ageSpool(t, dir)
}

// TestSearchIndexMissingOrCorrupt runs the corpus criteria through a real
// client: on a cold mailbox (every message read), warm (from the index),
// after the index files were damaged, and after they were removed. Every
// phase finds what the file search finds.
func TestSearchIndexMissingOrCorrupt(t *testing.T) {
	indexDir := t.TempDir()
	env := newTestEnv(t, func(c *Config) {
		c.Index = openTestIndex(t, indexDir)
		c.MinSyncInterval = -1
	})
	plain := searchCorpus()
	writeCorpusMaildir(t, filepath.Join(env.inbox(), ".Corpus"), plain)
	if err := os.WriteFile(filepath.Join(env.inbox(), ".Corpus", "maildirfolder"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	files := make([]SearchMessage, len(plain))
	byDate := map[int64]imap.UID{}
	for i, m := range plain {
		files[i] = m
		byDate[m.date.Unix()] = m.uid
	}
	want, err := corpusResults(files)
	if err != nil {
		t.Fatal(err)
	}
	crit := corpusCriteria()
	var names []string
	for name, c := range crit {
		if validUTF8Criteria(c) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	// A sample of the criteria for the phases after the warm one (under
	// the race detector the whole list takes seconds per phase).
	var sample []string
	for i := 0; i < len(names); i += 5 {
		sample = append(sample, names[i])
	}
	// Criteria whose first use reads the files: a cold phase runs them
	// first.
	first := []string{`HEADER "Subject" "report"`, "SENTSINCE 33", `HEADER "Bcc" ""`, `HEADER "To" "example"`}

	c := env.dial(nil)
	// parsed counts the messages the node has parsed (in its index).
	parsed := func(uids map[imap.UID]imap.UID) int {
		env.f.reg.boxesMu.Lock()
		defer env.f.reg.boxesMu.Unlock()
		n := 0
		for _, b := range env.f.reg.boxes {
			for u := range uids {
				if _, ok := b.parsed(uint32(u)); ok {
					n++
				}
			}
		}
		return n
	}
	check := func(phase string, names []string) {
		t.Helper()
		// The server's UIDs, by the corpus's: internal dates are unique.
		msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, InternalDate: true}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		corpusUID := map[imap.UID]imap.UID{}
		for _, m := range msgs {
			corpusUID[m.UID] = byDate[m.InternalDate.Unix()]
		}
		if len(corpusUID) != len(plain) {
			t.Fatalf("%s: %d messages, want %d", phase, len(corpusUID), len(plain))
		}
		n := parsed(corpusUID)
		t.Logf("%s: %d of %d messages parsed before the searches", phase, n, len(plain))
		if !strings.Contains(phase, "warm") && !strings.Contains(phase, "rebuilt") && n != 0 {
			t.Errorf("%s: %d messages parsed already, want none (a search of the files)", phase, n)
		}
		for _, name := range names {
			if crit[name] == nil {
				t.Fatalf("no criteria %s", name)
			}
			d, err := c.UIDSearch(crit[name], nil).Wait()
			if err != nil {
				t.Fatalf("%s: SEARCH %s: %v", phase, name, err)
			}
			var got []imap.UID
			for _, u := range d.AllUIDs() {
				got = append(got, corpusUID[u])
			}
			slices.Sort(got)
			if !uidsEqual(got, want[name]) {
				t.Errorf("%s: SEARCH %s: %v, want %v", phase, name, got, want[name])
			}
		}
	}
	// reopen leaves the mailbox (the last session to leave saves the
	// index), damages the index and selects the mailbox again.
	reopen := func(damage func()) {
		t.Helper()
		if err := c.Unselect().Wait(); err != nil {
			t.Fatal(err)
		}
		damage()
		mustSelect(t, c, "Corpus", true)
	}

	mustSelect(t, c, "Corpus", true)
	check("cold", first)
	check("warm", names)
	reopen(func() {})
	check("warm, index loaded from disk", sample)
	reopen(func() {
		n := 0
		_ = filepath.Walk(indexDir, func(p string, fi os.FileInfo, err error) error {
			if err != nil || !fi.Mode().IsRegular() || fi.Size() < 64 {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return nil
			}
			for i := len(b) / 3; i < len(b)/3+16; i++ {
				b[i] ^= 0x5a
			}
			if os.WriteFile(p, b, 0o600) == nil {
				n++
			}
			return nil
		})
		if n == 0 {
			t.Fatal("no index file to damage")
		}
	})
	check("damaged index", first)
	check("damaged index, rebuilt", sample)
	reopen(func() {
		if err := env.f.cfg.Index.RemoveUser("alice"); err != nil {
			t.Fatal(err)
		}
	})
	check("index removed", first)
	check("index removed, rebuilt", sample)
}

// validUTF8Criteria reports whether every string of c is UTF-8 (the
// client sends only those).
func validUTF8Criteria(c *imap.SearchCriteria) bool {
	for _, hf := range c.Header {
		if !utf8.ValidString(hf.Key) || !utf8.ValidString(hf.Value) {
			return false
		}
	}
	for _, s := range append(slices.Clone(c.Body), c.Text...) {
		if !utf8.ValidString(s) {
			return false
		}
	}
	for i := range c.Not {
		if !validUTF8Criteria(&c.Not[i]) {
			return false
		}
	}
	for i := range c.Or {
		if !validUTF8Criteria(&c.Or[i][0]) || !validUTF8Criteria(&c.Or[i][1]) {
			return false
		}
	}
	return true
}
