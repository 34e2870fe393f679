package sortthread

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestBaseSubject(t *testing.T) {
	tests := []struct {
		in       string
		want     string
		replyFwd bool
	}{
		{"", "", false},
		{"subject", "subject", false},
		{"  subject  ", "subject", false},
		{"Re: subject", "subject", true},
		{"RE: subject", "subject", true},
		{"re:subject", "subject", true},
		{"Fw: subject", "subject", true},
		{"FWD: subject", "subject", true},
		{"Fwd : subject", "subject", true},
		{"Re[2]: subject", "subject", true},
		{"Re [2] : subject", "subject", true},
		{"Re: Re: Re: subject", "subject", true},
		{"subject (fwd)", "subject", true},
		{"subject (FWD)  (fwd) ", "subject", true},
		{"subject(fwd)", "subject", true},
		{"Re: [foo] Re[2]: Fwd: subj (fwd)", "subj", true},
		{"[fwd: Re: x]", "x", true},
		{"[Fwd: subject]", "subject", true},
		{"[fwd: [fwd: nested]]", "nested", true},
		{"[fwd: Re: [list] [fwd: deep (fwd)]]", "deep", true},
		{"[blob]", "[blob]", false},
		{"[blob] ", "[blob]", false},
		{"[blob] subject", "subject", false},
		{"[a][b] subject", "subject", false},
		{"[a] [b]", "[b]", false},
		{"[list] Re: subject", "subject", true},
		{"Re: [list] subject", "subject", true},
		{"Re:", "", true},
		{"Re: ", "", true},
		{"(fwd)", "", true},
		{"Fwd: (fwd)", "", true},
		{"[fwd: ]", "", true},
		{"[fwd:]", "", true},
		{"Reply: subject", "Reply: subject", false},
		{"Refined", "Refined", false},
		{"Re subject", "Re subject", false},
		{"Fwdsubject", "Fwdsubject", false},
		{"Re: [unterminated subject", "[unterminated subject", true},
		{"a\t\tb  c", "a b c", false},
		{"folded\r\n subject", "folded subject", false},
		{"=?UTF-8?Q?Re=3A_caf=C3=A9?=", "café", true},
		{"=?ISO-8859-1?Q?Re:_Gr=FC=DFe?= (fwd)", "Grüße", true},
		{"=?UTF-8?B?W2Z3ZDogaGVsbG9d?=", "hello", true},
		{"=?x-unknown?Q?abc?=", "=?x-unknown?Q?abc?=", false},
		{"Re: [PATCH 1/2] Fwd: [fwd: thing]", "thing", true},
	}
	for _, tt := range tests {
		got, rf := BaseSubject(tt.in)
		if got != tt.want || rf != tt.replyFwd {
			t.Errorf("BaseSubject(%q) = %q, %v; want %q, %v", tt.in, got, rf, tt.want, tt.replyFwd)
		}
	}
}

func TestSubjectKeyCaseInsensitive(t *testing.T) {
	pairs := [][2]string{
		{"Re: Hello World", "hello world"},
		{"[FWD: HELLO]", "Hello (fwd)"},
		{"=?UTF-8?Q?=C3=A9t=C3=A9?=", "ÉTÉ"},
		{"Straße", "STRASSE"[:0] + "straße"},
	}
	for _, p := range pairs {
		a, _ := subjectKey(p[0])
		b, _ := subjectKey(p[1])
		if a != b {
			t.Errorf("subjectKey(%q) = %q, subjectKey(%q) = %q; want equal", p[0], a, p[1], b)
		}
	}
}

func TestCasemap(t *testing.T) {
	tests := []struct{ in, unicode, ascii string }{
		{"abc", "ABC", "ABC"},
		{"a_b", "A_B", "A_B"},
		{"ÄÖü", "A\u0308O\u0308U\u0308", "ÄÖü"},
		{"ǆ", "Dz\u030c", "ǆ"}, // titlecase ǅ, then decomposed
		{"ﬁ", "fi", "ﬁ"},       // no titlecase; compatibility decomposition
		{"한", "\u1112\u1161\u11ab", "한"},
		{"\xff\xfeabc", "\uFFFDABC", "\xff\xfeABC"},
		{"a\xffé", "A\uFFFDE\u0301", "A\xffé"},
	}
	for _, tt := range tests {
		if got := UnicodeCasemap(tt.in); got != tt.unicode {
			t.Errorf("UnicodeCasemap(%q) = %q, want %q", tt.in, got, tt.unicode)
		}
		if got := ASCIICasemap(tt.in); got != tt.ascii {
			t.Errorf("ASCIICasemap(%q) = %q, want %q", tt.in, got, tt.ascii)
		}
	}
	// Equal under the collation.
	if UnicodeCasemap("Crème") != UnicodeCasemap("CRÈME") {
		t.Error("Crème and CRÈME differ under i;unicode-casemap")
	}
}

func FuzzBaseSubject(f *testing.F) {
	for _, s := range []string{
		"", "Re: [foo] Re[2]: Fwd: subj (fwd)", "[fwd: Re: x]", "[blob]",
		"[fwd: [fwd: a]]", "=?UTF-8?Q?Re=3A_x?=", "Re [", "[fwd:", "\t \r\n",
		"Fwd:Fw:Re:[a][b]:", "((fwd)(fwd))", "\xff\xfe",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		base, _ := BaseSubject(s)
		// The result is stable: extracting again changes nothing.
		again, _ := extractBaseSubject(base)
		if again != base {
			t.Fatalf("BaseSubject(%q) = %q, but extracting again gives %q", s, base, again)
		}
		if strings.HasSuffix(base, " ") || strings.HasPrefix(base, " ") {
			t.Fatalf("BaseSubject(%q) = %q keeps outer whitespace", s, base)
		}
		k, _ := subjectKey(s)
		if utf8.ValidString(s) && !strings.Contains(s, "=?") && !utf8.ValidString(k) {
			t.Fatalf("subjectKey(%q) = %q is not UTF-8", s, k)
		}
	})
}
