package corpus

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math"
	"math/rand/v2"
	"mime/quotedprintable"
	"strings"
	"time"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
)

// generator holds the random source and the thread state of one Generate.
type generator struct {
	r   *rand.Rand
	opt Options

	sent []sentMsg // earlier messages with a Message-ID, for replies

	// A reference loop: message loopAt gets Message-ID loopID and
	// References loopRef (set by the message before it).
	loopAt          int
	loopID, loopRef string
}

type sentMsg struct {
	id, refs, subject string
}

// header is one header field; value may hold "\n\t" folds.
type header struct{ name, value string }

type part struct {
	headers []header
	body    string // with "\n" line ends
}

func (p *part) add(name, value string) { p.headers = append(p.headers, header{name, value}) }

func (p *part) bytes() []byte {
	var b strings.Builder
	for _, h := range p.headers {
		b.WriteString(h.name)
		b.WriteString(": ")
		b.WriteString(h.value)
		b.WriteString("\n")
	}
	b.WriteString("\n")
	b.WriteString(p.body)
	return []byte(b.String())
}

// kinds and their weights.
var kinds = []struct {
	name   string
	weight int
}{
	{"plain", 30}, {"plain-8bit", 8}, {"plain-qp", 8}, {"plain-iso2022jp", 4},
	{"alternative", 15}, {"mixed", 12}, {"forward", 6},
	{"no-date", 3}, {"bad-date", 3}, {"no-from", 3}, {"header-only", 2}, {"junk", 2},
}

func (g *generator) pickKind() string {
	total := 0
	for _, k := range kinds {
		total += k.weight
	}
	n := g.r.IntN(total)
	for _, k := range kinds {
		if n < k.weight {
			return k.name
		}
		n -= k.weight
	}
	return "plain"
}

// message builds message number i.
func (g *generator) message(i int, date time.Time) (Message, []byte) {
	r := g.r
	kind := g.pickKind()
	msg := Message{Kind: kind, Date: date, Wellformed: kind != "header-only" && kind != "junk"}
	var p part

	// Threading: a new topic, or a reply to an earlier message.
	subject := topics[r.IntN(len(topics))]
	var id, inReplyTo, refs string
	if r.IntN(20) != 0 {
		id = fmt.Sprintf("<%d.%x.%d@%s>", date.Unix(), r.Uint32(), i, []string{"example.net", "mail.example.org", "list.example.com"}[r.IntN(3)])
	}
	if i == g.loopAt && g.loopID != "" {
		id, refs = g.loopID, g.loopRef
		g.loopID = ""
	} else if len(g.sent) > 0 && r.IntN(10) < 4 {
		parent := g.sent[r.IntN(len(g.sent))]
		subject = g.replySubject(parent.subject)
		chain := strings.TrimSpace(parent.refs + " " + parent.id)
		switch k := r.IntN(20); {
		case k < 14:
			inReplyTo, refs = parent.id, chain
		case k < 16: // old clients: In-Reply-To only
			inReplyTo = parent.id
		case k < 17: // References only
			refs = chain
		case k < 18: // a parent we never saw
			lost := fmt.Sprintf("<lost-%d@example.net>", r.IntN(1000))
			inReplyTo, refs = lost, strings.TrimSpace(chain+" "+lost)
		default: // In-Reply-To with a comment, as some clients write it
			inReplyTo = parent.id + ` (from "someone" at ` + date.Format("Jan 2") + ")"
			refs = chain
		}
	} else if id != "" && r.IntN(40) == 0 {
		if r.IntN(2) == 0 {
			refs = id // references itself
		} else {
			// The next message will reference this one, and this one the
			// next: a loop.
			g.loopAt = i + 1
			g.loopID = fmt.Sprintf("<loop-%d@example.net>", i+1)
			g.loopRef = id
			refs = g.loopID
		}
	}
	if r.IntN(8) == 0 {
		subject = "[nfsimap-users] " + subject
	}
	if r.IntN(25) == 0 {
		subject += " (fwd)"
	}
	if kind == "forward" {
		subject = []string{"Fwd: ", "Fw: ", "FW: ", "Fwd: Re: "}[r.IntN(4)] + subject
	}

	from := g.address()
	if kind != "no-from" {
		p.add("From", from)
	}
	p.add("To", g.addressList())
	if r.IntN(4) == 0 {
		p.add("Cc", g.addressList())
	}
	p.add("Subject", g.encodeSubject(subject))
	switch kind {
	case "no-date":
	case "bad-date":
		p.add("Date", []string{
			"yesterday at noon",
			"Mon, 32 Foo 2024 25:61:00 +9999",
			date.Format("2006-01-02 15:04"),
			"",
		}[r.IntN(4)])
	default:
		p.add("Date", g.formatDate(date))
	}
	if id != "" {
		p.add("Message-ID", id)
	}
	if inReplyTo != "" {
		p.add("In-Reply-To", inReplyTo)
	}
	if refs != "" {
		p.add("References", strings.ReplaceAll(refs, " ", "\n\t"))
	}
	if strings.Contains(subject, "[nfsimap-users]") {
		p.add("List-Id", "nfsimap users <nfsimap-users.list.example.com>")
	}
	msg.MessageID, msg.InReplyTo, msg.References = id, inReplyTo, refs

	switch kind {
	case "alternative":
		g.alternative(&p)
	case "mixed":
		g.mixed(&p, 1+r.IntN(3))
	case "forward":
		g.forward(&p, date)
	case "plain-8bit":
		g.textBody(&p, "utf-8")
	case "plain-qp":
		g.textBody(&p, []string{"iso-8859-1", "windows-1252", "utf-8"}[r.IntN(3)])
	case "plain-iso2022jp":
		g.textBody(&p, "iso-2022-jp")
	case "header-only":
		p.add("X-Note", "this message ends after its header, with no empty line")
	case "junk":
		g.junk(&p)
	default:
		g.textBody(&p, "us-ascii")
	}

	var data []byte
	if kind == "header-only" {
		data = p.bytes()
		data = data[:len(data)-1] // no empty line, no body
	} else {
		data = p.bytes()
	}
	if r.IntN(5) == 0 {
		msg.CRLF = true
		data = bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n"))
	}
	if id != "" {
		g.sent = append(g.sent, sentMsg{id: id, refs: refs, subject: subject})
	}
	return msg, data
}

