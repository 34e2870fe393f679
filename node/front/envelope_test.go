package front

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// goimapPlaceholder renders a placeholder the way go-imap's envelope
// writer does (imapserver/fetch.go writeEnvelope: NIL date, the subject
// quoted, the From list with a space between addresses, the empty Sender
// and Reply-To lists as NIL). TestEnvelopeThroughGoIMAP in node/session
// checks the real writer against the swap.
func goimapPlaceholder(env *imap.Envelope) string {
	var b strings.Builder
	b.WriteString(`(NIL "` + env.Subject + `" (`)
	for i, a := range env.From {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(`("` + a.Name + `" NIL NIL NIL)`)
	}
	b.WriteString(") NIL NIL NIL NIL NIL NIL NIL)")
	return b.String()
}

func TestEnvelopePlaceholderRoundTrip(t *testing.T) {
	for _, n := range []int{1, 10, envelopeChunk - 1, envelopeChunk, envelopeChunk + 1, 3*envelopeChunk + 7} {
		wire := bytes.Repeat([]byte("x"), n)
		env := EnvelopePlaceholder(wire)
		if got, ok := EnvelopeBytes(env); !ok || !bytes.Equal(got, wire) {
			t.Fatalf("%d bytes: round trip failed", n)
		}
		for _, a := range env.From {
			if len(a.Name) > 4096 {
				t.Fatalf("a chunk of %d characters would be a literal", len(a.Name))
			}
		}
	}
	if _, ok := EnvelopeBytes(&imap.Envelope{Subject: "plain"}); ok {
		t.Error("an ordinary envelope taken for a placeholder")
	}
	if got, ok := EnvelopeBytes(EnvelopePlaceholder(nil)); !ok || string(got) != emptyEnvelope {
		t.Errorf("empty placeholder carries %q", got)
	}
}

// swapAll feeds pieces through one swap and returns the output.
func swapAll(pieces ...[]byte) []byte {
	var s envelopeSwap
	var out []byte
	for _, p := range pieces {
		out = s.feed(out, p)
	}
	return out
}

