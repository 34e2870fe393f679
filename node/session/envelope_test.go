package session

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/nfsimap/nfsimap/internal/corpus"
	"github.com/nfsimap/nfsimap/internal/difftest"
	"github.com/nfsimap/nfsimap/node/front"
)

// envelopeCases pairs headers with the ENVELOPE Dovecot 2.3 sends for
// them (internal/difftest checks the same rules against a running
// Dovecot).
var envelopeCases = []struct{ name, header, want string }{
	{"absent fields", "X-Other: 1\r\n",
		`(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)`},
	{"plain", "Date: Tue, 3 Feb 2026 10:00:00 +0100\r\nSubject: hello\r\nFrom: Ann <ann@x.example>\r\nTo: bob@y.example\r\nMessage-ID: <1@x.example>\r\n",
		`("Tue, 3 Feb 2026 10:00:00 +0100" "hello" (("Ann" NIL "ann" "x.example")) (("Ann" NIL "ann" "x.example")) (("Ann" NIL "ann" "x.example")) ((NIL NIL "bob" "y.example")) NIL NIL NIL "<1@x.example>")`},
	{"unparsable date", "Date: sometime yesterday\r\n",
		`("sometime yesterday" NIL NIL NIL NIL NIL NIL NIL NIL NIL)`},
	{"empty subject", "Subject:\r\n",
		`(NIL "" NIL NIL NIL NIL NIL NIL NIL NIL)`},
	{"blank subject", "Subject:    \r\n",
		`(NIL "" NIL NIL NIL NIL NIL NIL NIL NIL)`},
	{"8-bit subject and name", "Subject: café\r\nFrom: Jörg <j@x.example>\r\n",
		"(NIL {5}\r\ncafé ((\"{5}\r\nJörg\" NIL \"j\" \"x.example\"))" /* fixed below */},
	{"folded subject", "Subject: a\r\n\tfolded\r\n   subject  \r\n",
		"(NIL {16}\r\na folded subject NIL NIL NIL NIL NIL NIL NIL NIL)"},
	{"folded date and ids", "Date: Tue,\r\n 3 Feb 2026\r\nIn-Reply-To: <a@x>\r\n <b@x>\r\nMessage-ID:\r\n <c@x>\r\n",
		`("Tue, 3 Feb 2026" NIL NIL NIL NIL NIL NIL NIL "<a@x> <b@x>" " <c@x>")`},
	{"ids as written", "Message-ID: <x@y> (a comment)\r\nIn-Reply-To: no brackets\r\n",
		`(NIL NIL NIL NIL NIL NIL NIL NIL "no brackets" "<x@y> (a comment)")`},
	{"quotes", "Subject: say \"hi\"\r\nMessage-ID: <\"a\"\\\"b\"@x>\r\nIn-Reply-To: \"\"\"\"\"\r\n", "" /* below */},
	{"few quotes", "Message-ID: <\"a\\b\"@x>\r\n",
		`(NIL NIL NIL NIL NIL NIL NIL NIL NIL "<\"a\\b\"@x>")`},
	{"groups", "To: undisclosed-recipients:;\r\nCc: Team: a@x.example, b@x.example;, c@x.example\r\n",
		`(NIL NIL NIL NIL NIL ((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) ((NIL NIL "Team" NIL)(NIL NIL "a" "x.example")(NIL NIL "b" "x.example")(NIL NIL NIL NIL)(NIL NIL "c" "x.example")) NIL NIL NIL)`},
	{"comment as name, route", "From: u@h.example (Real Name)\r\nSender: <@r1.example,@r2.example:u@h.example>\r\n",
		`(NIL NIL (("Real Name" NIL "u" "h.example")) ((NIL "@r1.example,@r2.example" "u" "h.example")) (("Real Name" NIL "u" "h.example")) NIL NIL NIL NIL NIL)`},
	{"broken addresses", "From: <>\r\nTo: user\r\nCc: Name <user@host\r\nBcc: \"quoted only\"\r\n",
		`(NIL NIL ((NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN")) ((NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN")) ((NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN")) ((NIL NIL "user" "MISSING_DOMAIN")) (("Name" NIL "user" "SYNTAX_ERROR")) (("quoted only" NIL "MISSING_MAILBOX" "MISSING_DOMAIN")) NIL NIL)`},
	{"repeated fields", "Subject: one\r\nSubject: two\r\nTo: a@x\r\nTo: b@x\r\n",
		`(NIL "two" NIL NIL NIL ((NIL NIL "a" "x")(NIL NIL "b" "x")) NIL NIL NIL NIL)`},
	{"empty sender falls back to from", "From: a@x\r\nSender:\r\nReply-To: \r\n",
		`(NIL NIL ((NIL NIL "a" "x")) ((NIL NIL "a" "x")) ((NIL NIL "a" "x")) NIL NIL NIL NIL NIL)`},
	{"encoded words stay", "Subject: =?utf-8?q?caf=C3=A9?=\r\nFrom: =?utf-8?b?SsO2cmc=?= <j@x>\r\n",
		`(NIL "=?utf-8?q?caf=C3=A9?=" (("=?utf-8?b?SsO2cmc=?=" NIL "j" "x")) (("=?utf-8?b?SsO2cmc=?=" NIL "j" "x")) (("=?utf-8?b?SsO2cmc=?=" NIL "j" "x")) NIL NIL NIL NIL NIL)`},
	{"line without colon", "Subject\r\nTo: a@x\r\n",
		`(NIL NIL NIL NIL NIL ((NIL NIL "a" "x")) NIL NIL NIL NIL)`},
	{"lone CR", "Subject: a\rb\r\n",
		"(NIL {3}\r\na b NIL NIL NIL NIL NIL NIL NIL NIL)"},
	{"NUL", "Subject: a\x00b\r\n",
		"(NIL {5}\r\na\uFFFDb NIL NIL NIL NIL NIL NIL NIL NIL)"},
}