// replySubject adds one of the reply prefixes seen in the wild.
func (g *generator) replySubject(s string) string {
	switch k := g.r.IntN(20); {
	case k < 10:
		return "Re: " + s
	case k < 12:
		return "RE: " + s
	case k < 14:
		return "RE[2]: " + s
	case k < 15:
		return "RE[3]: " + s
	case k < 17:
		return "Re: Re: " + s
	case k < 18:
		return "AW: " + s
	case k < 19:
		return "Re: [nfsimap-users] Re: " + s
	default:
		return "re:" + s
	}
}

// formatDate writes a date in one of the styles mail programs use.
func (g *generator) formatDate(t time.Time) string {
	zones := []*time.Location{
		time.UTC,
		time.FixedZone("CET", 3600),
		time.FixedZone("EST", -5*3600),
		time.FixedZone("", 9*3600),
		time.FixedZone("", 5*3600+1800),
	}
	t = t.In(zones[g.r.IntN(len(zones))])
	switch g.r.IntN(5) {
	case 0:
		return t.Format("Mon, 2 Jan 2006 15:04:05 -0700")
	case 1:
		return t.Format("2 Jan 2006 15:04:05 -0700")
	case 2:
		return t.Format("Mon, 02 Jan 2006 15:04:05 -0700 (MST)")
	case 3:
		return t.Format("Mon, 2 Jan 2006 15:04 -0700")
	default:
		return t.Format(time.RFC1123Z)
	}
}

// The charsets of the non-ASCII samples.
var charsets = map[string]encoding.Encoding{
	"iso-8859-1":   charmap.ISO8859_1,
	"windows-1252": charmap.Windows1252,
	"iso-2022-jp":  japanese.ISO2022JP,
}

