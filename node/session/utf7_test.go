package session

import (
	"testing"
	"unicode/utf8"
)

func TestMUTF7(t *testing.T) {
	for dec, enc := range map[string]string{
		"INBOX":          "INBOX",
		"Entwürfe":       "Entw&APw-rfe",
		"a&b":            "a&-b",
		"日本語":            "&ZeVnLIqe-",
		"~peter/mail/台北": "~peter/mail/&U,BTFw-",
		"😀":              "&2D3eAA-",
	} {
		if got := encodeMUTF7(dec); got != enc {
			t.Errorf("encode(%q) = %q, want %q", dec, got, enc)
		}
		got, err := decodeMUTF7(enc)
		if err != nil || got != dec {
			t.Errorf("decode(%q) = %q, %v; want %q", enc, got, err, dec)
		}
	}
	for _, bad := range []string{"&", "&AGE-", "&Jjo!", "&2D3-", "a\x01b", "&ZeVnLIqe"} {
		if got, err := decodeMUTF7(bad); err == nil {
			t.Errorf("decode(%q) = %q, want an error", bad, got)
		}
	}
}

func FuzzMUTF7(f *testing.F) {
	for _, s := range []string{"INBOX", "Entw&APw-rfe", "a&-b", "&ZeVnLIqe-", "&", "&2D3eAA-", "&AGE-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		dec, err := decodeMUTF7(s)
		if err != nil {
			return
		}
		if !utf8.ValidString(dec) {
			t.Fatalf("decode(%q) gave invalid UTF-8", s)
		}
		// What decodes encodes back to a name that decodes the same.
		again, err := decodeMUTF7(encodeMUTF7(dec))
		if err != nil || again != dec {
			t.Fatalf("round trip of %q: %q, %v", dec, again, err)
		}
		if utf8.ValidString(s) {
			if back, err := decodeMUTF7(encodeMUTF7(s)); err != nil || back != s {
				t.Fatalf("encode/decode of %q: %q, %v", s, back, err)
			}
		}
	})
}