func init() {
	// Cases whose literals are easier to write here.
	for i := range envelopeCases {
		c := &envelopeCases[i]
		switch c.name {
		case "8-bit subject and name":
			c.want = "(NIL {5}\r\ncafé (({5}\r\nJörg NIL \"j\" \"x.example\")) (({5}\r\nJörg NIL \"j\" \"x.example\")) (({5}\r\nJörg NIL \"j\" \"x.example\")) NIL NIL NIL NIL NIL)"
		case "quotes":
			c.want = "(NIL {8}\r\nsay \"hi\" NIL NIL NIL NIL NIL NIL {5}\r\n\"\"\"\"\" {11}\r\n<\"a\"\\\"b\"@x>)"
		}
	}
}

func headerFields(h string) []mimeField {
	hdr, _, _ := splitMIME([]byte(h + "\r\nbody\r\n"))
	return parseFields(hdr)
}

func TestEnvelopeWire(t *testing.T) {
	for _, c := range envelopeCases {
		got := envelopeWire(headerFields(c.header))
		if string(got) != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
		if !validEnvelope(got) {
			t.Errorf("%s: our reader rejects %q", c.name, got)
		}
		// LF-only files give the same envelope.
		lf := strings.ReplaceAll(c.header, "\r\n", "\n")
		hdr, _, _ := splitMIME([]byte(lf + "\nbody\n"))
		if lfGot := envelopeWire(parseFields(hdr)); !bytes.Equal(lfGot, got) {
			t.Errorf("%s with LF line ends:\n got %q\nwant %q", c.name, lfGot, got)
		}
	}
}