// encodeText turns UTF-8 text into the bytes of charset.
func encodeText(charset, s string) string {
	enc, ok := charsets[charset]
	if !ok {
		return s
	}
	out, err := enc.NewEncoder().String(s)
	if err != nil {
		panic(fmt.Sprintf("corpus: sample %q not encodable in %s: %v", s, charset, err))
	}
	return out
}

// encodedWord writes an RFC 2047 encoded word of the UTF-8 text s in
// charset, with B or Q encoding.
func encodedWord(charset string, b bool, s string) string {
	raw := encodeText(charset, s)
	if b {
		return "=?" + strings.ToUpper(charset) + "?B?" + base64.StdEncoding.EncodeToString([]byte(raw)) + "?="
	}
	var q strings.Builder
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == ' ':
			q.WriteByte('_')
		case c > ' ' && c < 0x7f && c != '=' && c != '?' && c != '_' && c != '"':
			q.WriteByte(c)
		default:
			fmt.Fprintf(&q, "=%02X", c)
		}
	}
	return "=?" + charset + "?Q?" + q.String() + "?="
}

// nonASCII picks a charset and a sample text in it.
func (g *generator) nonASCII() (charset, text string) {
	s := samples[g.r.IntN(len(samples))]
	return s.charset, s.texts[g.r.IntN(len(s.texts))]
}

// encodeSubject returns the Subject header value: plain ASCII, or with
// encoded words in some charset, or (now and then) raw UTF-8.
func (g *generator) encodeSubject(s string) string {
	r := g.r
	switch k := r.IntN(20); {
	case k < 13:
		return s
	case k < 19:
		cs, text := g.nonASCII()
		b := cs == "iso-2022-jp" || r.IntN(2) == 0
		w := encodedWord(cs, b, text)
		if r.IntN(3) == 0 {
			// Two adjacent words: the space between them is not shown.
			cs2, text2 := g.nonASCII()
			w += "\n\t" + encodedWord(cs2, cs2 == "iso-2022-jp" || r.IntN(2) == 0, " "+text2)
		}
		return s + " " + w
	default:
		return s + " – " + samples[0].texts[r.IntN(len(samples[0].texts))] // raw 8-bit UTF-8
	}
}

// address returns one address, with or without a display name.
func (g *generator) address() string {
	r := g.r
	p := people[r.IntN(len(people))]
	switch r.IntN(6) {
	case 0:
		return p.addr
	case 1:
		return "<" + p.addr + ">"
	case 2:
		cs, _ := g.nonASCII()
		if cs == "iso-2022-jp" {
			return encodedWord(cs, true, "山田 太郎") + " <" + p.addr + ">"
		}
		return encodedWord(cs, r.IntN(2) == 0, p.intl) + " <" + p.addr + ">"
	case 3:
		return `"` + p.last + ", " + p.first + `" <` + p.addr + ">"
	default:
		return p.first + " " + p.last + " <" + p.addr + ">"
	}
}

func (g *generator) addressList() string {
	n := 1 + g.r.IntN(3)
	as := make([]string, n)
	for i := range as {
		as[i] = g.address()
	}
	return strings.Join(as, ",\n\t")
}

// words returns about n bytes of text in lines of at most 72 characters,
// in paragraphs.
func (g *generator) words(n int) string {
	var b, line strings.Builder
	for b.Len()+line.Len() < n {
		w := vocabulary[g.r.IntN(len(vocabulary))]
		if line.Len()+len(w)+1 > 72 {
			b.WriteString(line.String())
			b.WriteString("\n")
			line.Reset()
			if g.r.IntN(6) == 0 {
				b.WriteString("\n")
			}
		}
		if line.Len() > 0 {
			line.WriteByte(' ')
		}
		line.WriteString(w)
	}
	b.WriteString(line.String())
	b.WriteString("\n")
	return b.String()
}

// textSize draws a realistic text size: mostly a few KiB, sometimes tens.
func (g *generator) textSize() int {
	return int(200 * math.Exp(g.r.Float64()*4.5)) // 200 B .. ~18 KB, log-uniform
}

