package difftest

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/nfsimap/nfsimap/internal/corpus"
)

// envelopeCases are headers the generated corpus does not have (or has
// rarely), each a message of its own: groups, 8-bit text, empty and
// folded fields, unparsable dates, odd message ids, broken addresses.
var envelopeCases = []string{
	"To: undisclosed-recipients:;\r\nCc: Friends: a@b.example, \"B, Jr.\" <b@c.example>;, x@y.example\r\nSubject: groups\r\n",
	"Bcc: Empty:;, Two: one@x.example, two@x.example;\r\nFrom: Ann <ann@x.example>\r\n",
	"Subject: café naïve\r\nFrom: Jörg Müller <j@x.example>\r\nTo: \"Zoë\" <z@x.example>\r\n",
	"Subject:\r\nFrom: a@x.example\r\n",
	"Subject:    \r\nSender:\r\nReply-To:\r\nFrom: a@x.example\r\n",
	"Date: sometime yesterday\r\nSubject: bad date\r\n",
	"Date: Tue, 3 Feb 2026 10:00:00 +0100 (CET)\r\nSubject: date with a comment\r\n",
	"Date: Tue,\r\n 3 Feb 2026\r\n\t10:00:00 +0100\r\nSubject: a\r\n\tfolded\r\n   subject   \r\n",
	"To: a@x.example,\r\n b@x.example,\r\n\t\"Folded\r\n Name\" <c@x.example>\r\nIn-Reply-To: <a@x.example>\r\n <b@x.example>\r\n",
	"Message-ID: <x@y.example> (a comment)\r\nIn-Reply-To: <p@q.example> (from \"someone\" at Jan 5)\r\n",
	"Message-ID: no-brackets@y.example\r\nIn-Reply-To: garbage\r\n",
	"Message-ID:\r\nIn-Reply-To:\r\n",
	"Subject: he said \"hi\" \\ there\r\n",
	"Subject: \"q\" \"u\" \"o\" \"t\" \"e\" \"s\"\r\n",
	"Subject:   lots   of\tspace  \r\n",
	"Subject: =?utf-8?q?caf=C3=A9?= =?iso-8859-1?q?na=EFve?=\r\nFrom: =?utf-8?b?SsO2cmc=?= <j@x.example>\r\n",
	"From: <@route1.example,@route2.example:user@host.example>\r\n",
	"From: user@host.example (Real Name)\r\nTo: user@host.example (first) (second)\r\n",
	"From: \"unterminated\r\n",
	"From: <>\r\nTo: user\r\nCc: \"quoted only\"\r\n",
	"To: a@x.example, , c@x.example\r\nCc: @host.example\r\nBcc: Name <user@host.example\r\n",
	"To: two words\r\nCc: x@[192.0.2.1], \"odd local\"@x.example\r\n",
	"From: J. Doe <j@x.example>\r\nTo: .Doe <d@x.example>\r\nCc: Doe, John <j@x.example>\r\n",
	"Subject: first\r\nSubject: second\r\nFrom: one@x.example\r\nFrom: two@x.example\r\n",
	"From: a@x.example (comment with \\) and (nested) parens)\r\n",
	"X-Only: nothing that ENVELOPE uses\r\n",
	"subject: lower case names\r\nFROM: Upper <u@x.example>\r\nmessage-id: <l@x.example>\r\n",
	"Subject: trailing tab\t\r\nTo: \"  spaced   name  \" <s@x.example>\r\n",
	"To: jörg@exämple.example\r\nFrom: \"A \\\"B\\\" C\" <a@x.example>\r\nCc: \"tab\there\" <t@x.example>\r\n",
	"Subject: " + strings.Repeat("long subject ", 400) + "\r\n",
	"Bcc: :;\r\nFrom: (just a comment)\r\nTo: =?utf-8?q?Gr=C3=BCppe?=: a@x.example;\r\n",
	"Message-ID: <jörg@x.example>\r\nDate: Tue, 3 Feb 2026 10:00:00 +0100 (Mitteleuropäische Zeit)\r\n",
	"Subject: \ttab first\r\nIn-Reply-To: <a@x>\r\n\t<b@x>\r\n",
	"Reply-To: , , a@x.example\r\nSender: a@x.example,\r\n",
	"To: \"\" <empty@x.example>, <noname@x.example>, Name <>\r\n",
	"To: " + strings.Repeat("Some Person <some.person@lists.example.org>,\r\n ", 300) + "last@x.example\r\n", // several placeholder chunks
	"Subject\r\nFrom a@x.example\r\nTo: ok@x.example\r\n",
	"Subject: lone\rcarriage return\r\n",
	"Content-Type: multipart/mixed; boundary=b\r\nSubject: outer\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n" +
		"--b\r\nContent-Type: message/rfc822\r\n\r\nDate: not a date\r\nSubject:\r\nTo: grp: a@x.example;\r\n" +
		"Message-ID: <in@x.example> (c)\r\n\r\ninner body\r\n--b--\r\n",
}

