package session

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func codecSeeds() [][]byte {
	var out [][]byte
	for _, m := range []string{
		genMessage(1),
		"From: a@b\r\nSubject: =?utf-8?q?h=C3=A9?=\r\nDate: Tue, 03 Feb 2026 10:00:00 +0100\r\nCc: Group: x@y, z@w;\r\n" +
			"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\n" +
			"Content-Type: message/rfc822\r\nContent-Disposition: attachment; filename=x.eml\r\n\r\nSubject: inner\r\n\r\nbody\r\n--b--\r\n",
		"Subject: no body",
	} {
		r := parseMessage(toCRLF([]byte(m)), int64(len(m)), time.Unix(1700000000, 0))
		out = append(out, r.Envelope, r.BodyStructure)
	}
	return out
}

// TestCodecRoundTrip: what the index keeps decodes to what was parsed.
func TestCodecRoundTrip(t *testing.T) {
	for _, m := range []string{genMessage(7), lfMessage,
		"Content-Type: multipart/alternative; boundary=q\r\n\r\n--q\r\nContent-Type: text/html\r\n\r\n<p>\r\n--q--\r\n"} {
		content := toCRLF([]byte(m))
		env := extractEnvelope(content)
		bs := extractBodyStructure(content)
		genv, err := decodeEnvelope(encodeEnvelope(env))
		if err != nil {
			t.Fatal(err)
		}
		if !genv.Date.Equal(env.Date) {
			t.Errorf("date %v != %v", genv.Date, env.Date)
		}
		genv.Date = env.Date
		if !reflect.DeepEqual(genv, env) {
			t.Errorf("envelope:\n%+v\n%+v", genv, env)
		}
		gbs, err := decodeBodyStructure(encodeBodyStructure(bs))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(gbs, bs) {
			t.Errorf("body structure:\n%+v\n%+v", gbs, bs)
		}
	}
	if _, err := decodeEnvelope([]byte{codecVersion, 1, 1}); err == nil {
		t.Error("truncated envelope decoded")
	}
	if _, err := decodeBodyStructure([]byte(strings.Repeat("m", 100))); err == nil {
		t.Error("garbage body structure decoded")
	}
}

// FuzzCodec: the decoders never panic, and what they accept encodes back
// to something they accept again.
func FuzzCodec(f *testing.F) {
	for _, s := range codecSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if env, err := decodeEnvelope(b); err == nil {
			if _, err := decodeEnvelope(encodeEnvelope(env)); err != nil {
				t.Errorf("re-encoded envelope rejected: %v", err)
			}
		}
		if bs, err := decodeBodyStructure(b); err == nil {
			if _, err := decodeBodyStructure(encodeBodyStructure(bs)); err != nil {
				t.Errorf("re-encoded body structure rejected: %v", err)
			}
		}
	})
}