// textBody makes p a text/plain part in charset.
func (g *generator) textBody(p *part, charset string) {
	text := g.words(g.textSize())
	if charset != "us-ascii" {
		_, sample := g.nonASCII()
		for _, s := range samples {
			if s.charset == charset || (charset == "utf-8" && s.charset == "utf-8") {
				sample = s.texts[g.r.IntN(len(s.texts))]
			}
		}
		text = sample + "\n\n" + text + "\n" + sample + "\n"
	}
	switch charset {
	case "us-ascii":
		p.add("Content-Type", "text/plain; charset=us-ascii")
		if g.r.IntN(3) == 0 {
			p.add("MIME-Version", "1.0")
		}
		p.body = text
	case "utf-8":
		if g.r.IntN(2) == 0 {
			p.add("MIME-Version", "1.0")
			p.add("Content-Type", "text/plain; charset=UTF-8; format=flowed")
			p.add("Content-Transfer-Encoding", "8bit")
			p.body = text
			return
		}
		fallthrough
	case "iso-8859-1", "windows-1252":
		p.add("MIME-Version", "1.0")
		p.add("Content-Type", "text/plain; charset="+charset)
		p.add("Content-Transfer-Encoding", "quoted-printable")
		p.body = qp(encodeText(charset, text))
	case "iso-2022-jp":
		p.add("MIME-Version", "1.0")
		p.add("Content-Type", `text/plain; charset="ISO-2022-JP"`)
		p.add("Content-Transfer-Encoding", "7bit")
		p.body = encodeText(charset, text)
	}
}

func qp(s string) string {
	var b bytes.Buffer
	w := quotedprintable.NewWriter(&b)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return strings.ReplaceAll(b.String(), "\r\n", "\n")
}

func (g *generator) boundary() string {
	return fmt.Sprintf("=_nfsimap_%016x", g.r.Uint64())
}

// multipart sets p's body to the parts, with a preamble now and then.
func (g *generator) multipart(p *part, subtype string, parts []part) {
	bd := g.boundary()
	if !hasHeader(p, "MIME-Version") {
		p.add("MIME-Version", "1.0")
	}
	p.add("Content-Type", "multipart/"+subtype+";\n\tboundary=\""+bd+"\"")
	var b strings.Builder
	if g.r.IntN(3) == 0 {
		b.WriteString("This is a multi-part message in MIME format.\n")
	}
	for _, sp := range parts {
		b.WriteString("\n--" + bd + "\n")
		pb := sp.bytes()
		b.Write(bytes.TrimSuffix(pb, []byte("\n")))
	}
	b.WriteString("\n--" + bd + "--\n")
	p.body = b.String()
}

func hasHeader(p *part, name string) bool {
	for _, h := range p.headers {
		if strings.EqualFold(h.name, name) {
			return true
		}
	}
	return false
}

func (g *generator) alternativeParts() []part {
	var plain part
	cs := []string{"us-ascii", "utf-8", "iso-8859-1"}[g.r.IntN(3)]
	g.textBody(&plain, cs)
	var html part
	html.add("Content-Type", "text/html; charset=utf-8")
	html.add("Content-Transfer-Encoding", "quoted-printable")
	var hb strings.Builder
	hb.WriteString("<html><head><meta charset=\"utf-8\"></head><body>\n")
	for _, para := range strings.Split(g.words(g.textSize()), "\n\n") {
		hb.WriteString("<p>" + strings.ReplaceAll(para, "\n", " ") + "</p>\n")
	}
	hb.WriteString("</body></html>\n")
	html.body = qp(hb.String())
	return []part{plain, html}
}

func (g *generator) alternative(p *part) {
	g.multipart(p, "alternative", g.alternativeParts())
}

// mixed makes p a multipart/mixed with a text (or alternative) part and n
// attachments.
func (g *generator) mixed(p *part, n int) {
	var first part
	if g.r.IntN(2) == 0 {
		g.multipart(&first, "alternative", g.alternativeParts())
	} else {
		g.textBody(&first, []string{"us-ascii", "utf-8"}[g.r.IntN(2)])
	}
	parts := []part{first}
	for range n {
		parts = append(parts, g.attachment())
	}
	g.multipart(p, "mixed", parts)
}

