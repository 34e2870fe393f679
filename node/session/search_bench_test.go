package session

import (
	"testing"

	"github.com/emersion/go-imap/v2"
)

// BenchmarkSearchWarm times UID SEARCH over a real client on loopback for
// a 10,000-message mailbox on a plain directory whose local index is warm
// (every message parsed once before the timer starts): SUBJECT, which the
// index answers, and UNSEEN BODY, which reads the unseen third of the
// messages.
func BenchmarkSearchWarm(b *testing.B) {
	const n = 10000
	env := benchBoxEnv(b, n)
	c := env.dial(nil)
	warmBox(b, c)
	search := func(b *testing.B, crit *imap.SearchCriteria, want uint32) {
		for b.Loop() {
			d, err := c.UIDSearch(crit, &imap.SearchOptions{ReturnCount: true}).Wait()
			if err != nil {
				b.Fatal(err)
			}
			if d.Count != want {
				b.Fatalf("%d found, want %d", d.Count, want)
			}
		}
	}
	b.Run("SUBJECT", func(b *testing.B) {
		search(b, &imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "apples"}}}, (n+2)/3)
	})
	b.Run("UNSEEN_BODY", func(b *testing.B) {
		search(b, &imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}, Body: []string{"message 3."}}, 1)
	})
}
