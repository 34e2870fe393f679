package sortthread

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func TestParseSort(t *testing.T) {
	tests := []struct {
		in   string
		want SortCommand
	}{
		{`(SUBJECT) UTF-8 ALL`, SortCommand{
			Keys: []SortKey{{Criterion: SortSubject}}, Charset: "UTF-8", Criteria: &imap.SearchCriteria{}}},
		{`(reverse date subject) us-ascii UNDELETED`, SortCommand{
			Keys:    []SortKey{{Criterion: SortDate, Reverse: true}, {Criterion: SortSubject}},
			Charset: "us-ascii", Criteria: &imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagDeleted}}}},
		{`(ARRIVAL CC DATE FROM SIZE SUBJECT TO DISPLAYFROM REVERSE DISPLAYTO) "UTF-8" ALL`, SortCommand{
			Keys: []SortKey{{Criterion: SortArrival}, {Criterion: SortCc}, {Criterion: SortDate},
				{Criterion: SortFrom}, {Criterion: SortSize}, {Criterion: SortSubject}, {Criterion: SortTo},
				{Criterion: SortDisplayFrom}, {Criterion: SortDisplayTo, Reverse: true}},
			Charset: "UTF-8", Criteria: &imap.SearchCriteria{}}},
		{`RETURN (MIN max count min) (SIZE) UTF-8 1:5`, SortCommand{
			Return: []string{"MIN", "MAX", "COUNT"}, Keys: []SortKey{{Criterion: SortSize}},
			Charset: "UTF-8", Criteria: &imap.SearchCriteria{SeqNum: []imap.SeqSet{{{Start: 1, Stop: 5}}}}}},
		{`RETURN () (SIZE) UTF-8 ALL`, SortCommand{
			Return: []string{"ALL"}, Keys: []SortKey{{Criterion: SortSize}},
			Charset: "UTF-8", Criteria: &imap.SearchCriteria{}}},
		{"(SUBJECT) {5}\r\nUTF-8 SUBJECT {5+}\r\nhe)lo", SortCommand{
			Keys: []SortKey{{Criterion: SortSubject}}, Charset: "UTF-8",
			Criteria: &imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "he)lo"}}}}},
		{`(DATE) ISO-8859-1 BODY "caf` + "\xe9" + `"`, SortCommand{
			Keys: []SortKey{{Criterion: SortDate}}, Charset: "ISO-8859-1",
			Criteria: &imap.SearchCriteria{Body: []string{"café"}}}},
	}
	for _, tt := range tests {
		got, err := ParseSort([]byte(tt.in))
		if err != nil {
			t.Errorf("ParseSort(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(*got, tt.want) {
			t.Errorf("ParseSort(%q) =\n %#v\nwant\n %#v", tt.in, *got, tt.want)
		}
	}
}

func TestParseSortErrors(t *testing.T) {
	bad := []string{
		``,
		`(SUBJECT)`,
		`(SUBJECT) UTF-8`,
		`(SUBJECT) UTF-8 `,
		`() UTF-8 ALL`,
		`(REVERSE) UTF-8 ALL`,
		`(SUBJECT REVERSE) UTF-8 ALL`,
		`(REVERSE REVERSE DATE) UTF-8 ALL`,
		`(BOGUS) UTF-8 ALL`,
		`SUBJECT UTF-8 ALL`,
		`(SUBJECT)  UTF-8 ALL`,
		`(SUBJECT) UTF-8 ALL `,
		`(SUBJECT) UTF-8 ALL)`,
		`(SUBJECT) UTF-8 (ALL`,
		`(SUBJECT) UTF-8 ()`,
		`(SUBJECT) UTF-8 BOGUS`,
		`(SUBJECT) UTF-8 $`,
		`(SUBJECT) UTF-8 0`,
		`(SUBJECT) UTF-8 01`,
		`(SUBJECT) UTF-8 1:0`,
		`(SUBJECT) UTF-8 4294967296`,
		`(SUBJECT) UTF-8 UID $`,
		`(SUBJECT) UTF-8 SUBJECT`,
		`(SUBJECT) UTF-8 SUBJECT "unterminated`,
		`(SUBJECT) UTF-8 SUBJECT "bad \a escape"`,
		"(SUBJECT) UTF-8 SUBJECT {10}\r\nshort",
		"(SUBJECT) UTF-8 SUBJECT {5}\nhello",
		"(SUBJECT) UTF-8 SUBJECT {5}",
		`(SUBJECT) UTF-8 SINCE 1-Foo-2020`,
		`(SUBJECT) UTF-8 SINCE 31-Feb-2020`,
		`(SUBJECT) UTF-8 SINCE 2020-01-01`,
		`(SUBJECT) UTF-8 LARGER x`,
		`(SUBJECT) UTF-8 LARGER 99999999999999999999`,
		`(SUBJECT) UTF-8 NOT`,
		`(SUBJECT) UTF-8 OR ALL`,
		`(SUBJECT) UTF-8 KEYWORD`,
		`(SUBJECT) UTF-8 KEYWORD \Seen`,
		`(SUBJECT) UTF-8 HEADER X-Foo`,
		`RETURN (SAVE) (SUBJECT) UTF-8 ALL`,
		`RETURN (MIN (SUBJECT) UTF-8 ALL`,
		`RETURN ( MIN) (SUBJECT) UTF-8 ALL`,
		`RETURN (SUBJECT) UTF-8 ALL`,
		`(SUBJECT) UTF-8 MODSEQ 5`,
	}
	for _, in := range bad {
		_, err := ParseSort([]byte(in))
		if !errors.Is(err, ErrSyntax) {
			t.Errorf("ParseSort(%q) = %v, want ErrSyntax", in, err)
		}
	}
	// A deeply nested program is refused, not a stack overflow.
	deep := "(SUBJECT) UTF-8 "
	for i := 0; i < 10000; i++ {
		deep += "NOT "
	}
	if _, err := ParseSort([]byte(deep + "ALL")); !errors.Is(err, ErrSyntax) {
		t.Errorf("deep NOT: %v, want ErrSyntax", err)
	}
}

