package session

import (
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

type testMessage struct {
	seq     uint32
	uid     imap.UID
	flags   []imap.Flag
	date    time.Time
	content []byte
}

func (m *testMessage) SeqNum() uint32          { return m.seq }
func (m *testMessage) UID() imap.UID           { return m.uid }
func (m *testMessage) Flags() []imap.Flag      { return m.flags }
func (m *testMessage) InternalDate() time.Time { return m.date }
func (m *testMessage) Size() int64             { return int64(len(m.content)) }
func (m *testMessage) Content() ([]byte, error) {
	return m.content, nil
}

const msgPlain = "From: =?iso-8859-1?q?J=F6rg_M=FCller?= <jorg@example.org>\n" +
	"To: alice@example.com, Bob <bob@example.net>\n" +
	"Cc: carol@example.com\n" +
	"Subject: =?utf-8?b?R3LDvMOfZSBhdXMgTcO8bmNoZW4=?=\n" +
	"Date: Tue, 03 Feb 2026 10:00:00 +0100\n" +
	"X-Spam: yes\n" +
	"Message-ID: <one@example.org>\n" +
	"\n" +
	"Hello World, this is the Body.\n"

const msgMultipart = "From: dave@example.com\r\n" +
	"To: erin@example.com\r\n" +
	"Bcc: secret@example.com\r\n" +
	"Subject: report\r\n" +
	"Date: Sat, 31 Jan 2026 23:30:00 -0500\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=XX\r\n" +
	"\r\n" +
	"preamble\r\n" +
	"--XX\r\n" +
	"Content-Type: text/plain; charset=iso-8859-1\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"Caf=E9 cr=E8me br=FBl=E9e\r\n" +
	"--XX\r\n" +
	"Content-Type: application/octet-stream\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"c2VjcmV0YmluYXJ5\r\n" +
	"--XX\r\n" +
	"Content-Type: message/rfc822\r\n" +
	"\r\n" +
	"Subject: inner subject\r\n" +
	"\r\n" +
	"inner body text\r\n" +
	"--XX--\r\n"

func testMessages() []SearchMessage {
	return []SearchMessage{
		&testMessage{seq: 1, uid: 10, flags: []imap.Flag{imap.FlagSeen, "$Label1"}, date: time.Date(2026, 2, 3, 12, 0, 0, 0, time.UTC), content: toCRLF([]byte(msgPlain))},
		&testMessage{seq: 2, uid: 20, flags: []imap.Flag{imap.FlagDeleted, FlagRecent}, date: time.Date(2026, 2, 1, 0, 30, 0, 0, time.UTC), content: []byte(msgMultipart)},
		&testMessage{seq: 3, uid: 30, flags: []imap.Flag{imap.FlagFlagged, imap.FlagAnswered, imap.FlagDraft, FlagRecent, imap.FlagSeen}, date: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), content: []byte("Subject: no date\r\n\r\nx\r\n")},
	}
}