// checkGrammar parses an ENVELOPE with difftest's IMAP value parser (an
// independent reader of RFC 3501 strings, literals and lists) and checks
// its shape: ten fields, strings or NIL, address lists of 4-string
// addresses.
func checkGrammar(t *testing.T, wire []byte) {
	t.Helper()
	vals, err := difftest.ParseValues(wire)
	if err != nil || len(vals) != 1 || vals[0].Kind != difftest.List || len(vals[0].List) != 10 {
		t.Fatalf("not an ENVELOPE: %q (%v)", wire, err)
	}
	for i, v := range vals[0].List {
		if i >= 2 && i <= 7 {
			if v.IsNil() {
				continue
			}
			if v.Kind != difftest.List || len(v.List) == 0 {
				t.Fatalf("field %d not an address list in %q", i, wire)
			}
			for _, a := range v.List {
				if a.Kind != difftest.List || len(a.List) != 4 {
					t.Fatalf("bad address in %q", wire)
				}
				for _, s := range a.List {
					if !s.IsNil() && s.Kind != difftest.String {
						t.Fatalf("bad address part in %q", wire)
					}
				}
			}
			continue
		}
		if !v.IsNil() && v.Kind != difftest.String {
			t.Fatalf("field %d not an nstring in %q", i, wire)
		}
	}
	// RFC 3501: addresses follow one another without a space (between
	// fields a list ends in "))" and starts with "((").
	var syntax []byte // the wire without string contents
	for i := 0; i < len(wire); i++ {
		switch c := wire[i]; c {
		case '"':
			for i++; i < len(wire) && wire[i] != '"'; i++ {
				if wire[i] == '\\' {
					i++
				}
			}
			syntax = append(syntax, 's')
		case '{':
			j := bytes.IndexByte(wire[i:], '}')
			n, _ := strconv.Atoi(string(wire[i+1 : i+j]))
			i += j + 2 + n
			syntax = append(syntax, 's')
		default:
			syntax = append(syntax, c)
		}
	}
	for i := 1; i+3 < len(syntax); i++ {
		if string(syntax[i:i+3]) == ") (" && (syntax[i-1] != ')' || syntax[i+3] != '(') {
			t.Fatalf("space between addresses in %q", wire)
		}
	}
}

