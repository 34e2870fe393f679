package nfslock

import (
	"bytes"
	"strings"
	"testing"
)

func FuzzParseContent(f *testing.F) {
	for _, s := range []string{
		"12345:mx1.example.org:0123456789abcdef\n",
		"12345:mx1.example.org",
		"12345:mx1.example.org\n",
		"1:h:n",
		"",
		"\n",
		"garbage",
		"0:host",
		"-1:host",
		"+5:host",
		"007:host",
		"99999999999999999999:host",
		"2147483648:host",
		"12:host:nonce:extra",
		"12::nonce",
		"12:ho st:n",
		"12:host:\n",
		"12:host:n\n\n",
		"\xff\xfe12:host",
		strings.Repeat("9", 600),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		o, ok := parseContent(b)
		if !ok {
			if o != (owner{}) {
				t.Fatalf("failed parse returned %+v", o)
			}
			return
		}
		if o.PID <= 0 || checkHost(o.Host) != nil {
			t.Fatalf("accepted bad owner %+v from %q", o, b)
		}
		if o.Nonce != "" && !validNonce(o.Nonce) {
			t.Fatalf("accepted bad nonce %+v from %q", o, b)
		}
		// What parses must survive a round trip through our format.
		if o.Nonce != "" {
			out := formatContent(o)
			o2, ok := parseContent(out)
			if !ok || o2 != o {
				t.Fatalf("round trip of %+v: %q parsed as %+v, %v", o, out, o2, ok)
			}
			if !bytes.Equal(bytes.TrimSuffix(b, []byte("\n")), bytes.TrimSuffix(out, []byte("\n"))) {
				t.Fatalf("content %q formats back as %q", b, out)
			}
		}
	})
}
