package session

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
)

// The search corpus: messages whose header fields exercise what a search
// of the indexed header fields must get right the way a search of the
// file does (RFC 2047 words in several charsets, broken and adjacent
// words, folded lines, repeated and missing fields, empty fields, odd
// key spellings, bad dates, damaged headers), and criteria over them.

// corpusFixed are hand-written messages (LF line ends; searchCorpus
// converts them to CRLF).
var corpusFixed = []string{
	// Encoded words, in several charsets and encodings.
	"From: =?iso-8859-1?q?J=F6rg_M=FCller?= <jorg@example.org>\n" +
		"To: alice@example.com, Bob <bob@example.net>\n" +
		"Cc: carol@example.com\n" +
		"Subject: =?utf-8?b?R3LDvMOfZSBhdXMgTcO8bmNoZW4=?=\n" +
		"Date: Tue, 03 Feb 2026 10:00:00 +0100\n" +
		"Message-ID: <one@example.org>\n" +
		"X-Spam: yes\n\nHello World.\n",
	// Adjacent words (the space between them goes), an unknown charset,
	// a broken word.
	"Subject: =?utf-8?q?caf=C3=A9?= =?utf-8?q?_cr=C3=A8me?=\n" +
		"From: =?x-unknown?q?abc?= <x@example.org>\n" +
		"To: =?utf-8?b?!!!?= <broken@example.org>\n" +
		"Date: Sat, 31 Jan 2026 23:30:00 -0500\n\nbody\n",
	// Folded fields, folding between encoded words.
	"Subject: a long subject\n  continued here\n\tand here\n" +
		"From: Dave\n <dave@example.com>\n" +
		"To: =?utf-8?q?Ren=C3=A9e?=\n =?utf-8?q?_Dupont?= <renee@example.fr>,\n erin@example.com\n" +
		"References: <r1@example.org>\n <r2@example.org>\n\t<r3@example.org>\n" +
		"In-Reply-To:\n <r3@example.org>\n" +
		"Date: Mon,\n 02 Feb 2026 08:00:00 +0000\n\nfolded\n",
	// Repeated fields.
	"Subject: first subject\n" +
		"To: one@example.com\n" +
		"Subject: second subject\n" +
		"To: two@example.com\n" +
		"Cc: c1@example.com\nCc: c2@example.com\nCc: =?utf-8?q?Z=C3=BCrich?= <c3@example.ch>\n" +
		"Bcc: hidden@example.com\nBcc:\n" +
		"Message-ID: <rep1@example.org>\nMessage-ID: <rep2@example.org>\n" +
		"Date: yesterday\nDate: Wed, 04 Feb 2026 12:00:00 +0000\n\nrepeated\n",
	// Missing fields: no Subject, From, To or Date.
	"Message-ID: <lonely@example.org>\n\nnothing much\n",
	// Empty and blank fields.
	"Subject:\nFrom: \nTo:   \nCc:\nBcc: \nDate:\nX-Spam:\n\nempty\n",
	// Key spellings.
	"SUBJECT: upper key\nfrom: lower@example.org\nmessage-id: <lower@example.org>\nIN-REPLY-TO: <one@example.org>\nCC : spaced@example.org\n" +
		"Date: 5 Feb 26 10:00 EST\n\nkeys\n",
	// A line without a colon ends the header for the reader: the fields
	// after it are not fields.
	"Subject: before damage\nthis line has no colon\nFrom: after@example.org\nDate: Thu, 05 Feb 2026 00:00:00 +0000\n\nbody\n",
	// A header that starts with white space: no fields at all.
	" Subject: indented\nFrom: x@example.org\n\nbody\n",
	// No body, no empty line.
	"Subject: header only\nFrom: h@example.org",
	// Raw UTF-8 and raw Latin-1 bytes.
	"Subject: Привет мир\nFrom: Ärcher <a@example.de>\nTo: caf\xe9@example.fr\nDate: Fri, 06 Feb 2026 23:59:59 +1400\n\nraw\n",
	// A group and a comment in the date.
	"To: undisclosed-recipients:;\nFrom: \"Smith, John\" <js@example.com>\nDate: Sun, 01 Feb 2026 00:00:01 +0100 (CET)\nSubject: Re: [list] Fwd: report\n\nbody\n",
	// Encoded words inside a quoted name and in a Message-ID (not decoded
	// by mail readers, but SEARCH decodes every field the same way).
	"From: \"=?utf-8?q?Gr=C3=BC=C3=9Fe?=\" <g@example.org>\nMessage-ID: <=?utf-8?q?x?=@example.org>\nSubject: =?ISO-8859-7?B?xevr5+3p6tw=?=\n\nbody\n",
	// Lower-case encoding letter, a Q word with underscores, and a
	// word in the middle of text.
	"Subject: Re: =?utf-8?q?hello_world?= again\nTo: =?UTF-8?B?5pel5pys6Kqe?= <jp@example.jp>\nDate: Tue, 03 Feb 2026 00:00:00 -1200\n\nbody\n",
}