func TestParseBadCharset(t *testing.T) {
	_, err := ParseSort([]byte(`(SUBJECT) X-NO-SUCH-CHARSET ALL`))
	if !errors.Is(err, ErrBadCharset) || errors.Is(err, ErrSyntax) {
		t.Errorf("unknown charset: %v, want ErrBadCharset only", err)
	}
	// A syntax error wins over the charset.
	_, err = ParseSort([]byte(`(SUBJECT) X-NO-SUCH-CHARSET BOGUS`))
	if !errors.Is(err, ErrSyntax) {
		t.Errorf("unknown charset and bad key: %v, want ErrSyntax", err)
	}
	_, err = ParseThread([]byte(`REFERENCES x-bogus ALL`))
	if !errors.Is(err, ErrBadCharset) {
		t.Errorf("THREAD unknown charset: %v, want ErrBadCharset", err)
	}
	for _, cs := range []string{"utf-8", "Utf-8", "US-ASCII", "us-ascii", "ISO-8859-1", "windows-1252", "KOI8-R", "iso-2022-jp"} {
		if _, err := ParseSort([]byte(`(SUBJECT) ` + cs + ` SUBJECT x`)); err != nil {
			t.Errorf("charset %s: %v", cs, err)
		}
	}
	c, err := ParseSearchKeys([]byte("SUBJECT \"\xf0\xd2\xc9\xd7\xc5\xd4\""), "KOI8-R")
	if err != nil || c.Header[0].Value != "Привет" {
		t.Errorf("KOI8-R decoding: %v %#v", err, c)
	}
}

