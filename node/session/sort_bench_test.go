package session

import (
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// BenchmarkSortWarm times SORT (SUBJECT) and THREAD-like repeated sorts
// over a real client on loopback for a 10,000-message mailbox on a plain
// directory whose local index is warm: what a webmail pays on every page
// view of a folder sorted by subject.
func BenchmarkSortWarm(b *testing.B) {
	const n = 10000
	env := benchBoxEnv(b, n)
	c, _ := serveFront(b, env) // SORT is the command layer's
	warmBox(b, c)
	sort := func(b *testing.B, key imapclient.SortKey) {
		for b.Loop() {
			nums, err := c.Sort(&imapclient.SortOptions{
				SearchCriteria: &imap.SearchCriteria{},
				SortCriteria:   []imapclient.SortCriterion{{Key: key}},
			}).Wait()
			if err != nil {
				b.Fatal(err)
			}
			if len(nums) != n {
				b.Fatalf("%d sorted, want %d", len(nums), n)
			}
		}
	}
	b.Run("SUBJECT", func(b *testing.B) { sort(b, imapclient.SortKeySubject) })
	b.Run("FROM", func(b *testing.B) { sort(b, imapclient.SortKeyFrom) })
	b.Run("ARRIVAL", func(b *testing.B) { sort(b, imapclient.SortKeyArrival) })
}
