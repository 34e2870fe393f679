package sortthread

import (
	"fmt"
	"slices"
	"testing"
)

// TestKeysGiveSameOrder sorts and threads a synthetic mailbox with and
// without a key cache (the cached runs twice: filling it, then from it),
// and once with a cache so small that it starts over all the time: every
// answer is the same.
func TestKeysGiveSameOrder(t *testing.T) {
	msgs := syntheticMailbox(2000)
	// Encoded, odd and empty values too.
	msgs[3].Subject = "=?utf-8?q?Re=3A_caf=C3=A9?="
	msgs[4].Subject = ""
	msgs[5].From = "\"Zoë\" <zoe@example.org>"
	msgs[6].To = "undisclosed-recipients:;"
	crits := []SortCriterion{SortArrival, SortCc, SortDate, SortFrom, SortSize, SortSubject, SortTo, SortDisplayFrom, SortDisplayTo}
	caches := map[string]*Keys{"fresh": NewKeys(), "tiny": {m: map[keyID]keyEntry{}, max: 3}}
	for _, c := range crits {
		for _, rev := range []bool{false, true} {
			keys := []SortKey{{Criterion: c, Reverse: rev}, {Criterion: SortArrival}}
			want := SortNumbers(msgs, keys, true)
			for name, cache := range caches {
				for round := range 2 {
					if got := SortNumbersKeys(msgs, keys, true, cache); !slices.Equal(got, want) {
						t.Fatalf("%v reverse=%v, %s cache, round %d: order differs", c, rev, name, round)
					}
				}
			}
		}
	}
	for _, alg := range []string{AlgorithmOrderedSubject, AlgorithmReferences} {
		want, err := Thread(msgs, alg)
		if err != nil {
			t.Fatal(err)
		}
		for name, cache := range caches {
			for round := range 2 {
				got, err := ThreadKeys(msgs, alg, cache)
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(flatten(got)) != fmt.Sprint(flatten(want)) {
					t.Fatalf("THREAD %s, %s cache, round %d: threads differ", alg, name, round)
				}
			}
		}
	}
	if n := len(caches["tiny"].m); n > 3 {
		t.Errorf("the 3-entry cache holds %d entries", n)
	}
}

// flatten writes a thread forest as nested UID lists.
func flatten(nodes []*Node) []any {
	out := make([]any, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, []any{n.UID, flatten(n.Children)})
	}
	return out
}
