package sortthread

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// syntheticMailbox builds n messages that look like a busy mailing-list
// folder: threads of up to 12 messages with References chains, replies
// with "Re:" and list tags, encoded subjects now and then, and dates
// spread over two years. The seed is fixed so runs compare.
func syntheticMailbox(n int) []Message {
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"release", "build", "meeting", "lunch", "patch", "review", "bug", "crash",
		"invoice", "report", "holiday", "server", "NFS", "locking", "index", "thread"}
	start := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)
	msgs := make([]Message, 0, n)
	type thread struct {
		subject string
		ids     []string
	}
	var open []thread
	for i := 0; i < n; i++ {
		d := start.Add(time.Duration(i)*time.Minute*10 + time.Duration(rng.IntN(600))*time.Second)
		m := Message{
			SeqNum: uint32(i + 1), UID: uint32(i + 1000), Size: int64(500 + rng.IntN(100000)),
			InternalDate: d.Add(time.Duration(rng.IntN(120)) * time.Second),
			Date:         d.Format(time.RFC1123Z),
			From:         fmt.Sprintf("User %d <user%d@example.%d.org>", rng.IntN(500), rng.IntN(500), rng.IntN(9)),
			To:           fmt.Sprintf("list%d@lists.example.org", rng.IntN(20)),
			MessageID:    fmt.Sprintf("<%d.%d@example.org>", i, rng.Uint32()),
		}
		if len(open) > 0 && rng.IntN(3) > 0 {
			k := rng.IntN(len(open))
			th := &open[k]
			m.Subject = "Re: [list] " + th.subject
			m.References = joinIDs(th.ids)
			m.InReplyTo = th.ids[len(th.ids)-1]
			th.ids = append(th.ids, m.MessageID)
			if len(th.ids) >= 12 {
				open[k] = open[len(open)-1]
				open = open[:len(open)-1]
			}
		} else {
			subj := fmt.Sprintf("%s %s %d", words[rng.IntN(len(words))], words[rng.IntN(len(words))], rng.IntN(1000))
			if rng.IntN(10) == 0 {
				subj = "=?UTF-8?Q?caf=C3=A9_" + fmt.Sprint(rng.IntN(100)) + "?="
			}
			m.Subject = "[list] " + subj
			open = append(open, thread{subject: subj, ids: []string{m.MessageID}})
			if len(open) > 200 {
				open = open[1:]
			}
		}
		msgs = append(msgs, m)
	}
	return msgs
}

func joinIDs(ids []string) string {
	s := ""
	for i, id := range ids {
		if i > 0 {
			s += " "
		}
		s += id
	}
	return s
}

func benchSizes(b *testing.B, f func(b *testing.B, msgs []Message)) {
	for _, n := range []int{10_000, 100_000} {
		msgs := syntheticMailbox(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			f(b, msgs)
		})
	}
}

func BenchmarkSortSubject(b *testing.B) {
	keys := []SortKey{{Criterion: SortSubject}}
	benchSizes(b, func(b *testing.B, msgs []Message) {
		for b.Loop() {
			SortNumbers(msgs, keys, true)
		}
	})
}

func BenchmarkSortReverseDate(b *testing.B) {
	keys := []SortKey{{Criterion: SortDate, Reverse: true}}
	benchSizes(b, func(b *testing.B, msgs []Message) {
		for b.Loop() {
			SortNumbers(msgs, keys, true)
		}
	})
}

func BenchmarkThreadReferences(b *testing.B) {
	benchSizes(b, func(b *testing.B, msgs []Message) {
		for b.Loop() {
			nodes, err := Thread(msgs, AlgorithmReferences)
			if err != nil {
				b.Fatal(err)
			}
			FormatThread(nodes, true)
		}
	})
}

// TestSyntheticThread checks the benchmark's data threads sensibly: every
// message once, and far fewer threads than messages.
func TestSyntheticThread(t *testing.T) {
	msgs := syntheticMailbox(5000)
	nodes, err := Thread(msgs, AlgorithmReferences)
	if err != nil {
		t.Fatal(err)
	}
	checkEachOnce(t, msgs, nodes)
	checkFormatted(t, msgs, FormatThread(nodes, false))
	if len(nodes) > len(msgs)/2 {
		t.Errorf("%d threads for %d messages", len(nodes), len(msgs))
	}
}