// corpusWords are the pieces the generated messages are made of.
var corpusWords = []string{
	"report", "Lunch", "meeting", "Grüße", "München", "crème", "日本語", "Привет", "€", "nfsimap", "Re:", "Fwd:", "x", "",
}

// corpusEncode writes s as a header value, in one of several forms.
func corpusEncode(r *rand.Rand, s string) string {
	switch r.IntN(6) {
	case 0:
		return fmt.Sprintf("=?utf-8?b?%s?=", base64.StdEncoding.EncodeToString([]byte(s)))
	case 1:
		return fmt.Sprintf("=?UTF-8?Q?%s?=", qEncode(s))
	case 2:
		if len(s) > 3 {
			return s[:len(s)/2] + "\n " + s[len(s)/2:] // folded, possibly inside a UTF-8 sequence
		}
	}
	return s
}

func qEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ':
			b.WriteByte('_')
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "=%02X", c)
		}
	}
	return b.String()
}

// corpusGenerated builds n more messages from seed.
func corpusGenerated(seed uint64, n int) []string {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	word := func() string { return corpusWords[r.IntN(len(corpusWords))] }
	var out []string
	for i := 0; i < n; i++ {
		var b strings.Builder
		fields := []string{"Subject", "From", "To", "Cc", "Bcc", "Message-ID", "In-Reply-To", "References", "Date", "X-Spam"}
		for k := 0; k < 2+r.IntN(9); k++ {
			f := fields[r.IntN(len(fields))]
			if r.IntN(5) == 0 {
				f = strings.ToUpper(f)
			}
			var v string
			switch f := strings.ToLower(f); f {
			case "date":
				v = time.Date(2026, 2, 1+r.IntN(5), r.IntN(24), r.IntN(60), 0, 0, time.FixedZone("", (r.IntN(29)-14)*3600)).Format(time.RFC1123Z)
				if r.IntN(6) == 0 {
					v = "not a date"
				}
			case "message-id", "in-reply-to", "references":
				v = fmt.Sprintf("<%s.%d@example.org>", strings.ToLower(word()), r.IntN(5))
			case "from", "to", "cc", "bcc":
				v = fmt.Sprintf("%s <%s%d@example.org>", corpusEncode(r, word()), f, r.IntN(3))
			default:
				v = corpusEncode(r, word()+" "+word())
			}
			fmt.Fprintf(&b, "%s: %s\n", f, v)
		}
		fmt.Fprintf(&b, "\nbody %d %s\n", i, word())
		out = append(out, b.String())
	}
	return out
}

// corpusSeed seeds the generated part of the corpus; fixed, so that the
// corpus is the same in every run.
const corpusSeed = 20261125

// searchCorpus returns the corpus as search test messages (CRLF line
// ends, UIDs 1, 2, ...; every third message unseen, internal dates an
// hour apart from 1-Feb-2026).
func searchCorpus() []*testMessage {
	all := append(append([]string(nil), corpusFixed...), corpusGenerated(corpusSeed, 120)...)
	out := make([]*testMessage, len(all))
	for i, c := range all {
		m := &testMessage{seq: uint32(i + 1), uid: imap.UID(i + 1), date: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Hour), content: toCRLF([]byte(c))}
		if i%3 != 0 {
			m.flags = []imap.Flag{imap.FlagSeen}
		}
		out[i] = m
	}
	return out
}