func TestParseThread(t *testing.T) {
	got, err := ParseThread([]byte(`references UTF-8 SINCE 1-Feb-1994 NOT FROM "Smith"`))
	if err != nil {
		t.Fatal(err)
	}
	want := &ThreadCommand{Algorithm: "REFERENCES", Charset: "UTF-8", Criteria: &imap.SearchCriteria{
		Since: date(1994, 2, 1),
		Not:   []imap.SearchCriteria{{Header: []imap.SearchCriteriaHeaderField{{Key: "From", Value: "Smith"}}}},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}
	if _, err := ParseThread([]byte(`ORDEREDSUBJECT UTF-8 ALL`)); err != nil {
		t.Error(err)
	}
	for _, in := range []string{`REFS UTF-8 ALL`, `BOGUS UTF-8 ALL`, `(REFERENCES) UTF-8 ALL`, `REFERENCES UTF-8`, `REFERENCES`, ``} {
		if _, err := ParseThread([]byte(in)); !errors.Is(err, ErrSyntax) {
			t.Errorf("ParseThread(%q) = %v, want ErrSyntax", in, err)
		}
	}
	if _, err := ParseThread([]byte(`REFS UTF-8 ALL`)); !errors.Is(err, ErrUnknownAlgorithm) {
		t.Errorf("REFS: %v, want ErrUnknownAlgorithm", err)
	}
}

func TestParseSearchKeys(t *testing.T) {
	seq := func(start, stop uint32) imap.SeqSet { return imap.SeqSet{{Start: start, Stop: stop}} }
	tests := []struct {
		in   string
		want imap.SearchCriteria
	}{
		{`ALL`, imap.SearchCriteria{}},
		{`ANSWERED DELETED DRAFT FLAGGED SEEN RECENT`, imap.SearchCriteria{Flag: []imap.Flag{
			imap.FlagAnswered, imap.FlagDeleted, imap.FlagDraft, imap.FlagFlagged, imap.FlagSeen, "\\Recent"}}},
		{`unanswered undeleted undraft unflagged unseen old`, imap.SearchCriteria{NotFlag: []imap.Flag{
			imap.FlagAnswered, imap.FlagDeleted, imap.FlagDraft, imap.FlagFlagged, imap.FlagSeen, "\\Recent"}}},
		{`NEW`, imap.SearchCriteria{Flag: []imap.Flag{"\\Recent"}, NotFlag: []imap.Flag{imap.FlagSeen}}},
		{`KEYWORD $Junk UNKEYWORD foo`, imap.SearchCriteria{Flag: []imap.Flag{"$Junk"}, NotFlag: []imap.Flag{"foo"}}},
		{`BCC a CC b FROM c SUBJECT d TO e HEADER X-Spam "yes"`, imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{
			{Key: "Bcc", Value: "a"}, {Key: "Cc", Value: "b"}, {Key: "From", Value: "c"},
			{Key: "Subject", Value: "d"}, {Key: "To", Value: "e"}, {Key: "X-Spam", Value: "yes"}}}},
		{`HEADER "Message-ID" ""`, imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: ""}}}},
		{`BODY "a \"q\" \\ b" TEXT x]y`, imap.SearchCriteria{Body: []string{`a "q" \ b`}, Text: []string{"x]y"}}},
		{`BEFORE 1-Feb-1994 SINCE "01-jan-1990"`, imap.SearchCriteria{Before: date(1994, 2, 1), Since: date(1990, 1, 1)}},
		{`ON 5-Mar-2024`, imap.SearchCriteria{Since: date(2024, 3, 5), Before: date(2024, 3, 6)}},
		{`SENTON 31-Dec-2023 SENTSINCE 1-Dec-2023 SENTBEFORE 1-Jan-2025`, imap.SearchCriteria{
			SentSince: date(2023, 12, 31), SentBefore: date(2024, 1, 1)}},
		{`SINCE 1-Jan-2020 SINCE 1-Jan-2021 BEFORE 1-Jan-2023 BEFORE 1-Jan-2022`, imap.SearchCriteria{
			Since: date(2021, 1, 1), Before: date(2022, 1, 1)}},
		{`SMALLER 100 LARGER 10 SMALLER 200 ON 1-Jan-2020`, imap.SearchCriteria{Larger: 10, Smaller: 100,
			Since: date(2020, 1, 1), Before: date(2020, 1, 2)}},
		{`SMALLER 0`, imap.SearchCriteria{Not: []imap.SearchCriteria{{}}}},
		{`1,3:5,7:* *`, imap.SearchCriteria{SeqNum: []imap.SeqSet{
			{{Start: 1, Stop: 1}, {Start: 3, Stop: 5}, {Start: 7, Stop: 0}}, {{Start: 0, Stop: 0}}}}},
		{`5:2`, imap.SearchCriteria{SeqNum: []imap.SeqSet{seq(2, 5)}}},
		{`UID 1:10,20`, imap.SearchCriteria{UID: []imap.UIDSet{{{Start: 1, Stop: 10}, {Start: 20, Stop: 20}}}}},
		{`NOT SEEN`, imap.SearchCriteria{Not: []imap.SearchCriteria{{Flag: []imap.Flag{imap.FlagSeen}}}}},
		{`OR SEEN (FLAGGED 1:3)`, imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{
			{Flag: []imap.Flag{imap.FlagSeen}}, {Flag: []imap.Flag{imap.FlagFlagged}, SeqNum: []imap.SeqSet{seq(1, 3)}}}}}},
		{`(SEEN (DELETED)) NOT (FROM x TO y)`, imap.SearchCriteria{
			Flag: []imap.Flag{imap.FlagSeen, imap.FlagDeleted},
			Not: []imap.SearchCriteria{{Header: []imap.SearchCriteriaHeaderField{
				{Key: "From", Value: "x"}, {Key: "To", Value: "y"}}}}}},
		{"TEXT {3}\r\na b", imap.SearchCriteria{Text: []string{"a b"}}},
		{"SUBJECT {0}\r\n", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: ""}}}},
		{"SUBJECT \"caf\xc3\xa9\" BODY caf\xc3\xa9", imap.SearchCriteria{
			Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "café"}}, Body: []string{"café"}}},
	}
	for _, tt := range tests {
		got, err := ParseSearchKeys([]byte(tt.in), "UTF-8")
		if err != nil {
			t.Errorf("ParseSearchKeys(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(*got, tt.want) {
			t.Errorf("ParseSearchKeys(%q) =\n %#v\nwant\n %#v", tt.in, *got, tt.want)
		}
	}
}