// TestEnvelopeGrammar checks the envelopes of a generated spool (every
// message kind, CRLF and LF files) and of the table above against the
// RFC 3501 grammar, and that plainEnvelope reads them.
func TestEnvelopeGrammar(t *testing.T) {
	for _, c := range envelopeCases {
		checkGrammar(t, []byte(c.want))
	}
	dir := t.TempDir()
	man, err := corpus.Generate(dir, corpus.Options{Seed: 3, Messages: 150, MaxAttachment: 2 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range man.Messages {
		raw, err := os.ReadFile(filepath.Join(dir, m.Path))
		if err != nil {
			t.Fatal(err)
		}
		hdr, _, _ := splitMIME(raw)
		wire := envelopeWire(parseFields(hdr))
		checkGrammar(t, wire)
		if !validEnvelope(wire) {
			t.Fatalf("%s: our reader rejects %q", m.Path, wire)
		}
		if env := plainEnvelope(wire); m.Wellformed && m.MessageID != "" && "<"+env.MessageID+">" != m.MessageID {
			t.Errorf("%s: plain message id %q, want %q", m.Path, env.MessageID, m.MessageID)
		}
	}
}

// TestEnvelopeThroughFront fetches envelopes through the real front and
// go-imap's server: the bytes on the wire are the encoded envelopes (so
// the placeholders were swapped, across go-imap's 4 KiB writes too), and
// go-imap's client reads them.
func TestEnvelopeThroughFront(t *testing.T) {
	env := newTestEnv(t, nil)
	c, addr := serveFront(t, env)
	var msgs []string
	for i := range 40 {
		// Single-address lists: go-imap's client (v2 beta.8) wants a
		// space between addresses, which RFC 3501 does not have.
		msgs = append(msgs, fmt.Sprintf("Date: not a date %d\r\nSubject: =?utf-8?q?caf=C3=A9?= %d\r\nFrom: Ann <a@x.example>\r\n"+
			"To: undisclosed-recipients:;\r\nIn-Reply-To: <p@x.example> (comment)\r\nMessage-ID: <m%d@x.example>\r\n"+
			"Content-Type: message/rfc822\r\n\r\nSubject:\r\nDate: Tue, 3 Feb 2026 10:00:00 +0100\r\n\r\ninner %s\r\n", i, i, i, strings.Repeat("x", i*50)))
	}
	msgs = append(msgs, "Subject: "+strings.Repeat("long ", 2000)+"\r\nFrom: "+strings.Repeat("w", 9000)+"@x.example\r\n\r\nbig\r\n")
	for _, m := range msgs {
		appendMsg(t, c, "INBOX", m, nil)
	}
	mustSelect(t, c, "INBOX", false)
	got, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{Envelope: true, BodyStructure: &imap.FetchItemBodyStructure{Extended: true}}).Collect()
	if err != nil {
		t.Fatalf("go-imap's client: %v", err)
	}
	if len(got) != len(msgs) {
		t.Fatalf("%d messages", len(got))
	}
	e := got[3].Envelope
	if e.Subject != "café 3" || !e.Date.IsZero() || len(e.From) != 1 || e.From[0].Name != "Ann" || e.MessageID != "m3@x.example" ||
		len(e.InReplyTo) != 1 || e.InReplyTo[0] != "p@x.example" || len(e.To) != 2 || e.To[0].Mailbox != "undisclosed-recipients" {
		t.Errorf("envelope as go-imap's client reads it: %+v", e)
	}
	sp, ok := got[3].BodyStructure.(*imap.BodyStructureSinglePart)
	if !ok || sp.MessageRFC822 == nil || sp.MessageRFC822.Envelope.Subject != "" || sp.MessageRFC822.Envelope.Date.IsZero() {
		t.Errorf("inner envelope: %+v", got[3].BodyStructure)
	}

	// The raw bytes, on a second connection.
	dc, err := difftest.Dial(addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	if err := dc.Login("alice", "secret"); err != nil {
		t.Fatal(err)
	}
	if err := dc.Select("INBOX"); err != nil {
		t.Fatal(err)
	}
	resps, err := dc.Command("FETCH 1:* (ENVELOPE)")
	if err != nil {
		t.Fatal(err)
	}
	if len(resps) != len(msgs) {
		t.Fatalf("%d responses", len(resps))
	}
	for i, r := range resps {
		want := fmt.Sprintf("* %d FETCH (ENVELOPE %s)", i+1, envelopeWire(headerFields(strings.SplitN(msgs[i], "\r\n\r\n", 2)[0]+"\r\n")))
		if string(r.Raw) != want {
			t.Fatalf("message %d on the wire:\n got %q\nwant %q", i+1, r.Raw, want)
		}
	}
}

// FuzzEnvelopeWire: any header gives one valid ENVELOPE, which the
// placeholder carries unchanged and the index codec keeps.
func FuzzEnvelopeWire(f *testing.F) {
	for _, c := range envelopeCases {
		f.Add([]byte(c.header))
	}
	f.Add([]byte("To: a:b:c;;,,<<@@>>\r\nFrom: (((\\\r\nCc: \"\\\r\n"))
	f.Fuzz(func(t *testing.T, h []byte) {
		hdr, _, _ := splitMIME(h)
		wire := envelopeWire(parseFields(hdr))
		if !validEnvelope(wire) {
			t.Fatalf("invalid ENVELOPE %q from %q", wire, h)
		}
		_ = plainEnvelope(wire)
		env := front.EnvelopePlaceholder(wire)
		back, err := decodeEnvelope(encodeEnvelope(env))
		if err != nil {
			t.Fatalf("codec: %v", err)
		}
		if got, _ := front.EnvelopeBytes(back); !bytes.Equal(got, wire) {
			t.Fatalf("codec changed the envelope")
		}
	})
}

// BenchmarkEnvelope times, per message, building the ENVELOPE from a
// header ("encode", a cold FETCH) and serving it from the index record
// ("cached": check and wrap in the placeholder, a warm FETCH).
func BenchmarkEnvelope(b *testing.B) {
	content := toCRLF([]byte(genMessage(5)))
	b.Run("encode", func(b *testing.B) {
		for b.Loop() {
			_ = extractEnvelope(content)
		}
	})
	rec := encodeEnvelope(extractEnvelope(content))
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			if _, err := decodeEnvelope(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
}
