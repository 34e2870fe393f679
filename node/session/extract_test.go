package session

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/nfsimap/nfsimap/internal/corpus"
	"github.com/nfsimap/nfsimap/node/front"
)

// msgJunk is shaped like the corpus kind "junk": raw binary bytes in a
// field, a field name with NUL, 0xff and a space, a line without a colon,
// and NULs in the body.
const msgJunk = "From: Ann <ann@example.org>\r\n" +
	"Subject: junk mail\r\n" +
	"X-Junk: \x01\x02\xfe\x7f bytes\r\n" +
	"\x00\xffBroken Header: no colon rules\r\n" +
	"a line without a colon\r\n" +
	"Message-ID: <junk.1@example.net>\r\n" +
	"\r\n" +
	"some words\x00\x00\xfe\r\n"

// msgHeaderOnly is shaped like the corpus kind "header-only": it ends
// after its last field, with no empty line.
const msgHeaderOnly = "From: Bob <bob@example.org>\r\n" +
	"Subject: only a header\r\n" +
	"Received: from x by y\r\n" +
	"X-Note: this message ends after its header, with no empty line\r\n"

func section(spec imap.PartSpecifier, part ...int) *imap.FetchItemBodySection {
	return &imap.FetchItemBodySection{Specifier: spec, Part: part}
}

func TestSectionsOfJunkHeader(t *testing.T) {
	content := []byte(msgJunk)
	hdrLen := strings.Index(msgJunk, "\r\n\r\n") + 4
	body := msgJunk[hdrLen:]
	cases := []struct {
		name string
		sec  *imap.FetchItemBodySection
		want string
	}{
		{"BODY[]", section(imap.PartSpecifierNone), msgJunk},
		{"BODY[HEADER]", section(imap.PartSpecifierHeader), msgJunk[:hdrLen]},
		{"BODY[TEXT]", section(imap.PartSpecifierText), body},
		{"BODY[1]", section(imap.PartSpecifierNone, 1), body},
		{"BODY[1.MIME]", section(imap.PartSpecifierMIME, 1), msgJunk[:hdrLen]},
		{"HEADER.FIELDS", &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"From", "SUBJECT"}},
			"From: Ann <ann@example.org>\r\nSubject: junk mail\r\n\r\n"},
		{"HEADER.FIELDS.NOT", &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFieldsNot: []string{"Received", "Subject"}},
			strings.Replace(msgJunk[:hdrLen], "Subject: junk mail\r\n", "", 1)},
		{"BODY[2]", section(imap.PartSpecifierNone, 2), ""},
	}
	for _, c := range cases {
		got, _ := bodySectionRaw(content, c.sec)
		if string(got) != c.want {
			t.Errorf("%s = %q, want %q", c.name, got, c.want)
		}
	}
	bin, ok := binarySectionRaw(content, &imap.FetchItemBinarySection{Part: []int{1}})
	if !ok || string(bin) != body {
		t.Errorf("BINARY[1] = %q, %v; want %q", bin, ok, body)
	}

	bs, ok := extractBodyStructureRaw(content).(*imap.BodyStructureSinglePart)
	if !ok {
		t.Fatalf("body structure %T, want single part", bs)
	}
	if bs.Size != uint32(len(body)) || bs.Text == nil || bs.Text.NumLines != 1 {
		t.Errorf("size %d lines %+v, want %d and 1", bs.Size, bs.Text, len(body))
	}
	env := goimapEnvelope(extractEnvelope(content))
	if env.Subject != "junk mail" || env.MessageID != "junk.1@example.net" || len(env.From) != 1 || env.From[0].Mailbox != "ann" {
		t.Errorf("envelope %+v", env)
	}
}

