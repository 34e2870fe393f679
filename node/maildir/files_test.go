package maildir

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// Samples written the way Dovecot writes them (see the format comment in
// Dovecot's maildir-uidlist.c).
const (
	uidlistV1 = "1 1234567890 5\n" +
		"1 1234567000.M1P1.host:2,S\n" +
		"3 1234567001.M2P1.host\n" +
		"4 1234567002.M3P1.host:2,RS\n"
	uidlistV2 = "2 1234567890 7\n" +
		"1 0 1234567000.M1P1.host:2,S\n" +
		"6 1 1234567002.M3P1.host\n"
	uidlistV3 = "3 V1700000000 N12 G0123456789abcdef0123456789abcdef\n" +
		"1 :1700000001.M10P20.mail\n" +
		"5 W1300 S1234 :1700000002.M11P20.mail,S=1234,W=1300\n" +
		"9 GAAAA :1700000003.M12P20.mail\n"
)

func TestParseUidlistV1(t *testing.T) {
	u, err := ParseUidlist([]byte(uidlistV1))
	if err != nil {
		t.Fatal(err)
	}
	if u.Version != 1 || u.UIDValidity != 1234567890 || u.NextUID != 5 || len(u.Records) != 3 {
		t.Fatalf("%+v", u)
	}
	if u.Records[0].Unique() != "1234567000.M1P1.host" || u.Records[2].UID != 4 || u.Records[2].Unique() != "1234567002.M3P1.host" {
		t.Fatalf("%+v", u.Records)
	}
}

func TestParseUidlistV2(t *testing.T) {
	u, err := ParseUidlist([]byte(uidlistV2))
	if err != nil {
		t.Fatal(err)
	}
	if u.Version != 2 || u.NextUID != 7 || len(u.Records) != 2 || u.Records[1].UID != 6 || u.Records[1].File != "1234567002.M3P1.host" {
		t.Fatalf("%+v", u)
	}
}

func TestParseUidlistV3RoundTrip(t *testing.T) {
	u, err := ParseUidlist([]byte(uidlistV3))
	if err != nil {
		t.Fatal(err)
	}
	if u.Version != 3 || u.UIDValidity != 1700000000 || u.NextUID != 12 || u.GUID != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("%+v", u)
	}
	want := []UidRecord{
		{UID: 1, File: "1700000001.M10P20.mail"},
		{UID: 5, Ext: []string{"W1300", "S1234"}, File: "1700000002.M11P20.mail,S=1234,W=1300"},
		{UID: 9, Ext: []string{"GAAAA"}, File: "1700000003.M12P20.mail"},
	}
	if !reflect.DeepEqual(u.Records, want) {
		t.Fatalf("records %+v", u.Records)
	}
	if got := string(u.Marshal()); got != uidlistV3 {
		t.Fatalf("Marshal:\n%s\nwant:\n%s", got, uidlistV3)
	}
	// Older files are written as version 3 with the unique part only.
	u1, _ := ParseUidlist([]byte(uidlistV1))
	u1.GUID = "00000000000000000000000000000000"
	got := string(u1.Marshal())
	want3 := "3 V1234567890 N5 G00000000000000000000000000000000\n1 :1234567000.M1P1.host\n3 :1234567001.M2P1.host\n4 :1234567002.M3P1.host\n"
	if got != want3 {
		t.Fatalf("v1 as v3:\n%s", got)
	}
}

func TestParseUidlistBroken(t *testing.T) {
	for _, bad := range []string{"", "x", "3 N5\n", "4 V1 N2\n", "1 0 5\n", "3 V1 N0\n"} {
		if u, err := ParseUidlist([]byte(bad)); !errors.Is(err, ErrCorrupt) || u != nil {
			t.Errorf("ParseUidlist(%q) = %v, %v", bad, u, err)
		}
	}
	// Broken records: the usable ones are kept, NextUID stays above them.
	in := "3 V7 N3\n1 :a\n2 :b\nfoo\n10 :c/d\n5 :e\n4 :f\n6 :a\n"
	u, err := ParseUidlist([]byte(in))
	if !errors.Is(err, ErrCorrupt) || u == nil {
		t.Fatalf("err %v", err)
	}
	var got []string
	for _, r := range u.Records {
		got = append(got, r.File+"="+strings.Repeat("", 0)+string(rune('0'+r.UID)))
	}
	// "a" listed twice: the later line (6) wins; "f" (4 after 5) is out of order but kept.
	if strings.Join(got, " ") != "b=2 f=4 e=5 a=6" || u.NextUID != 7 {
		t.Fatalf("got %v next %d", got, u.NextUID)
	}
}

