package sortthread

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tmsg builds a test message; minute orders the sent dates.
func tmsg(seq uint32, id, refs, inReplyTo, subject string, minute int) Message {
	d := time.Date(2024, 5, 1, 12, minute, 0, 0, time.UTC)
	return Message{
		SeqNum: seq, UID: seq * 10, InternalDate: d.Add(time.Hour),
		Date: d.Format(time.RFC1123Z), MessageID: id, References: refs, InReplyTo: inReplyTo, Subject: subject,
	}
}

func threadString(t *testing.T, msgs []Message, alg string) string {
	t.Helper()
	nodes, err := Thread(msgs, alg)
	if err != nil {
		t.Fatal(err)
	}
	checkEachOnce(t, msgs, nodes)
	return string(FormatThread(nodes, false))
}

func checkEachOnce(t testing.TB, msgs []Message, nodes []*Node) {
	t.Helper()
	seen := map[uint32]int{}
	var walk func(n *Node)
	walk = func(n *Node) {
		if !n.Dummy() {
			seen[n.SeqNum]++
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	for _, n := range nodes {
		walk(n)
	}
	for _, m := range msgs {
		if seen[m.SeqNum] != 1 {
			t.Fatalf("message %d appears %d times in the thread tree", m.SeqNum, seen[m.SeqNum])
		}
	}
	if len(seen) != len(msgs) {
		t.Fatalf("thread tree has %d messages, want %d", len(seen), len(msgs))
	}
}

func TestThreadReferences(t *testing.T) {
	tests := []struct {
		name string
		msgs []Message
		want string
	}{
		{"chain and siblings", []Message{
			tmsg(1, "<1@x>", "", "", "a", 1),
			tmsg(2, "<2@x>", "<1@x>", "", "Re: a", 2),
			tmsg(3, "<3@x>", "<1@x> <2@x>", "", "Re: a", 3),
			tmsg(4, "<4@x>", "", "<1@x>", "Re: a", 4),
			tmsg(5, "<5@x>", "", "", "b", 0),
		}, "(5)(1 (2 3)(4))"},
		{"children sorted by sent date", []Message{
			tmsg(1, "<1@x>", "", "", "a", 1),
			tmsg(2, "<2@x>", "<1@x>", "", "Re: a", 9),
			tmsg(3, "<3@x>", "<1@x>", "", "Re: a", 5),
		}, "(1 (3)(2))"},
		{"dummy parent kept with two children", []Message{
			tmsg(1, "<a@x>", "<missing@x>", "", "s", 1),
			tmsg(2, "<b@x>", "<missing@x>", "", "t", 2),
		}, "((1)(2))"},
		{"dummy parent with one child promoted", []Message{
			tmsg(1, "<a@x>", "<missing@x>", "", "s", 1),
		}, "(1)"},
		{"dummy in the middle promoted", []Message{
			tmsg(1, "<a@x>", "", "", "s", 1),
			tmsg(2, "<c@x>", "<a@x> <gone@x>", "", "t", 2),
			tmsg(3, "<d@x>", "<a@x> <gone@x>", "", "u", 3),
		}, "(1 (2)(3))"},
		{"same subject, reply joins original", []Message{
			tmsg(1, "<1@x>", "", "", "hello", 1),
			tmsg(2, "<2@x>", "", "", "Re: hello", 2),
		}, "(1 2)"},
		{"same subject, reply earlier than original", []Message{
			tmsg(1, "<1@x>", "", "", "Re: hello", 1),
			tmsg(2, "<2@x>", "", "", "HELLO", 2),
		}, "(2 1)"},
		{"same subject, neither a reply: dummy", []Message{
			tmsg(1, "<1@x>", "", "", "x", 1),
			tmsg(2, "<2@x>", "", "", "x", 2),
			tmsg(3, "<3@x>", "", "", "x", 3),
		}, "((1)(2)(3))"},
		{"same subject, both replies: dummy", []Message{
			tmsg(1, "<1@x>", "", "", "Re: x", 1),
			tmsg(2, "<2@x>", "", "", "Fwd: x", 2),
		}, "((1)(2))"},
		{"subject merge into an existing dummy", []Message{
			tmsg(1, "<a@x>", "<m@x>", "", "topic", 1),
			tmsg(2, "<b@x>", "<m@x>", "", "Re: topic", 2),
			tmsg(3, "<c@x>", "", "", "Re: topic", 3),
		}, "((1)(2)(3))"},
		{"two dummies with the same subject merge", []Message{
			tmsg(1, "<a@x>", "<m@x>", "", "topic", 1),
			tmsg(2, "<b@x>", "<m@x>", "", "Re: topic", 2),
			tmsg(3, "<c@x>", "<n@x>", "", "topic", 3),
			tmsg(4, "<d@x>", "<n@x>", "", "Re: topic", 4),
		}, "((1)(2)(3)(4))"},
		{"empty subjects are not merged", []Message{
			tmsg(1, "<1@x>", "", "", "", 1),
			tmsg(2, "<2@x>", "", "", "Re:", 2),
		}, "(1)(2)"},
		{"duplicate message-id", []Message{
			tmsg(1, "<d@x>", "", "", "a", 1),
			tmsg(2, "<d@x>", "", "", "b", 2),
			tmsg(3, "<e@x>", "<d@x>", "", "c", 3),
		}, "(1 3)(2)"},
		{"missing and invalid message-ids", []Message{
			tmsg(1, "", "", "", "a", 1),
			tmsg(2, "no-brackets@x", "", "", "b", 2),
			tmsg(3, "<noat>", "", "", "c", 3),
		}, "(1)(2)(3)"},
		{"reference loop broken", []Message{
			tmsg(1, "<a@x>", "<b@x>", "", "one", 1),
			tmsg(2, "<b@x>", "<a@x>", "", "two", 2),
		}, "(2 1)"},
		{"self reference", []Message{
			tmsg(1, "<a@x>", "<a@x>", "<a@x>", "one", 1),
		}, "(1)"},
		{"references win over in-reply-to", []Message{
			tmsg(1, "<a@x>", "", "", "one", 1),
			tmsg(2, "<b@x>", "", "", "two", 2),
			tmsg(3, "<c@x>", "<b@x>", "<a@x>", "three", 3),
		}, "(1)(2 3)"},
		{"only the first in-reply-to counts", []Message{
			tmsg(1, "<a@x>", "", "", "one", 1),
			tmsg(2, "<b@x>", "", "", "two", 2),
			tmsg(3, "<c@x>", "", "<b@x> <a@x>", "three", 3),
		}, "(1)(2 3)"},
		{"invalid references fall back to in-reply-to", []Message{
			tmsg(1, "<a@x>", "", "", "one", 1),
			tmsg(2, "<c@x>", "<junk> garbage", "<a@x>", "two", 2),
		}, "(1 2)"},
		{"truncated references: the message's own last reference wins", []Message{
			tmsg(1, "<a@x>", "", "", "one", 1),
			tmsg(2, "<b@x>", "<a@x>", "", "two", 2),
			tmsg(3, "<c@x>", "<a@x> <b@x>", "", "three", 3),
			tmsg(4, "<d@x>", "<c@x> <b@x> <q@x>", "", "four", 4),
		}, "(1 2 (3)(4))"},
		{"message without references loses a guessed parent", []Message{
			tmsg(1, "<b@x>", "<z@x> <a@x>", "", "one", 2),
			tmsg(2, "<a@x>", "", "", "two", 1),
		}, "(2 1)"},
		{"folded and spaced ids", []Message{
			tmsg(1, "< a@x >", "", "", "one", 1),
			tmsg(2, "<b@x>", "<a@x\r\n >", "", "two", 2),
		}, "(1 2)"},
		{"a @-less id ignored", []Message{
			tmsg(1, "<a@x>", "", "", "one", 1),
			tmsg(2, "<b@x>", "<a@x> <junk>", "", "two", 2),
		}, "(1 2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := threadString(t, tt.msgs, "REFERENCES"); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			// The input order does not matter.
			rev := make([]Message, len(tt.msgs))
			for i, m := range tt.msgs {
				rev[len(rev)-1-i] = m
			}
			if got := threadString(t, rev, "references"); got != tt.want {
				t.Errorf("reversed input: got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestThreadOrderedSubject(t *testing.T) {
	msgs := []Message{
		tmsg(1, "", "", "", "a", 3),
		tmsg(2, "", "", "", "Re: A", 1),
		tmsg(3, "", "", "", "b", 2),
		tmsg(4, "", "", "", "[fwd: a]", 4),
		tmsg(5, "", "", "", "c", 5),
		tmsg(6, "", "", "", "Re: c", 6),
	}
	if got := threadString(t, msgs, "ORDEREDSUBJECT"); got != "(2 (1)(4))(3)(5 6)" {
		t.Errorf("got %s", got)
	}
	if _, err := Thread(msgs, "REFS"); err == nil {
		t.Error("REFS accepted")
	}
}

func TestFormatThread(t *testing.T) {
	n := func(seq uint32, kids ...*Node) *Node { return &Node{SeqNum: seq, UID: seq + 100, Children: kids} }
	// The example of RFC 5256 section 4.
	forest := []*Node{n(2), n(3, n(6, n(4, n(23)), n(44, n(7, n(96)))))}
	if got := string(FormatThread(forest, false)); got != "(2)(3 6 (4 23)(44 7 96))" {
		t.Errorf("got %s", got)
	}
	if got := string(FormatThread(forest, true)); got != "(102)(103 106 (104 123)(144 107 196))" {
		t.Errorf("uid: got %s", got)
	}
	dummy := []*Node{n(0, n(1), n(2, n(3))), n(0, n(4)), n(0), n(5, n(0, n(6), n(7)), n(0))}
	if got := string(FormatThread(dummy, false)); got != "((1)(2 3))(4)(5 (6)(7))" {
		t.Errorf("dummies: got %s", got)
	}
	if got := string(FormatThreadResponse(nil, false)); got != "* THREAD\r\n" {
		t.Errorf("empty: got %q", got)
	}
	if got := string(FormatThreadResponse(forest[:1], false)); got != "* THREAD (2)\r\n" {
		t.Errorf("response: got %q", got)
	}
}

// fuzzMessages turns fuzz input into messages: one per line, fields
// separated by "|": Message-ID, References, In-Reply-To, Subject, Date.
func fuzzMessages(data string) []Message {
	var msgs []Message
	for i, line := range strings.Split(data, "\n") {
		if i >= 200 {
			break
		}
		f := strings.SplitN(line, "|", 5)
		for len(f) < 5 {
			f = append(f, "")
		}
		msgs = append(msgs, Message{
			SeqNum: uint32(i + 1), UID: uint32(2*i + 7), InternalDate: time.Unix(int64(len(line))*1000, 0),
			MessageID: f[0], References: f[1], InReplyTo: f[2], Subject: f[3], Date: f[4],
		})
	}
	return msgs
}

// checkFormatted checks that the formatted thread list names every message
// exactly once and that its parentheses balance without empty lists.
func checkFormatted(t *testing.T, msgs []Message, out []byte) {
	depth := 0
	var nums []byte
	count := map[uint32]int{}
	flush := func() {
		if len(nums) > 0 {
			v, err := strconv.ParseUint(string(nums), 10, 32)
			if err != nil {
				t.Fatalf("bad number in %q", out)
			}
			count[uint32(v)]++
			nums = nums[:0]
		}
	}
	for i, c := range out {
		switch {
		case c >= '0' && c <= '9':
			nums = append(nums, c)
		case c == '(':
			flush()
			depth++
		case c == ')':
			flush()
			if i > 0 && out[i-1] == '(' {
				t.Fatalf("empty list in %q", out)
			}
			depth--
			if depth < 0 {
				t.Fatalf("unbalanced %q", out)
			}
		case c == ' ':
			flush()
		default:
			t.Fatalf("unexpected byte %q in %q", c, out)
		}
	}
	if depth != 0 {
		t.Fatalf("unbalanced %q", out)
	}
	for _, m := range msgs {
		if count[m.SeqNum] != 1 {
			t.Fatalf("message %d appears %d times in %q", m.SeqNum, count[m.SeqNum], out)
		}
	}
	if len(count) != len(msgs) {
		t.Fatalf("%d numbers in %q, want %d", len(count), out, len(msgs))
	}
	if bytes.Contains(out, []byte("  ")) {
		t.Fatalf("double space in %q", out)
	}
}

func FuzzThread(f *testing.F) {
	f.Add("<a@x>|||hello|Mon, 1 Jan 2024 10:00:00 +0000\n<b@x>|<a@x>||Re: hello|\n<c@x>|<a@x> <b@x>||Re: hello|")
	f.Add("<a@x>|<b@x>||x|\n<b@x>|<a@x>||x|\n<a@x>|||x|")
	f.Add("|<m@x>||t|\n|<m@x>||Re: t|\n|<n@x>||t|\n|<n@x>||[fwd: t]|")
	f.Add("<a@x>|<a@x>|<a@x>||\n\n\n")
	f.Add("<1@x>||||\n<2@x>|<gone@x> <1@x>|||\n<3@x>|<1@x> <gone@x>|||")
	f.Fuzz(func(t *testing.T, data string) {
		msgs := fuzzMessages(data)
		for _, alg := range []string{AlgorithmReferences, AlgorithmOrderedSubject} {
			nodes, err := Thread(msgs, alg)
			if err != nil {
				t.Fatal(err)
			}
			checkEachOnce(t, msgs, nodes)
			out := FormatThread(nodes, false)
			checkFormatted(t, msgs, out)
			again, _ := Thread(msgs, alg)
			if !bytes.Equal(FormatThread(again, false), out) {
				t.Fatalf("%s is not deterministic", alg)
			}
		}
	})
}

func ExampleFormatThread() {
	msgs := []Message{
		{SeqNum: 1, MessageID: "<1@example>", Subject: "lunch?", Date: "1 Jan 2024 12:00:00 +0000"},
		{SeqNum: 2, MessageID: "<2@example>", References: "<1@example>", Subject: "Re: lunch?", Date: "1 Jan 2024 12:05:00 +0000"},
		{SeqNum: 3, MessageID: "<3@example>", Subject: "minutes", Date: "1 Jan 2024 11:00:00 +0000"},
	}
	nodes, _ := Thread(msgs, "REFERENCES")
	fmt.Printf("%s", FormatThreadResponse(nodes, false))
	// Output: * THREAD (3)(1 2)
}

// TestThreadLongChain threads a 50,000-message reply chain: it must stay
// fast (no quadratic loop check) and keep every message.
func TestThreadLongChain(t *testing.T) {
	const n = 50_000
	msgs := make([]Message, n)
	for i := range msgs {
		msgs[i] = Message{SeqNum: uint32(i + 1), UID: uint32(i + 1), MessageID: fmt.Sprintf("<%d@chain>", i),
			Subject: "Re: chain", InternalDate: time.Unix(int64(i), 0)}
		if i > 0 {
			msgs[i].InReplyTo = fmt.Sprintf("<%d@chain>", i-1)
		}
	}
	start := time.Now()
	nodes, err := Thread(msgs, AlgorithmReferences)
	if err != nil {
		t.Fatal(err)
	}
	checkEachOnce(t, msgs, nodes)
	if len(nodes) != 1 {
		t.Fatalf("%d threads, want 1", len(nodes))
	}
	out := FormatThread(nodes, false)
	if len(out) < n || out[0] != '(' || bytes.Count(out, []byte("(")) != 1 {
		t.Fatalf("chain not written flat: %.60q...", out)
	}
	t.Logf("threaded a %d-message chain in %v", n, time.Since(start))
}

// TestConcurrentUse runs Sort and Thread on one shared slice from several
// goroutines; with -race it proves they only read their input.
func TestConcurrentUse(t *testing.T) {
	msgs := syntheticMailbox(2000)
	want := string(FormatThread(mustThread(t, msgs), false))
	wantSort := SortNumbers(msgs, allKeys, false)
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			if got := string(FormatThread(mustThread(t, msgs), false)); got != want {
				errs <- fmt.Errorf("thread result differs")
				return
			}
			if got := SortNumbers(msgs, allKeys, false); fmt.Sprint(got) != fmt.Sprint(wantSort) {
				errs <- fmt.Errorf("sort result differs")
				return
			}
			errs <- nil
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func mustThread(t *testing.T, msgs []Message) []*Node {
	nodes, err := Thread(msgs, AlgorithmReferences)
	if err != nil {
		t.Error(err)
	}
	return nodes
}