func TestSectionsOfHeaderOnly(t *testing.T) {
	content := []byte(msgHeaderOnly)
	cases := []struct {
		name string
		sec  *imap.FetchItemBodySection
		want string
	}{
		{"BODY[HEADER]", section(imap.PartSpecifierHeader), msgHeaderOnly},
		{"BODY[TEXT]", section(imap.PartSpecifierText), ""},
		{"BODY[1]", section(imap.PartSpecifierNone, 1), ""},
		// RFC 3501 6.4.5: no blank line is added to a message that has
		// none and no body.
		{"BODY[1.MIME]", section(imap.PartSpecifierMIME, 1), msgHeaderOnly},
		{"HEADER.FIELDS.NOT", &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFieldsNot: []string{"Received", "Subject"}},
			"From: Bob <bob@example.org>\r\nX-Note: this message ends after its header, with no empty line\r\n"},
		// Dovecot ends HEADER.FIELDS with an empty line in every case.
		{"HEADER.FIELDS", &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"From"}},
			"From: Bob <bob@example.org>\r\n\r\n"},
	}
	for _, c := range cases {
		got, _ := bodySectionRaw(content, c.sec)
		if string(got) != c.want {
			t.Errorf("%s = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestSectionsOfMultipart(t *testing.T) {
	content := []byte(msgMultipart)
	inner := "Subject: inner subject\r\n"
	cases := []struct {
		name string
		sec  *imap.FetchItemBodySection
		want string
	}{
		{"BODY[1]", section(imap.PartSpecifierNone, 1), "Caf=E9 cr=E8me br=FBl=E9e"},
		{"BODY[1.MIME]", section(imap.PartSpecifierMIME, 1), "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"},
		{"BODY[2]", section(imap.PartSpecifierNone, 2), "c2VjcmV0YmluYXJ5"},
		{"BODY[3.HEADER]", section(imap.PartSpecifierHeader, 3), inner},
		{"BODY[1.HEADER]", section(imap.PartSpecifierHeader, 1), ""},
		{"BODY[9]", section(imap.PartSpecifierNone, 9), ""},
	}
	for _, c := range cases {
		got, _ := bodySectionRaw(content, c.sec)
		if !strings.HasPrefix(string(got), c.want) || (c.want == "" && len(got) > 0) {
			t.Errorf("%s = %q, want %q", c.name, got, c.want)
		}
	}
	if got, _ := bodySectionRaw(content, section(imap.PartSpecifierNone, 1)); string(got) != "Caf=E9 cr=E8me br=FBl=E9e" {
		t.Errorf("BODY[1] = %q: the CRLF before the boundary belongs to the boundary", got)
	}
	// BINARY undoes the transfer encoding and keeps the charset.
	bin, ok := binarySectionRaw(content, &imap.FetchItemBinarySection{Part: []int{1}})
	if !ok || string(bin) != "Caf\xe9 cr\xe8me br\xfbl\xe9e" {
		t.Errorf("BINARY[1] = %q, %v", bin, ok)
	}
	bin, ok = binarySectionRaw(content, &imap.FetchItemBinarySection{Part: []int{2}})
	if !ok || string(bin) != "secretbinary" {
		t.Errorf("BINARY[2] = %q, %v", bin, ok)
	}
}

func TestDecodeTransfer(t *testing.T) {
	cases := []struct{ in, enc, want string }{
		{"aGVsbG8g\r\nd29ybGQ=\r\n", "base64", "hello world"},
		{"aGVsbG8gd29ybGQ", "BASE64", "hello world"}, // no padding
		{"aGVs!bG8=\r\n", "base64", "hello"},         // junk skipped
		{"caf=C3=A9=\r\n au lait", "quoted-printable", "café au lait"},
		{"\xe9t\xe9", "8bit", "\xe9t\xe9"},
	}
	for _, c := range cases {
		got, ok := decodeTransfer([]byte(c.in), c.enc)
		if !ok || string(got) != c.want {
			t.Errorf("decodeTransfer(%q, %s) = %q, %v; want %q", c.in, c.enc, got, ok, c.want)
		}
	}
	if _, ok := decodeTransfer([]byte("x"), "x-uuencode"); ok {
		t.Error("unknown encoding accepted")
	}
}

func TestParametersAsWritten(t *testing.T) {
	cases := []struct {
		in    string
		value string
		want  map[string]string
	}{
		{`text/plain; charset="UTF-8"; format=flowed`, "text/plain", map[string]string{"charset": "UTF-8", "format": "flowed"}},
		// RFC 2231 continuations are joined, still encoded (Dovecot).
		{"attachment;\r\n filename*0*=utf-8'de'%E2%82%AC%20ra;\r\n filename*1*=\"tes%202024.png\"", "attachment",
			map[string]string{"filename*": "utf-8'de'%E2%82%AC%20rates%202024.png"}},
		{"attachment; filename*=UTF-8''%E5%A0%B1.pdf", "attachment", map[string]string{"filename*": "UTF-8''%E5%A0%B1.pdf"}},
		{`inline; FILENAME*0="a b"; filename*1=c`, "inline", map[string]string{"filename": "a bc"}},
		// RFC 2047 words stay encoded.
		{`application/pdf; name="=?utf-8?B?w7w=?="`, "application/pdf", map[string]string{"name": "=?utf-8?B?w7w=?="}},
		{`text/plain; name="a \"q\" \\ b"; junk; =x; x=`, "text/plain", map[string]string{"name": `a "q" \ b`, "x": ""}},
		{`Text/HTML`, "text/html", nil},
	}
	for _, c := range cases {
		mt := parseMediaType(c.in)
		if mt.value != c.value || !reflect.DeepEqual(mt.params, c.want) {
			t.Errorf("parseMediaType(%q) = %q %v, want %q %v", c.in, mt.value, mt.params, c.value, c.want)
		}
	}
}

func TestEnvelopeIDsAsWritten(t *testing.T) {
	msg := "Subject: ids\r\n" +
		"Message-ID: <odd id@example.org>\r\n" +
		"In-Reply-To: <a@example.org>\r\n <b@example.org> (comment)\r\n" +
		"\r\nbody\r\n"
	wire, ok := front.EnvelopeBytes(extractEnvelope([]byte(msg)))
	if !ok {
		t.Fatal("extractEnvelope did not give a placeholder")
	}
	want := `(NIL "ids" NIL NIL NIL NIL NIL NIL "<a@example.org> <b@example.org> (comment)" "<odd id@example.org>")`
	if string(wire) != want {
		t.Errorf("envelope\n %s\nwant\n %s", wire, want)
	}
}

func TestLiteralSafe(t *testing.T) {
	in := []byte("a\x00b\x00")
	out := literalSafe(in)
	if string(out) != "a\x80b\x80" || string(in) != "a\x00b\x00" {
		t.Errorf("literalSafe = %q (input now %q)", out, in)
	}
	clean := []byte("no nul")
	if out := literalSafe(clean); &out[0] != &clean[0] {
		t.Error("literalSafe copied a literal without NUL")
	}
}

// TestExtractAgreesWithGoIMAP checks the well-formed messages of a
// generated spool: the structure, sizes and line counts, and the part
// bodies, are those go-imap's extraction gives (only parameters differ:
// they are no longer decoded).
func TestExtractAgreesWithGoIMAP(t *testing.T) {
	dir := t.TempDir()
	man, err := corpus.Generate(dir, corpus.Options{Seed: 7, Messages: 120, MaxAttachment: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, m := range man.Messages {
		raw, err := os.ReadFile(filepath.Join(dir, m.Path))
		if err != nil {
			t.Fatal(err)
		}
		content := toCRLF(raw)
		if !m.Wellformed {
			continue
		}
		checked++
		ours := extractBodyStructureRaw(content)
		goimapEnvelopes(ours) // decoded, as go-imap's extraction has them
		theirs := imapserver.ExtractBodyStructure(bytes.NewReader(content))
		fixBodyStructure(theirs, 0)
		if a, b := shape(ours), shape(theirs); a != b {
			t.Errorf("%s (%s): structure\n ours   %s\n go-imap %s", m.Path, m.Kind, a, b)
		}
		for _, part := range [][]int{{1}, {2}, {1, 1}, {2, 1}} {
			sec := &imap.FetchItemBodySection{Part: part}
			got, _ := bodySectionRaw(content, sec)
			want := imapserver.ExtractBodySection(bytes.NewReader(content), sec)
			if !bytes.Equal(got, want) {
				t.Errorf("%s (%s): BODY%v differs: %d vs %d bytes", m.Path, m.Kind, part, len(got), len(want))
			}
		}
	}
	if checked == 0 {
		t.Fatal("no well-formed message in the corpus")
	}
}

// shape renders a body structure without its parameters.
func shape(bs imap.BodyStructure) string {
	var b strings.Builder
	var walk func(bs imap.BodyStructure)
	walk = func(bs imap.BodyStructure) {
		switch bs := bs.(type) {
		case *imap.BodyStructureMultiPart:
			b.WriteString("(")
			for _, c := range bs.Children {
				walk(c)
			}
			b.WriteString(" " + strings.ToLower(bs.Subtype) + ")")
		case *imap.BodyStructureSinglePart:
			b.WriteString("(" + strings.ToLower(bs.Type+"/"+bs.Subtype) + " " + bs.Encoding)
			b.WriteString(" " + strconv.FormatUint(uint64(bs.Size), 10))
			if bs.Text != nil {
				b.WriteString(" lines " + strconv.FormatInt(bs.Text.NumLines, 10))
			}
			if m := bs.MessageRFC822; m != nil {
				b.WriteString(" lines " + strconv.FormatInt(m.NumLines, 10) + " subject " + m.Envelope.Subject)
				walk(m.BodyStructure)
			}
			b.WriteString(")")
		}
	}
	walk(bs)
	return b.String()
}

// FuzzExtract feeds arbitrary messages to the FETCH extraction: it must
// not panic, whole-message sections must be byte-exact, and NUL
// replacement must keep sizes.
func FuzzExtract(f *testing.F) {
	for _, s := range []string{msgJunk, msgHeaderOnly, msgMultipart, msgPlain,
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n--b--",
		"Content-Type: multipart/digest; boundary=\"\"\r\n\r\n--\r\n\r\n----\r\n",
		"Content-Disposition: a; filename*0*=x; filename*2=y; filename*1=\"\r\n\r\n",
		"\r\n\r\n", "", " folded\r\n:\r\n\r\nx"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		content := toCRLF(raw)
		if bs := extractBodyStructureRaw(content); bs == nil {
			t.Fatal("nil body structure")
		}
		_ = extractEnvelope(content)
		whole, _ := bodySectionRaw(content, section(imap.PartSpecifierNone))
		hdr, _ := bodySectionRaw(content, section(imap.PartSpecifierHeader))
		text, _ := bodySectionRaw(content, section(imap.PartSpecifierText))
		if !bytes.Equal(whole, content) || !bytes.Equal(append(bytes.Clone(hdr), text...), content) {
			t.Fatalf("whole %q, header %q + text %q, content %q", whole, hdr, text, content)
		}
		for _, part := range [][]int{{1}, {2}, {1, 1}, {2, 3}, {1, 1, 1}} {
			for _, spec := range []imap.PartSpecifier{imap.PartSpecifierNone, imap.PartSpecifierMIME, imap.PartSpecifierHeader, imap.PartSpecifierText} {
				data, _ := bodySectionRaw(content, section(spec, part...))
				if safe := literalSafe(data); len(safe) != len(data) || bytes.IndexByte(safe, 0) >= 0 {
					t.Fatalf("literalSafe changed the size or kept a NUL")
				}
			}
			_, _ = binarySectionRaw(content, &imap.FetchItemBinarySection{Part: part})
		}
	})
}
