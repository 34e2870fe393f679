package maildir

import (
	"errors"
	"testing"
)

func TestParseName(t *testing.T) {
	tests := []struct {
		in       string
		unique   string
		flags    Flags
		kw       string
		other    string
		extra    string
		size     int64
		vsize    int64
		uw       uint32
		hasInfo  bool
		bad      bool
		withSeen string // WithFlags(n.Flags|FlagSeen, n.Keywords)
	}{
		{in: "1700000000.M1P2.host", unique: "1700000000.M1P2.host", size: -1, vsize: -1, withSeen: "1700000000.M1P2.host:2,S"},
		{in: "123.abc:2,", unique: "123.abc", hasInfo: true, size: -1, vsize: -1, withSeen: "123.abc:2,S"},
		{in: "123.abc:2,FS", unique: "123.abc", hasInfo: true, flags: FlagFlagged | FlagSeen, size: -1, vsize: -1, withSeen: "123.abc:2,FS"},
		{in: "123.abc:2,TSRPFD", unique: "123.abc", hasInfo: true, flags: FlagDraft | FlagFlagged | FlagPassed | FlagReplied | FlagSeen | FlagTrashed, size: -1, vsize: -1, withSeen: "123.abc:2,DFPRST"},
		{in: "123.abc,S=1234,W=1300:2,Sac", unique: "123.abc,S=1234,W=1300", hasInfo: true, flags: FlagSeen, kw: "ac", size: 1234, vsize: 1300, withSeen: "123.abc,S=1234,W=1300:2,Sac"},
		// UW-IMAP's ",U" field after the flags is not six flags.
		{in: "1030712092.18513.host:2,S,U1030712092", unique: "1030712092.18513.host", hasInfo: true, flags: FlagSeen, extra: ",U1030712092", uw: 1030712092, size: -1, vsize: -1, withSeen: "1030712092.18513.host:2,S,U1030712092"},
		{in: "1030712092.18513.host,U=17:2,", unique: "1030712092.18513.host,U=17", hasInfo: true, uw: 17, size: -1, vsize: -1, withSeen: "1030712092.18513.host,U=17:2,S"},
		{in: "x,U1234:2,R", unique: "x,U1234", hasInfo: true, flags: FlagReplied, uw: 1234, size: -1, vsize: -1, withSeen: "x,U1234:2,RS"},
		{in: "x:2,S,u=17", unique: "x", hasInfo: true, flags: FlagSeen, extra: ",u=17", size: -1, vsize: -1, withSeen: "x:2,S,u=17"},
		{in: "x:2,S,W=99", unique: "x", hasInfo: true, flags: FlagSeen, extra: ",W=99", size: -1, vsize: 99, withSeen: "x:2,S,W=99"},
		// Unknown flag letters are kept.
		{in: "x:2,9SXa", unique: "x", hasInfo: true, flags: FlagSeen, kw: "a", other: "9X", size: -1, vsize: -1, withSeen: "x:2,9SXa"},
		// Odd infos.
		{in: "x:1,foo", unique: "x", hasInfo: true, size: -1, vsize: -1, withSeen: "x:2,S"},
		{in: "x:2", unique: "x", hasInfo: true, size: -1, vsize: -1, withSeen: "x:2,S"},
		{in: "x:", unique: "x", hasInfo: true, size: -1, vsize: -1, withSeen: "x:2,S"},
		{in: "x,S=12a:2,", unique: "x,S=12a", hasInfo: true, size: -1, vsize: -1, withSeen: "x,S=12a:2,S"},
		// Not maildir names.
		{in: "", bad: true},
		{in: ".nfs000123", bad: true},
		{in: ".hidden:2,S", bad: true},
		{in: "a/b", bad: true},
		{in: ":2,S", bad: true},
		{in: "a\x00b", bad: true},
		{in: "a\nb", bad: true},
	}
	for _, tc := range tests {
		n, err := ParseName(tc.in)
		if tc.bad {
			if !errors.Is(err, ErrInvalidName) {
				t.Errorf("ParseName(%q) err = %v, want ErrInvalidName", tc.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseName(%q): %v", tc.in, err)
			continue
		}
		if n.Unique != tc.unique || n.Flags != tc.flags || n.Keywords != tc.kw || n.OtherFlags != tc.other ||
			n.Extra != tc.extra || n.Size != tc.size || n.VSize != tc.vsize || n.UWUID != tc.uw || n.HasInfo != tc.hasInfo {
			t.Errorf("ParseName(%q) = %+v", tc.in, n)
		}
		if n.String() != tc.in {
			t.Errorf("ParseName(%q).String() = %q", tc.in, n.String())
		}
		if got := n.WithFlags(n.Flags|FlagSeen, n.Keywords); got != tc.withSeen {
			t.Errorf("ParseName(%q).WithFlags(+S) = %q, want %q", tc.in, got, tc.withSeen)
		}
	}
}

func TestWithFlagsSortsAndDedups(t *testing.T) {
	n, _ := ParseName("u:2,S")
	if got := n.WithFlags(FlagTrashed|FlagDraft, "zaaz"); got != "u:2,DTaz" {
		t.Fatalf("got %q", got)
	}
	if got := n.WithFlags(0, ""); got != "u:2," {
		t.Fatalf("got %q", got)
	}
}

func FuzzParseName(f *testing.F) {
	for _, s := range []string{"", "a", "1.M2P3.h:2,FS", "x,S=1:2,S,U12", ".x", "a:1,", "a:2", "a:2,,,", "a,U=:2,", "a,W=99999999999999999999:2,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseName(s)
		if err != nil {
			return
		}
		if n.String() != s {
			t.Fatalf("round trip %q -> %q", s, n.String())
		}
		w := n.WithFlags(n.Flags, n.Keywords)
		n2, err := ParseName(w)
		if err != nil {
			t.Fatalf("WithFlags(%q) = %q unparsable: %v", s, w, err)
		}
		if n2.Unique != n.Unique || n2.Flags != n.Flags || n2.Keywords != n.Keywords {
			t.Fatalf("WithFlags(%q) = %q changes the message: %+v vs %+v", s, w, n2, n)
		}
	})
}