// TestEnvelopeSwapSplit: a FETCH line with two placeholders (one of them
// big enough for several chunks) comes out the same whatever the write
// boundaries, and nothing is held back at the end of the line.
func TestEnvelopeSwapSplit(t *testing.T) {
	small := []byte(`("Tue, 3 Feb 2026" "hi" NIL NIL NIL NIL NIL NIL NIL NIL)`)
	big := []byte(`(NIL {7}` + "\r\n" + `caf` + "\xc3\xa9 x" + ` ` + strings.Repeat(`(NIL NIL "a" "b")`, 500) + ` NIL)`)
	in := "* 1 FETCH (UID 4 ENVELOPE " + goimapPlaceholder(EnvelopePlaceholder(small)) +
		" BODYSTRUCTURE (\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 9 " + goimapPlaceholder(EnvelopePlaceholder(big)) + " (\"text\" \"plain\") 1))\r\n"
	want := "* 1 FETCH (UID 4 ENVELOPE " + string(small) +
		" BODYSTRUCTURE (\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 9 " + string(big) + " (\"text\" \"plain\") 1))\r\n"
	if got := swapAll([]byte(in)); string(got) != want {
		t.Fatalf("one write:\n got %q\nwant %q", got, want)
	}
	b := []byte(in)
	for i := 0; i <= len(b); i += 1 + i/200 {
		var s envelopeSwap
		out := s.feed(nil, b[:i])
		out = s.feed(out, b[i:])
		if string(out) != want {
			t.Fatalf("split at %d: got %q", i, out)
		}
		if s.pending() != 0 {
			t.Fatalf("split at %d: %d bytes held after the line", i, s.pending())
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		var pieces [][]byte
		rest := b
		for len(rest) > 0 {
			n := min(len(rest), 1+r.IntN(64))
			pieces = append(pieces, rest[:n])
			rest = rest[n:]
		}
		if got := swapAll(pieces...); string(got) != want {
			t.Fatalf("random pieces: got %q", got)
		}
	}
}

// TestEnvelopeSwapOnlyExact: text that is not exactly a placeholder of
// this process passes unchanged; a placeholder of ours that go-imap would
// never write is dropped, never sent.
func TestEnvelopeSwapOnlyExact(t *testing.T) {
	wire := []byte(`(NIL "x" NIL NIL NIL NIL NIL NIL NIL NIL)`)
	ph := goimapPlaceholder(EnvelopePlaceholder(wire))
	other := strings.Replace(ph, envelopeMarker, "NFSIMAPENVELOPE"+strings.Repeat("A", len(envelopeMarker)-len("NFSIMAPENVELOPE")), 1)
	for _, in := range []string{
		"* 1 FETCH (ENVELOPE (NIL \"NFSIMAPENVELOPE\" NIL NIL NIL NIL NIL NIL NIL NIL))\r\n",
		"* 1 FETCH (ENVELOPE " + other + ")\r\n", // another process's marker
		"* 1 FETCH (ENVELOPE (NIL \"" + envelopeMarker[:len(envelopeMarker)-1] + "\" ((\"QQ\" NIL NIL NIL)) NIL NIL NIL NIL NIL NIL NIL))\r\n",
		"* 1 FETCH (ENVELOPE (NIL \"x" + envelopeMarker + "\" NIL NIL NIL NIL NIL NIL NIL NIL))\r\n",
		"(NIL \"(NIL \"(NIL (NIL \"\r\n",
		"",
	} {
		if got := swapAll([]byte(in)); string(got) != in {
			t.Errorf("%q changed to %q", in, got)
		}
	}
	for _, bad := range []string{
		strings.Replace(ph, `" NIL NIL NIL)`, `" NIL NIL "x")`, 1),
		strings.Replace(ph, ` NIL NIL NIL NIL NIL NIL NIL)`, ` NIL NIL NIL NIL NIL NIL "x")`, 1),
		strings.Replace(ph, `(("`, `(("!`, 1),
		strings.TrimSuffix(ph, ")") + "\r\n", // cut by a line end
	} {
		got := swapAll([]byte("* 1 FETCH (ENVELOPE " + bad + ")\r\n"))
		if bytes.Contains(got, []byte(envelopeMarker)) {
			t.Errorf("the marker left the process in %q", got)
		}
	}
}

// TestEnvelopeSwapInOutput drives the connection's output scanner: a
// placeholder in a response line is swapped, the same bytes inside a
// literal (a message body) are not, and a long FETCH keeps nothing.
func TestEnvelopeSwapInOutput(t *testing.T) {
	wire := `("d" "s" NIL NIL NIL NIL NIL NIL NIL NIL)`
	ph := goimapPlaceholder(EnvelopePlaceholder([]byte(wire)))
	var h handoffConn
	h.closed = true // nothing is written; h.out keeps what would be
	body := "look: " + ph
	var in bytes.Buffer
	fmt.Fprintf(&in, "* 1 FETCH (BODY[] {%d}\r\n%s ENVELOPE %s)\r\n", len(body), body, ph)
	for i := range 1000 {
		fmt.Fprintf(&in, "* %d FETCH (ENVELOPE %s)\r\n", i+2, ph)
	}
	rest := in.Bytes()
	var out []byte
	for len(rest) > 0 {
		n := min(len(rest), 4096) // go-imap's bufio.Writer
		if _, err := h.scanOutputLocked(rest[:n]); err != nil {
			t.Fatal(err)
		}
		out = append(out, h.out...)
		h.out = h.out[:0]
		rest = rest[n:]
	}
	wantFirst := fmt.Sprintf("* 1 FETCH (BODY[] {%d}\r\n%s ENVELOPE %s)\r\n", len(body), body, wire)
	if !bytes.HasPrefix(out, []byte(wantFirst)) {
		t.Fatalf("first response:\n got %q\nwant %q", out[:min(len(out), len(wantFirst)+40)], wantFirst)
	}
	if n := bytes.Count(out, []byte(wire)); n != 1001 {
		t.Errorf("%d envelopes swapped, want 1001", n)
	}
	if n := bytes.Count(out, []byte(envelopeMarker)); n != 1 {
		t.Errorf("marker %d times in the output, want once (in the literal)", n)
	}
	if h.envSwap.pending() != 0 || cap(h.envSwap.hold) > 4*envelopeChunk {
		t.Errorf("swap keeps %d bytes (cap %d) after the command", h.envSwap.pending(), cap(h.envSwap.hold))
	}
}

// FuzzEnvelopeSwap: any output, cut anywhere, comes out of the swap as it
// does in one piece; output without a placeholder is unchanged.
func FuzzEnvelopeSwap(f *testing.F) {
	ph := goimapPlaceholder(EnvelopePlaceholder([]byte(`(NIL "s" NIL NIL NIL NIL NIL NIL NIL NIL)`)))
	f.Add([]byte("* 1 FETCH (ENVELOPE "+ph+")\r\n"), uint16(30))
	f.Add([]byte(ph+ph), uint16(len(ph)))
	f.Add([]byte("(NIL \"NFSIMAPENVELOPE\"\r\n"), uint16(5))
	f.Fuzz(func(t *testing.T, b []byte, cut uint16) {
		// Let the fuzzer reach the marker: "@" stands for it.
		b = bytes.ReplaceAll(b, []byte("@"), []byte(envelopeMarker))
		whole := swapAll(b)
		i := int(cut) % (len(b) + 1)
		if split := swapAll(b[:i], b[i:]); !bytes.Equal(whole, split) {
			t.Fatalf("split at %d changed the output: %q, %q", i, whole, split)
		}
		var s envelopeSwap
		out := s.feed(nil, b)
		out = append(out, s.hold...)
		if !bytes.Contains(b, placeholderKey) && !bytes.Equal(out, b) {
			t.Fatalf("output without a placeholder changed: %q -> %q", b, out)
		}
	})
}

// BenchmarkEnvelopeSwap times the output path for a FETCH 1:* (ENVELOPE)
// of 10,000 messages in go-imap's 4 KiB writes: "swap" with placeholders,
// "plain" the same amount of ordinary response text.
func BenchmarkEnvelopeSwap(b *testing.B) {
	wire := `("Tue, 3 Feb 2026 10:00:00 +0100" "a subject of some length" (("Ann Example" NIL "ann" "x.example")) ` +
		`(("Ann Example" NIL "ann" "x.example")) (("Ann Example" NIL "ann" "x.example")) ((NIL NIL "bob" "y.example")) NIL NIL NIL "<1@x.example>")`
	ph := goimapPlaceholder(EnvelopePlaceholder([]byte(wire)))
	for _, c := range []struct{ name, env string }{{"swap", ph}, {"plain", wire}} {
		var in bytes.Buffer
		for i := range 10000 {
			fmt.Fprintf(&in, "* %d FETCH (ENVELOPE %s)\r\n", i+1, c.env)
		}
		b.Run(c.name, func(b *testing.B) {
			var h handoffConn
			h.closed = true
			b.SetBytes(int64(in.Len()))
			for b.Loop() {
				for rest := in.Bytes(); len(rest) > 0; {
					n := min(len(rest), 4096)
					if _, err := h.scanOutputLocked(rest[:n]); err != nil {
						b.Fatal(err)
					}
					h.out = h.out[:0]
					rest = rest[n:]
				}
			}
		})
	}
}
