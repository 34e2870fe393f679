package sortthread

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseMessageDate(t *testing.T) {
	tests := []struct {
		in   string
		want string // RFC 3339 in UTC, "" = not a date
	}{
		{"Mon, 2 Jan 2006 15:04:05 -0700", "2006-01-02T22:04:05Z"},
		{"2 Jan 2006 15:04:05 +0000", "2006-01-02T15:04:05Z"},
		{"Tue,  3 Feb 2009 01:02 +0130 (CET)", "2009-02-02T23:32:00Z"},
		{"3 Feb 09 01:02:03 GMT", "2009-02-03T01:02:03Z"},
		{"3 Feb 99 01:02:03 EST", "1999-02-03T06:02:03Z"},
		{"3 february 2009 01:02:03 PDT", "2009-02-03T08:02:03Z"},
		{"3 Feb 2009 01:02:03", "2009-02-03T01:02:03Z"},
		{"(comment) Wed, 4 Mar 2020 10:00:00 +0100", "2020-03-04T09:00:00Z"},
		{"1 Jan 69 10.00.00 A", "2069-01-01T09:00:00Z"},
		{"1 Jan 70 10:00 Z", "1970-01-01T10:00:00Z"},
		{"1 Jan 2020 10:00:00 N", "2020-01-01T11:00:00Z"},
		{"1 Jan 2020 10:00:00 M", "2019-12-31T22:00:00Z"},
		{"1 Jan 2020 10:00:00 CDT", "2020-01-01T15:00:00Z"},
		{"1 Jan 2020 10:00:00 Europe/Paris", "2020-01-01T10:00:00Z"},
		{"", ""},
		{"yesterday", ""},
		{"Monday, 1 Jan 2020 10:00:00 +0000", ""},
		{"Mon 1 Jan 2020 10:00:00 +0000", ""},
		{"1 Jan 2020 10:0 +0000", ""},
		{"1 Jan 2020 10:00:60 +0000", ""},
		{"1 Jan 202 10:00 +0000", ""},
		{"1 Jan 1850 10:00 +0000", ""},
		{"31 Feb 2020 10:00:00 +0000", ""},
		{"1 Jan 2020 25:00:00 +0000", ""},
		{"1 Foo 2020 10:00:00 +0000", ""},
		{"1 Jan 2020 10:00: +0000", ""},
		{"1 Jan 2020 10:00:00:00 +0000", ""},
		{"1 Jan 2020 10 +0000", ""},
	}
	for _, tt := range tests {
		got, ok := parseMessageDate(tt.in)
		switch {
		case tt.want == "" && ok:
			t.Errorf("parseMessageDate(%q) = %v, want failure", tt.in, got)
		case tt.want != "" && (!ok || got.UTC().Format(time.RFC3339) != tt.want):
			t.Errorf("parseMessageDate(%q) = %v, %v; want %s", tt.in, got.UTC(), ok, tt.want)
		}
	}
}