var parseSeeds = []string{
	`(SUBJECT) UTF-8 ALL`,
	`RETURN (MIN MAX ALL COUNT) (REVERSE DATE SUBJECT) US-ASCII UNDELETED SINCE 1-Jan-2020`,
	"(FROM) UTF-8 OR (SUBJECT {3}\r\nabc) NOT BODY {4+}\r\nwxyz",
	`(DISPLAYFROM REVERSE DISPLAYTO) "utf-8" HEADER "X-A" "b\"c" 1:*,5 UID 3:4`,
	`(SIZE) ISO-8859-1 LARGER 100 SMALLER 5000 KEYWORD $Junk NEW OLD RECENT`,
	`(ARRIVAL) UTF-8 (((((ALL)))))`,
	`(CC) UTF-8 SENTON "5-Mar-2024" ON 1-Jan-1999`,
}

func FuzzParseSort(f *testing.F) {
	for _, s := range parseSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cmd, err := ParseSort(b)
		if err != nil {
			if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrBadCharset) {
				t.Fatalf("ParseSort(%q): error %v is neither ErrSyntax nor ErrBadCharset", b, err)
			}
			return
		}
		if len(cmd.Keys) == 0 || cmd.Criteria == nil {
			t.Fatalf("ParseSort(%q) = %#v without keys or criteria", b, cmd)
		}
	})
}

func FuzzParseThread(f *testing.F) {
	f.Add([]byte(`REFERENCES UTF-8 ALL`))
	f.Add([]byte(`ORDEREDSUBJECT US-ASCII SINCE 1-Feb-1994 NOT FROM "Smith"`))
	f.Add([]byte("REFERENCES UTF-8 SUBJECT {5}\r\nhello OR 1:3 UID 5:*"))
	f.Add([]byte(`references koi8-r TEXT x`))
	f.Fuzz(func(t *testing.T, b []byte) {
		cmd, err := ParseThread(b)
		if err != nil {
			if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrBadCharset) {
				t.Fatalf("ParseThread(%q): error %v is neither ErrSyntax nor ErrBadCharset", b, err)
			}
			return
		}
		if cmd.Algorithm != AlgorithmReferences && cmd.Algorithm != AlgorithmOrderedSubject {
			t.Fatalf("ParseThread(%q): algorithm %q", b, cmd.Algorithm)
		}
	})
}

// TestParseRFCExamples parses the commands of the examples in RFC 5256
// and RFC 5267 (arguments after the command name).
func TestParseRFCExamples(t *testing.T) {
	for _, in := range []string{
		`(SUBJECT) UTF-8 SINCE 1-Feb-1994`,
		`(SUBJECT REVERSE DATE) UTF-8 ALL`,
		`(SUBJECT) US-ASCII TEXT "not in mailbox"`,
		`RETURN (COUNT) (DATE) UTF-8 UNDELETED UNKEYWORD $Junk`,
		`RETURN (MIN MAX) (DATE) UTF-8 UNDELETED UNKEYWORD $Junk`,
		`RETURN (ALL) (DATE) UTF-8 UNDELETED UNKEYWORD $Junk`,
	} {
		if _, err := ParseSort([]byte(in)); err != nil {
			t.Errorf("SORT %s: %v", in, err)
		}
	}
	for _, in := range []string{
		`ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000`,
		`ORDEREDSUBJECT UTF-8 TEXT "gewp"`,
		`REFERENCES US-ASCII SINCE 1-Jan-2000`,
	} {
		if _, err := ParseThread([]byte(in)); err != nil {
			t.Errorf("THREAD %s: %v", in, err)
		}
	}
}

func ExampleParseSort() {
	cmd, err := ParseSort([]byte("RETURN (MIN COUNT) (REVERSE DATE SUBJECT) UTF-8 UNSEEN SUBJECT {5+}\r\nhello"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cmd.Return, cmd.Keys, cmd.Charset, cmd.Criteria.NotFlag, cmd.Criteria.Header[0].Value)
	// Output: [MIN COUNT] [REVERSE DATE SUBJECT] UTF-8 [\Seen] hello
}
