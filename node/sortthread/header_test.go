package sortthread

import (
	"strings"
	"testing"
)

func TestParseHeader(t *testing.T) {
	raw := "Received: from x\r\n\tby y\r\n" +
		"subject: Re: folded\r\n   subject line\r\n" +
		"From: Alice <alice@example.com>\r\n" +
		"To: bob@example.com,\r\n carol@example.com\r\n" +
		"Subject: second subject is ignored\r\n" +
		"Message-Id: <1@x>\r\n" +
		"In-Reply-To:<0@x>\r\n" +
		"References: <a@x>\r\n <0@x>\r\n" +
		"DATE : Mon, 1 Jan 2024 10:00:00 +0000\r\n" +
		"\r\n" +
		"Cc: body@example.com\r\n"
	var m Message
	m.Cc = "stale"
	m.ParseHeader([]byte(raw))
	want := Message{
		Subject: "Re: folded   subject line", From: "Alice <alice@example.com>",
		To: "bob@example.com, carol@example.com", MessageID: "<1@x>", InReplyTo: "<0@x>",
		References: "<a@x> <0@x>", Date: "Mon, 1 Jan 2024 10:00:00 +0000",
	}
	if m != want {
		t.Errorf("got %#v\nwant %#v", m, want)
	}
	var lf Message
	lf.ParseHeader([]byte("Subject: lf only\nFrom: x@y"))
	if lf.Subject != "lf only" || lf.From != "x@y" {
		t.Errorf("LF header: %#v", lf)
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add([]byte("Subject: a\r\n b\r\nFrom: x@y\r\n\r\nbody"))
	f.Add([]byte("\r\n"))
	f.Add([]byte(" continuation first\nSubject:\n\tx"))
	f.Add([]byte("References: <a@b>\n <c@d>\nMessage-ID: <e@f>"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		m.ParseHeader(b)
		for _, v := range []string{m.Date, m.Subject, m.From, m.To, m.Cc, m.MessageID, m.InReplyTo, m.References} {
			if strings.ContainsAny(v, "\n") {
				t.Fatalf("value %q keeps a line break", v)
			}
		}
	})
}