func FuzzParseUidlist(f *testing.F) {
	for _, s := range []string{uidlistV1, uidlistV2, uidlistV3, "", "3 V1 N1\n", "3 V1 N2\n1 \n", "3 V1 N2\n1 X :\n", "1 1 1\n4294967295 a\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := ParseUidlist(data)
		if u == nil {
			if err == nil {
				t.Fatal("nil list without error")
			}
			return
		}
		for i, r := range u.Records {
			if r.UID == 0 || r.UID >= u.NextUID && u.NextUID != 0xffffffff || (i > 0 && r.UID <= u.Records[i-1].UID) {
				t.Fatalf("bad records %+v next %d", u.Records, u.NextUID)
			}
		}
		if strings.ContainsAny(u.GUID, " \n") {
			return
		}
		u2, err := ParseUidlist(u.Marshal())
		if err != nil {
			// Records whose names hold spaces or newlines may not round trip.
			return
		}
		if u2.UIDValidity != u.UIDValidity || u2.NextUID != u.NextUID {
			t.Fatalf("round trip changed header: %+v vs %+v", u2, u)
		}
	})
}

func TestKeywordsFile(t *testing.T) {
	kw, err := ParseKeywords([]byte("0 $Forwarded\n2 Junk\n1 $Label1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(kw, []string{"$Forwarded", "$Label1", "Junk"}) {
		t.Fatalf("%q", kw)
	}
	if got := string(MarshalKeywords(kw)); got != "0 $Forwarded\n1 $Label1\n2 Junk\n" {
		t.Fatalf("%q", got)
	}
	kw, err = ParseKeywords([]byte("0 a\n26 toohigh\nx y\n0 again\n3 a\n4 ok\n"))
	if !errors.Is(err, ErrCorrupt) || !reflect.DeepEqual(kw, []string{"a", "", "", "", "ok"}) {
		t.Fatalf("%q %v", kw, err)
	}
}

func FuzzParseKeywords(f *testing.F) {
	f.Add([]byte("0 $Forwarded\n2 Junk\n"))
	f.Add([]byte("25 z\n"))
	f.Add([]byte("-1 x\n 0 \n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		kw, _ := ParseKeywords(data)
		if len(kw) > MaxKeywords {
			t.Fatalf("%d keywords", len(kw))
		}
		kw2, err := ParseKeywords(MarshalKeywords(kw))
		if err != nil || !reflect.DeepEqual(trimEmpty(kw2), trimEmpty(kw)) {
			t.Fatalf("round trip %q -> %q (%v)", kw, kw2, err)
		}
	})
}

func trimEmpty(s []string) []string {
	for len(s) > 0 && s[len(s)-1] == "" {
		s = s[:len(s)-1]
	}
	if len(s) == 0 {
		return nil
	}
	return s
}

func TestSubscriptionsFile(t *testing.T) {
	v2 := "V\t2\n\nINBOX\nArchive\t2024\nweird\x01tname\n"
	got := ParseSubscriptions([]byte(v2), '.')
	want := []string{"INBOX", "Archive.2024", "weird\tname"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q", got)
	}
	if out := string(MarshalSubscriptions(want, '.')); out != v2 {
		t.Fatalf("%q", out)
	}
	old := "INBOX\nSent\n\nArchive.2024\nSent\n"
	if got := ParseSubscriptions([]byte(old), '.'); !reflect.DeepEqual(got, []string{"INBOX", "Sent", "Archive.2024"}) {
		t.Fatalf("%q", got)
	}
}

func FuzzParseSubscriptions(f *testing.F) {
	f.Add([]byte("V\t2\n\nINBOX\nA\tB\n"))
	f.Add([]byte("INBOX\nA.B\n"))
	f.Add([]byte("V\t2\n\n\x01\x01t\t\x01\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		names := ParseSubscriptions(data, '.')
		var clean []string
		for _, n := range names {
			if !strings.ContainsAny(n, "\n\r") && !strings.HasPrefix(n, ".") && !strings.HasSuffix(n, ".") && !strings.Contains(n, "..") {
				clean = append(clean, n)
			}
		}
		got := ParseSubscriptions(MarshalSubscriptions(clean, '.'), '.')
		if !reflect.DeepEqual(got, clean) && !(len(got) == 0 && len(clean) == 0) {
			t.Fatalf("round trip %q -> %q", clean, got)
		}
	})
}