func TestParseFirstAddress(t *testing.T) {
	tests := []struct {
		in                    string
		mailbox, domain, name string
	}{
		{"Alice <alice@example.com>", "alice", "example.com", "Alice"},
		{`"Smith, Bob" <Bob.Smith@Example.COM>, carol@x`, "Bob.Smith", "Example.COM", "Smith, Bob"},
		{"dave@example.org", "dave", "example.org", ""},
		{"dave@example.org (Dave D)", "dave", "example.org", "Dave D"},
		{"  , erin@x, frank@y", "erin", "x", ""},
		{"<@route1,@route2:gina@z>", "gina", "z", ""},
		{"undisclosed-recipients:;", "undisclosed-recipients", "", ""},
		{"Team: hal@a, ivy@b;", "Team", "", ""},
		{"=?UTF-8?Q?J=C3=B6rg?= <joerg@x>", "joerg", "x", "=?UTF-8?Q?J=C3=B6rg?="},
		{`"quoted local"@x`, "quoted local", "x", ""},
		{"justaname", "justaname", "MISSING_DOMAIN", ""},
		{"justaname (Just A)", "justaname", "MISSING_DOMAIN", "Just A"},
		{"John Smith", "MISSING_MAILBOX", "MISSING_DOMAIN", "John Smith"},
		{"<>", "MISSING_MAILBOX", "MISSING_DOMAIN", ""},
		{"Bounce <>", "MISSING_MAILBOX", "MISSING_DOMAIN", "Bounce"},
		{"<user>", "user", "MISSING_DOMAIN", ""},
		{"(lead) c@z", "c", "z", ""},
		{"", "", "", ""},
		{"Broken <unterminated@x", "unterminated", "x", "Broken"},
	}
	for _, tt := range tests {
		a := parseFirstAddress(tt.in)
		if a.mailbox != tt.mailbox || a.domain != tt.domain || a.name != tt.name {
			t.Errorf("parseFirstAddress(%q) = %q %q %q; want %q %q %q", tt.in,
				a.mailbox, a.domain, a.name, tt.mailbox, tt.domain, tt.name)
		}
	}
	if got := displayKey("=?UTF-8?Q?J=C3=B6rg?= <joerg@x>"); got != UnicodeCasemap("Jörg") {
		t.Errorf("displayKey decodes the name: got %q", got)
	}
	for in, want := range map[string]string{
		"<zed@Example.com>":      "ZED@EXAMPLE.COM",
		"group: a@b;":            "GROUP",
		"<>":                     "MISSING_MAILBOX@MISSING_DOMAIN",
		"\"\" <q@x>":             "Q@X",
		"=?UTF-8?Q?=20?= <sp@x>": "SP@X",
		"Ann   Lee\r\n <ann@x>":  "ANN LEE",
		"":                       "",
	} {
		if got := displayKey(in); got != want {
			t.Errorf("displayKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func seqs(msgs []Message) []uint32 {
	out := make([]uint32, len(msgs))
	for i, m := range msgs {
		out[i] = m.SeqNum
	}
	return out
}

func TestSort(t *testing.T) {
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	msgs := []Message{
		{SeqNum: 1, UID: 10, Size: 300, InternalDate: base.Add(3 * time.Hour),
			Date: "Mon, 1 Jan 2024 05:00:00 +0000", Subject: "Re: banana", From: "Zoe <zoe@x>", To: "bob@y", Cc: "carl@z"},
		{SeqNum: 2, UID: 20, Size: 100, InternalDate: base.Add(1 * time.Hour),
			Date: "Mon, 1 Jan 2024 09:00:00 +0500", Subject: "apple", From: "adam@x", To: "Alice <alice@y>"},
		{SeqNum: 3, UID: 30, Size: 200, InternalDate: base.Add(2 * time.Hour),
			Date: "garbage", Subject: "[list] Cherry (fwd)", From: "\"Mike\" <mike@x>", To: "Bob <Bob@y>", Cc: "Anna <anna@z>"},
		{SeqNum: 4, UID: 40, Size: 100, InternalDate: base.Add(1 * time.Hour),
			Subject: "Fwd: APPLE", From: "Bert <bert@x>"},
	}
	tests := []struct {
		keys []SortKey
		want []uint32
	}{
		{[]SortKey{{Criterion: SortArrival}}, []uint32{2, 4, 3, 1}},
		{[]SortKey{{Criterion: SortArrival, Reverse: true}}, []uint32{1, 3, 2, 4}},
		// 2 sent 04:00Z, 3 falls back to 02:00 internal, 4 to 01:00, 1 is 05:00.
		{[]SortKey{{Criterion: SortDate}}, []uint32{4, 3, 2, 1}},
		{[]SortKey{{Criterion: SortDate, Reverse: true}}, []uint32{1, 2, 3, 4}},
		{[]SortKey{{Criterion: SortSize}}, []uint32{2, 4, 3, 1}},
		{[]SortKey{{Criterion: SortSize, Reverse: true}, {Criterion: SortSubject}}, []uint32{1, 3, 2, 4}},
		{[]SortKey{{Criterion: SortSubject}}, []uint32{2, 4, 1, 3}},
		{[]SortKey{{Criterion: SortSubject, Reverse: true}}, []uint32{3, 1, 2, 4}},
		{[]SortKey{{Criterion: SortSubject}, {Criterion: SortSize, Reverse: true}}, []uint32{2, 4, 1, 3}},
		{[]SortKey{{Criterion: SortFrom}}, []uint32{2, 4, 3, 1}},
		{[]SortKey{{Criterion: SortTo}}, []uint32{4, 2, 1, 3}},
		{[]SortKey{{Criterion: SortCc}}, []uint32{2, 4, 3, 1}},
		{[]SortKey{{Criterion: SortDisplayFrom}}, []uint32{2, 4, 3, 1}},
		{[]SortKey{{Criterion: SortDisplayTo}}, []uint32{4, 2, 3, 1}}, // "BOB" < "BOB@Y"
		{nil, []uint32{1, 2, 3, 4}},
	}
	for _, tt := range tests {
		got := seqs(Sort(msgs, tt.keys))
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Sort(%v) = %v, want %v", tt.keys, got, tt.want)
		}
		// The input order does not matter.
		rev := []Message{msgs[3], msgs[1], msgs[2], msgs[0]}
		if got := seqs(Sort(rev, tt.keys)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Sort(%v) on shuffled input = %v, want %v", tt.keys, got, tt.want)
		}
	}
	if got := SortNumbers(msgs, []SortKey{{Criterion: SortSubject}}, true); !reflect.DeepEqual(got, []uint32{20, 40, 10, 30}) {
		t.Errorf("SortNumbers uid = %v", got)
	}
}

var allKeys = []SortKey{
	{Criterion: SortArrival}, {Criterion: SortCc}, {Criterion: SortDate}, {Criterion: SortFrom},
	{Criterion: SortSize}, {Criterion: SortSubject}, {Criterion: SortTo},
	{Criterion: SortDisplayFrom}, {Criterion: SortDisplayTo, Reverse: true},
}

// FuzzSort feeds arbitrary header values (one message per line, fields
// separated by "|": From, To, Cc, Date, Subject) to every sort key: the
// result must be a permutation of the input, the same for any input order.
func FuzzSort(f *testing.F) {
	f.Add("Alice <a@x>|b@y|(c) c@z|Mon, 1 Jan 2024 10:00:00 +0000|Re: hi\nbob@x|\"q\" <@r:q@y>|g:;|2 Feb 99 1:2 EST|[fwd: hi]")
	f.Add("=?UTF-8?Q?J=C3=B6rg?= <j@x>|<<>>|,,,|((|((fwd)")
	f.Add("a@b (Name (nested))|\"unterminated|x@|Mon,|\t\r\n")
	f.Fuzz(func(t *testing.T, data string) {
		var msgs []Message
		for i, line := range strings.Split(data, "\n") {
			if i >= 100 {
				break
			}
			p := strings.SplitN(line, "|", 5)
			for len(p) < 5 {
				p = append(p, "")
			}
			msgs = append(msgs, Message{SeqNum: uint32(i + 1), UID: uint32(i + 1), Size: int64(len(line)),
				InternalDate: time.Unix(int64(len(p[3])), 0), From: p[0], To: p[1], Cc: p[2], Date: p[3], Subject: p[4]})
		}
		for _, k := range allKeys {
			got := seqs(Sort(msgs, []SortKey{k}))
			seen := make(map[uint32]bool)
			for _, s := range got {
				if seen[s] || s < 1 || int(s) > len(msgs) {
					t.Fatalf("%v: result %v is not a permutation", k, got)
				}
				seen[s] = true
			}
			rev := make([]Message, len(msgs))
			for i := range msgs {
				rev[len(msgs)-1-i] = msgs[i]
			}
			if again := seqs(Sort(rev, []SortKey{k})); !reflect.DeepEqual(again, got) {
				t.Fatalf("%v: order depends on the input order: %v vs %v", k, got, again)
			}
		}
	})
}