// attachment makes a base64 attachment with a file name written in one of
// the ways clients do: plain, RFC 2231 (with continuations) or RFC 2047.
func (g *generator) attachment() part {
	r := g.r
	kinds := []struct{ typ, ext string }{
		{"application/pdf", "pdf"}, {"image/jpeg", "jpg"}, {"image/png", "png"},
		{"application/zip", "zip"}, {"application/octet-stream", "bin"},
		{"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"},
	}
	k := kinds[r.IntN(len(kinds))]
	size := int(512 * math.Exp(r.Float64()*math.Log(float64(max(g.opt.MaxAttachment, 1024))/512)))
	data := make([]byte, size)
	for i := 0; i+8 <= len(data); i += 8 {
		v := r.Uint64()
		for j := range 8 {
			data[i+j] = byte(v >> (8 * j))
		}
	}
	var a part
	base := filenames[r.IntN(len(filenames))]
	name := base + "." + k.ext
	var disp, ctype string
	switch r.IntN(5) {
	case 0, 1: // plain ASCII name
		ascii := "report-" + fmt.Sprint(r.IntN(100)) + "." + k.ext
		ctype = k.typ + "; name=\"" + ascii + "\""
		disp = "attachment; filename=\"" + ascii + "\""
	case 2: // RFC 2231 in one piece
		enc := rfc2231(name)
		ctype = k.typ
		disp = "attachment;\n\tfilename*=UTF-8''" + enc
	case 3: // RFC 2231 continuations, with a language tag
		enc := rfc2231(name)
		mid := len(enc) / 2
		for mid > 0 && enc[mid-1] == '%' || mid > 1 && enc[mid-2] == '%' {
			mid--
		}
		ctype = k.typ
		disp = "attachment;\n\tfilename*0*=utf-8'de'" + enc[:mid] + ";\n\tfilename*1*=" + enc[mid:]
	default: // RFC 2047 inside a quoted parameter (not standard, common)
		cs, _ := g.nonASCII()
		if cs == "iso-2022-jp" {
			cs = "utf-8"
		}
		w := encodedWord("utf-8", true, name)
		if cs != "utf-8" {
			w = encodedWord(cs, false, "Café-menu."+k.ext)
		}
		ctype = k.typ + "; name=\"" + w + "\""
		disp = "attachment; filename=\"" + w + "\""
	}
	a.add("Content-Type", ctype)
	a.add("Content-Disposition", disp)
	a.add("Content-Transfer-Encoding", "base64")
	enc := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\n")
	a.body = b.String()
	return a
}

// rfc2231 percent-encodes s as an RFC 2231 extended value: everything but
// the attribute characters is escaped.
func rfc2231(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$&+-.^_`|~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// forward makes p a multipart/mixed with a note and the forwarded message
// as message/rfc822.
func (g *generator) forward(p *part, date time.Time) {
	var note part
	g.textBody(&note, "us-ascii")
	var inner part
	inner.add("From", g.address())
	inner.add("To", g.address())
	inner.add("Subject", g.encodeSubject(topics[g.r.IntN(len(topics))]))
	inner.add("Date", g.formatDate(date.Add(-time.Duration(1+g.r.IntN(200))*time.Hour)))
	inner.add("Message-ID", fmt.Sprintf("<inner.%x@example.org>", g.r.Uint64()))
	if g.r.IntN(2) == 0 {
		g.alternative(&inner)
	} else {
		g.mixed(&inner, 1)
	}
	var wrap part
	wrap.add("Content-Type", "message/rfc822")
	wrap.add("Content-Disposition", "inline")
	wrap.body = string(inner.bytes())
	g.multipart(p, "mixed", []part{note, wrap})
}

// junk writes a header with raw binary bytes and a body with NULs.
func (g *generator) junk(p *part) {
	var b strings.Builder
	for range 40 + g.r.IntN(200) {
		b.WriteByte(byte(g.r.IntN(256)))
	}
	h := strings.NewReplacer("\n", " ", "\r", " ").Replace(b.String())
	p.add("X-Junk", h)
	p.headers = append(p.headers, header{name: "\x00\xffBroken Header", value: "no colon rules"})
	p.body = g.words(300) + "\x00\x00" + b.String() + "\n"
}
