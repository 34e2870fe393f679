package session

import (
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/nfsimap/nfsimap/node/sortthread"
)

func TestSortAndThread(t *testing.T) {
	env := newTestEnv(t, nil)
	c := env.dial(nil)
	msgs := []string{
		"Subject: banana\r\nFrom: Zed <z@example.org>\r\nDate: Mon, 02 Feb 2026 10:00:00 +0000\r\nMessage-ID: <a@x>\r\n\r\nfirst\r\n",
		"Subject: Re: banana\r\nFrom: amy@example.org\r\nDate: Sun, 01 Feb 2026 10:00:00 +0000\r\nMessage-ID: <b@x>\r\nIn-Reply-To: <a@x>\r\nReferences: <a@x>\r\n\r\nsecond, longer body here\r\n",
		"Subject: apple\r\nFrom: bob@example.org\r\nDate: Tue, 03 Feb 2026 10:00:00 +0000\r\nMessage-ID: <c@x>\r\n\r\nthird\r\n",
	}
	for i, m := range msgs {
		appendMsg(t, c, "INBOX", m, &imap.AppendOptions{Time: time.Date(2026, 2, 10+i, 0, 0, 0, 0, time.UTC)})
	}
	s, err := env.f.NewSession(t.Context(), env.user, "sort-test", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Sort(false, &sortthread.SortCommand{Keys: []sortthread.SortKey{{Criterion: sortthread.SortSubject}}, Criteria: &imap.SearchCriteria{}}); err == nil {
		t.Error("SORT without a selected mailbox succeeded")
	}
	if _, err := s.Select("INBOX", &imap.SelectOptions{}); err != nil {
		t.Fatal(err)
	}
	sortBy := func(uid bool, crit *imap.SearchCriteria, keys ...sortthread.SortKey) []uint32 {
		t.Helper()
		if crit == nil {
			crit = &imap.SearchCriteria{}
		}
		got, err := s.Sort(uid, &sortthread.SortCommand{Keys: keys, Criteria: crit})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	check := func(name string, got []uint32, want ...uint32) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%s: got %v, want %v", name, got, want)
			return
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: got %v, want %v", name, got, want)
				return
			}
		}
	}
	check("SUBJECT", sortBy(false, nil, sortthread.SortKey{Criterion: sortthread.SortSubject}), 3, 1, 2)
	check("DATE", sortBy(false, nil, sortthread.SortKey{Criterion: sortthread.SortDate}), 2, 1, 3)
	check("REVERSE ARRIVAL", sortBy(true, nil, sortthread.SortKey{Criterion: sortthread.SortArrival, Reverse: true}), 3, 2, 1)
	check("SIZE", sortBy(false, nil, sortthread.SortKey{Criterion: sortthread.SortSize}), 3, 1, 2)
	check("FROM with criteria", sortBy(false, &imap.SearchCriteria{Body: []string{"i"}}, sortthread.SortKey{Criterion: sortthread.SortFrom}), 3, 1)

	nodes, err := s.Thread(false, &sortthread.ThreadCommand{Algorithm: sortthread.AlgorithmReferences, Criteria: &imap.SearchCriteria{}})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(sortthread.FormatThread(nodes, false)); got != "(1 2)(3)" {
		t.Errorf("THREAD REFERENCES = %q", got)
	}
}
