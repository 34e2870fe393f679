package difftest

import (
	"errors"
	"strings"
	"testing"
)

func TestParseResponse(t *testing.T) {
	raw := "* 3 FETCH (UID 7 FLAGS (\\Seen $Junk) BODY[HEADER.FIELDS (\"FROM\" SUBJECT)] {5}\r\nab\x00\r\n" +
		" ENVELOPE (NIL \"a \\\"q\\\" b\" ((\"N\" NIL \"x\" \"y\")) NIL) BINARY[1] ~{2}\r\nzz BODY[]<0> \"\")"
	r, err := ParseResponse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if r.Num != 3 || r.Name != "FETCH" {
		t.Fatalf("got %d %q", r.Num, r.Name)
	}
	items, err := FetchItems(r)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"UID":                                "7",
		"FLAGS":                              `(\Seen $Junk)`,
		"BODY[HEADER.FIELDS (FROM SUBJECT)]": `"ab\x00\r\n"`,
		"ENVELOPE":                           `(NIL "a \"q\" b" (("N" NIL "x" "y")) NIL)`,
		"BINARY[1]":                          `"zz"`,
		"BODY[]<0>":                          `""`,
	}
	for k, w := range want {
		if got := items[k].String(); got != w {
			t.Errorf("%s: got %s, want %s", k, got, w)
		}
	}
	if len(items) != len(want) {
		t.Errorf("got %d items, want %d", len(items), len(want))
	}
}

func TestParseResponseThreadAndStatus(t *testing.T) {
	r, err := ParseResponse([]byte("* THREAD (1 2)(3 (4)(5))"))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Data) != 2 || r.Data[1].String() != "(3 (4) (5))" {
		t.Errorf("THREAD parsed as %v", r.Data)
	}
	r, err = ParseResponse([]byte("* OK [UIDVALIDITY 5] fine (really"))
	if err != nil || r.Name != "OK" {
		t.Errorf("status response: %v %v", r, err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		"* 1 FETCH (UID 1",
		"* 1 FETCH (BODY[] {10}\r\nshort)",
		"* SEARCH \"open",
		"* 1 FETCH (X BODY[1)",
		"* 1 FETCH (X {x}\r\n)",
		"* SEARCH " + strings.Repeat("(", 200) + strings.Repeat(")", 200),
		"no star",
	} {
		if _, err := ParseResponse([]byte(in)); !errors.Is(err, ErrSyntax) {
			t.Errorf("%q: got %v, want ErrSyntax", in, err)
		}
	}
}

func TestSplitLiterals(t *testing.T) {
	got := splitLiterals("a1 SEARCH CHARSET UTF-8 SUBJECT " + Literal("Größe") + " BODY " + Literal("x}\r\n") + "\r\n")
	want := []string{"a1 SEARCH CHARSET UTF-8 SUBJECT {7}\r\n", "Größe BODY {4}\r\n", "x}\r\n\r\n"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", got, want)
	}
}

func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{
		"* 3 FETCH (UID 7 BODY[HEADER.FIELDS (FROM)] {3}\r\nabc)",
		"* THREAD (1 2)(3 (4)(5))",
		"* SORT 3 1 2",
		"* 1 FETCH (BODYSTRUCTURE ((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 1 1 NIL NIL NIL NIL) \"mixed\"))",
		"* 1 FETCH (BINARY[1] ~{1}\r\n\x00)",
		"* OK [READ-WRITE] done",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseResponse(data)
		if err != nil {
			return
		}
		_, _ = FetchItems(r)
		if r.Name == "OK" || r.Name == "NO" || r.Name == "BAD" || r.Name == "BYE" || r.Name == "PREAUTH" {
			return
		}
		// Values without strings print in IMAP syntax and parse back to
		// themselves.
		for _, v := range r.Data {
			if hasString(v) {
				continue
			}
			back, err := ParseValues([]byte(v.String()))
			if err != nil || len(back) != 1 || !Equal(back[0], v) {
				t.Fatalf("%s parsed back as %v (%v)", v, back, err)
			}
		}
	})
}

func hasString(v Value) bool {
	if v.Kind == String {
		return true
	}
	for _, e := range v.List {
		if hasString(e) {
			return true
		}
	}
	return false
}