// corpusCriteria are the criteria the corpus is searched with.
func corpusCriteria() map[string]*imap.SearchCriteria {
	out := map[string]*imap.SearchCriteria{}
	hdr := func(k, v string) imap.SearchCriteriaHeaderField {
		return imap.SearchCriteriaHeaderField{Key: k, Value: v}
	}
	keys := []string{"Subject", "From", "To", "Cc", "Bcc", "Message-ID", "In-Reply-To", "References", "Date",
		"subject", "MESSAGE-ID", "X-Spam", "Subject ", "Received"}
	needles := []string{"", " ", "grüße", "GRÜSSE", "münchen", "jörg", "caf", "café", "café crème", "crème", "=?", "utf-8",
		"x-unknown", "abc", "!!!", "привет", "continued", "subject continued here", "here and", "dave <", "renée dupont",
		"example", "@", "<", "undisclosed", "second", "first", "yes", "est", "2026", "feb", "smith, john", "fwd: report",
		"日本語", "€", "zürich", "hello world again", "ελληνικά", "report", "lunch", "nfsimap", "re:", "r2@", "one@",
		"lower", "upper key", "after", "indented", "header only", "ärcher", "caf\xe9", "c2@", "hidden", ".3@", "x@", "rep2"}
	for _, k := range keys {
		for _, n := range needles {
			out[fmt.Sprintf("HEADER %q %q", k, n)] = &imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{hdr(k, n)}}
		}
	}
	day := func(d int) time.Time { return time.Date(2026, 1, d, 0, 0, 0, 0, time.UTC) }
	for d := 30; d <= 38; d++ {
		out[fmt.Sprintf("SENTBEFORE %d", d)] = &imap.SearchCriteria{SentBefore: day(d)}
		out[fmt.Sprintf("SENTSINCE %d", d)] = &imap.SearchCriteria{SentSince: day(d)}
		out[fmt.Sprintf("SENTON %d", d)] = &imap.SearchCriteria{SentSince: day(d), SentBefore: day(d + 1)}
	}
	for _, n := range []string{"subject: grüße", "from: ", "x-spam: yes", "message-id: <", "body", "jörg", "hello", "cc: c2", "nothing much", "zzz"} {
		out[fmt.Sprintf("TEXT %q", n)] = &imap.SearchCriteria{Text: []string{n}}
		out[fmt.Sprintf("UNSEEN TEXT %q", n)] = &imap.SearchCriteria{Text: []string{n}, NotFlag: []imap.Flag{imap.FlagSeen}}
	}
	subj := func(v string) imap.SearchCriteria {
		return imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{hdr("Subject", v)}}
	}
	from := func(v string) imap.SearchCriteria {
		return imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{hdr("From", v)}}
	}
	out["OR SUBJECT report FROM example"] = &imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{subj("report"), from("example")}}}
	out["NOT SUBJECT re"] = &imap.SearchCriteria{Not: []imap.SearchCriteria{subj("re")}}
	out["NOT HEADER X-Spam \"\""] = &imap.SearchCriteria{Not: []imap.SearchCriteria{{Header: []imap.SearchCriteriaHeaderField{hdr("X-Spam", "")}}}}
	out["OR BODY body SUBJECT lunch"] = &imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{{Body: []string{"body 1"}}, subj("lunch")}}}
	out["SEEN NOT OR SUBJECT grüße CC c2"] = &imap.SearchCriteria{Flag: []imap.Flag{imap.FlagSeen}, Not: []imap.SearchCriteria{{Or: [][2]imap.SearchCriteria{{subj("grüße"), {Header: []imap.SearchCriteriaHeaderField{hdr("Cc", "c2")}}}}}}}
	out["SUBJECT re FROM example SENTSINCE 2-Feb"] = &imap.SearchCriteria{SentSince: day(33), Header: []imap.SearchCriteriaHeaderField{hdr("Subject", "re"), hdr("From", "example")}}
	out["UNSEEN BODY body"] = &imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}, Body: []string{"body"}}
	out["OR (SUBJECT x NOT SENTON 3-Feb) (HEADER Received \"\")"] = &imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{
		{Header: []imap.SearchCriteriaHeaderField{hdr("Subject", "x")}, Not: []imap.SearchCriteria{{SentSince: day(34), SentBefore: day(35)}}},
		{Header: []imap.SearchCriteriaHeaderField{hdr("Received", "")}},
	}}}
	out["LARGER 100 OR TO example SINCE 3-Feb"] = &imap.SearchCriteria{Larger: 100, Or: [][2]imap.SearchCriteria{{{Header: []imap.SearchCriteriaHeaderField{hdr("To", "example")}}, {Since: day(34)}}}}
	return out
}

// corpusResults runs every corpus criterion over msgs and returns the
// matching UIDs by criterion name.
func corpusResults(msgs []SearchMessage) (map[string][]imap.UID, error) {
	out := map[string][]imap.UID{}
	for name, c := range corpusCriteria() {
		m := NewMatcher(c, uint32(len(msgs)), imap.UID(len(msgs)), nil)
		found := []imap.UID{}
		for _, msg := range msgs {
			ok, err := m.Match(msg)
			if err != nil {
				return nil, fmt.Errorf("%s: message %d: %w", name, msg.UID(), err)
			}
			if ok {
				found = append(found, msg.UID())
			}
		}
		out[name] = found
	}
	return out, nil
}