func runMatch(t *testing.T, c *imap.SearchCriteria) []imap.UID {
	t.Helper()
	msgs := testMessages()
	m := NewMatcher(c, uint32(len(msgs)), 30, imap.UIDSetNum(20))
	var out []imap.UID
	for _, msg := range msgs {
		ok, err := m.Match(msg)
		if err != nil {
			t.Fatalf("match: %v", err)
		}
		if ok {
			out = append(out, msg.UID())
		}
	}
	return out
}

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func TestMatcherKeys(t *testing.T) {
	hdr := func(k, v string) *imap.SearchCriteria {
		return &imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: k, Value: v}}}
	}
	tests := []struct {
		name string
		c    *imap.SearchCriteria
		want []imap.UID
	}{
		{"ALL", &imap.SearchCriteria{}, []imap.UID{10, 20, 30}},
		{"seq 2:*", &imap.SearchCriteria{SeqNum: []imap.SeqSet{{{Start: 2, Stop: 0}}}}, []imap.UID{20, 30}},
		{"seq *", &imap.SearchCriteria{SeqNum: []imap.SeqSet{{{Start: 0, Stop: 0}}}}, []imap.UID{30}},
		{"seq 1,3", &imap.SearchCriteria{SeqNum: []imap.SeqSet{imap.SeqSetNum(1, 3)}}, []imap.UID{10, 30}},
		{"UID 15:25", &imap.SearchCriteria{UID: []imap.UIDSet{{{Start: 15, Stop: 25}}}}, []imap.UID{20}},
		{"UID 100:* contains max", &imap.SearchCriteria{UID: []imap.UIDSet{{{Start: 100, Stop: 0}}}}, []imap.UID{30}},
		{"UID $", &imap.SearchCriteria{UID: []imap.UIDSet{imap.SearchRes()}}, []imap.UID{20}},
		{"SEEN", &imap.SearchCriteria{Flag: []imap.Flag{imap.FlagSeen}}, []imap.UID{10, 30}},
		{"UNSEEN", &imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, []imap.UID{20}},
		{"DELETED", &imap.SearchCriteria{Flag: []imap.Flag{imap.FlagDeleted}}, []imap.UID{20}},
		{"ANSWERED FLAGGED DRAFT", &imap.SearchCriteria{Flag: []imap.Flag{imap.FlagAnswered, imap.FlagFlagged, imap.FlagDraft}}, []imap.UID{30}},
		{"KEYWORD case-insensitive", &imap.SearchCriteria{Flag: []imap.Flag{"$label1"}}, []imap.UID{10}},
		{"UNKEYWORD", &imap.SearchCriteria{NotFlag: []imap.Flag{"$Label1"}}, []imap.UID{20, 30}},
		{"RECENT", &imap.SearchCriteria{Flag: []imap.Flag{FlagRecent}}, []imap.UID{20, 30}},
		{"NEW", &imap.SearchCriteria{Flag: []imap.Flag{FlagRecent}, NotFlag: []imap.Flag{imap.FlagSeen}}, []imap.UID{20}},
		{"OLD", &imap.SearchCriteria{NotFlag: []imap.Flag{FlagRecent}}, []imap.UID{10}},
		{"BEFORE 3-Feb-2026", &imap.SearchCriteria{Before: day(2026, 2, 3)}, []imap.UID{20}},
		{"SINCE 3-Feb-2026", &imap.SearchCriteria{Since: day(2026, 2, 3)}, []imap.UID{10, 30}},
		{"ON 1-Feb-2026", &imap.SearchCriteria{Since: day(2026, 2, 1), Before: day(2026, 2, 2)}, []imap.UID{20}},
		// The Date: header counts in its own zone: 31-Jan 23:30 -0500.
		{"SENTON 31-Jan-2026", &imap.SearchCriteria{SentSince: day(2026, 1, 31), SentBefore: day(2026, 2, 1)}, []imap.UID{20}},
		{"SENTBEFORE 1-Feb-2026", &imap.SearchCriteria{SentBefore: day(2026, 2, 1)}, []imap.UID{20}},
		// No Date: header: the internal date stands in.
		{"SENTSINCE 1-Mar-2026", &imap.SearchCriteria{SentSince: day(2026, 3, 1)}, []imap.UID{30}},
		{"LARGER", &imap.SearchCriteria{Larger: 100}, []imap.UID{10, 20}},
		{"SMALLER", &imap.SearchCriteria{Smaller: 100}, []imap.UID{30}},
		{"SUBJECT encoded", hdr("Subject", "grüße"), []imap.UID{10}},
		{"SUBJECT plain", hdr("Subject", "REPORT"), []imap.UID{20}},
		{"FROM encoded name", hdr("From", "müller"), []imap.UID{10}},
		{"FROM address", hdr("From", "dave@"), []imap.UID{20}},
		{"TO", hdr("To", "bob@example.net"), []imap.UID{10}},
		{"CC", hdr("Cc", "carol"), []imap.UID{10}},
		{"BCC", hdr("Bcc", "secret"), []imap.UID{20}},
		{"HEADER exists", hdr("X-Spam", ""), []imap.UID{10}},
		{"HEADER value", hdr("x-spam", "YES"), []imap.UID{10}},
		{"HEADER missing", hdr("X-Nothing", ""), nil},
		{"BODY plain", &imap.SearchCriteria{Body: []string{"hello world"}}, []imap.UID{10}},
		{"BODY not header", &imap.SearchCriteria{Body: []string{"Subject"}}, []imap.UID{20}}, // the attached message's header
		{"BODY charset decoded", &imap.SearchCriteria{Body: []string{"CRÈME"}}, []imap.UID{20}},
		{"BODY skips binary parts", &imap.SearchCriteria{Body: []string{"secretbinary"}}, nil},
		{"BODY nested message", &imap.SearchCriteria{Body: []string{"inner body"}}, []imap.UID{20}},
		{"TEXT header", &imap.SearchCriteria{Text: []string{"x-spam: yes"}}, []imap.UID{10}},
		{"TEXT body", &imap.SearchCriteria{Text: []string{"café"}}, []imap.UID{20}},
		{"NOT", &imap.SearchCriteria{Not: []imap.SearchCriteria{{Flag: []imap.Flag{imap.FlagSeen}}}}, []imap.UID{20}},
		{"OR", &imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{{Flag: []imap.Flag{imap.FlagDeleted}}, {Flag: []imap.Flag{imap.FlagDraft}}}}}, []imap.UID{20, 30}},
		{"AND nesting", &imap.SearchCriteria{
			Flag: []imap.Flag{imap.FlagSeen},
			Not:  []imap.SearchCriteria{{Or: [][2]imap.SearchCriteria{{{Flag: []imap.Flag{imap.FlagDraft}}, {Body: []string{"nothing"}}}}}},
		}, []imap.UID{10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runMatch(t, tt.c)
			if !uidsEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func uidsEqual(a, b []imap.UID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSearchResult(t *testing.T) {
	msgs := testMessages()
	d := searchResult(true, msgs[1:])
	if d.Min != 20 || d.Max != 30 || d.Count != 2 || d.All.String() != "20,30" {
		t.Errorf("uid result %+v %v", d, d.All)
	}
	d = searchResult(false, nil)
	if d.Count != 0 || d.All == nil || d.All.String() != "" {
		t.Errorf("empty result %+v", d)
	}
}

func TestToCRLF(t *testing.T) {
	for in, want := range map[string]string{
		"":             "",
		"a\nb\n":       "a\r\nb\r\n",
		"a\r\nb\n":     "a\r\nb\r\n",
		"\n\n":         "\r\n\r\n",
		"a\r\n":        "a\r\n",
		"x\ry\n\r\n\n": "x\ry\r\n\r\n\r\n",
	} {
		got := toCRLF([]byte(in))
		if string(got) != want {
			t.Errorf("toCRLF(%q) = %q, want %q", in, got, want)
		}
	}
	if !strings.Contains(string(toCRLF([]byte(msgPlain))), "\r\n\r\nHello") {
		t.Error("msgPlain not converted")
	}
}

// TestHeaderSearchDecodedOnly: a header search matches the decoded text
// of RFC 2047 words, not their encoded form (Dovecot does the same).
func TestHeaderSearchDecodedOnly(t *testing.T) {
	hdr := func(k, v string) *imap.SearchCriteria {
		return &imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: k, Value: v}}}
	}
	if got := runMatch(t, hdr("Subject", "R3LDvMOf")); len(got) != 0 {
		t.Errorf("SUBJECT of the base64 text matched %v", got)
	}
	if got := runMatch(t, hdr("Subject", "utf-8")); len(got) != 0 {
		t.Errorf("SUBJECT of the charset name matched %v", got)
	}
	if got := runMatch(t, hdr("Subject", "grüße")); len(got) != 1 || got[0] != 10 {
		t.Errorf("SUBJECT of the decoded text matched %v, want [10]", got)
	}
}

func TestDecodeHeaderValue(t *testing.T) {
	cases := []struct{ in, want string }{
		{"=?utf-8?q?caf=C3=A9?= au lait", "café au lait"},
		{"=?utf-8?q?a?= =?utf-8?q?b?=", "ab"},
		// A word in an unknown charset stays as it is; the others decode.
		{"=?x-unknown?q?abc?= =?utf-8?q?caf=C3=A9?=", "=?x-unknown?q?abc?= café"},
		{"=?utf-8?q?a?= =?x-unknown?q?b?= =?utf-8?q?c?=", "a =?x-unknown?q?b?= c"},
		{"plain text", "plain text"},
	}
	for _, c := range cases {
		if got := decodeHeaderValue(c.in); got != c.want {
			t.Errorf("decodeHeaderValue(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