// TestEnvelopeEdgeCases appends each of envelopeCases to a mailbox on both
// servers and compares ENVELOPE byte for byte (quoted string or literal
// included), and the envelope inside BODYSTRUCTURE as values.
func TestEnvelopeEdgeCases(t *testing.T) {
	t.Parallel()
	p := startPair(t, corpus.Options{Seed: 11, Messages: 3})
	for _, s := range []side{ours, dove} {
		c := p.client(s)
		if _, err := c.Command("CREATE Env"); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		for i, h := range envelopeCases {
			msg := h
			if !strings.Contains(h, "\r\n\r\n") {
				msg += "\r\nbody of case " + fmt.Sprint(i) + "\r\n"
			}
			if _, err := c.Command("APPEND Env " + Literal(msg)); err != nil {
				t.Fatalf("%s: APPEND case %d: %v", s, i, err)
			}
		}
		// LF-only line ends in an appended message: the envelope must
		// not change.
		if _, err := c.Command("APPEND Env " + Literal("Subject: lf\n\tonly\nTo: a@x.example,\n b@x.example\n\nbody\n")); err != nil {
			t.Fatalf("%s: APPEND: %v", s, err)
		}
		if err := c.Select("Env"); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	raw := func(s side, item string) [][]byte {
		resps, err := p.client(s).Command("FETCH 1:* (" + item + ")")
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		var out [][]byte
		for _, r := range resps {
			if r.Name == "FETCH" {
				out = append(out, r.Raw)
			}
		}
		if len(out) != len(envelopeCases)+1 {
			t.Fatalf("%s: %d FETCH responses", s, len(out))
		}
		return out
	}
	o, d := raw(ours, "ENVELOPE"), raw(dove, "ENVELOPE")
	for i := range o {
		if !bytes.Equal(o[i], d[i]) {
			t.Errorf("message %d:\n  nfsimap %q\n  dovecot %q", i+1, o[i], d[i])
		}
	}
	ob, db := raw(ours, "BODYSTRUCTURE"), raw(dove, "BODYSTRUCTURE")
	last := len(envelopeCases) - 1 // the message/rfc822 case
	envOf := func(b []byte) Value {
		r, err := ParseResponse(b)
		if err != nil {
			t.Fatal(err)
		}
		it, err := FetchItems(r)
		if err != nil {
			t.Fatal(err)
		}
		bs := it["BODYSTRUCTURE"]
		if bs.Kind != List || len(bs.List) < 2 || bs.List[1].Kind != List || len(bs.List[1].List) < 8 {
			t.Fatalf("unexpected BODYSTRUCTURE %s", bs)
		}
		return bs.List[1].List[7]
	}
	if oe, de := envOf(ob[last]), envOf(db[last]); !Equal(oe, de) {
		t.Errorf("envelope of the message/rfc822 part:\n  nfsimap %s\n  dovecot %s", oe, de)
	}
}
