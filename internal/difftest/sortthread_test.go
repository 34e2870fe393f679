package difftest

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/nfsimap/nfsimap/internal/corpus"
)

// sortCriteria are sent as "UID SORT (<keys>) UTF-8 <search>".
var sortCriteria = []struct{ keys, search string }{
	{"SUBJECT", "ALL"},
	{"REVERSE DATE", "ALL"},
	{"DATE", "ALL"},
	{"FROM", "ALL"},
	{"TO", "ALL"},
	{"CC", "ALL"},
	{"SIZE", "ALL"},
	{"ARRIVAL", "ALL"},
	{"REVERSE ARRIVAL", "ALL"},
	{"DISPLAYFROM", "ALL"},
	{"DISPLAYTO", "ALL"},
	{"SUBJECT DATE", "ALL"},
	{"REVERSE SUBJECT REVERSE DATE", "ALL"},
	{"FROM REVERSE SIZE", "ALL"},
	{"CC SUBJECT ARRIVAL", "ALL"},
	{"DATE", `SUBJECT "re"`},
	{"SUBJECT", "UNSEEN"},
}

// threadAlgorithms are sent as "UID THREAD <algorithm> UTF-8 ALL".
var threadAlgorithms = []string{"REFERENCES", "ORDEREDSUBJECT"}

// sortKnown and sortOpenBugs explain SORT and THREAD differences, keyed
// by the subtest name ("SORT (SUBJECT) ALL", "THREAD REFERENCES"). None
// are known yet; an entry's text is the reason.
var (
	sortKnown    = map[string]string{}
	sortOpenBugs = map[string]string{}
)

// TestSortThreadDifferential compares SORT orders and THREAD trees on a
// corpus of 2000 messages (400 with -short): encoded subjects in several charsets, every
// reply and forward prefix variant the corpus writes, missing and broken
// Date headers, In-Reply-To with comments, lost parents and reference
// loops.
func TestSortThreadDifferential(t *testing.T) {
	t.Parallel()
	n := 2000
	if testing.Short() {
		n = 400
	}
	p := startPair(t, corpus.Options{Seed: 11, Messages: n, MaxAttachment: 2048}, dropUWUIDs)
	if !p.sameOrder {
		t.Fatalf("the servers number the messages differently: SORT ties (ordered by sequence number) would differ")
	}
	for _, sc := range sortCriteria {
		name := fmt.Sprintf("SORT (%s) %s", sc.keys, sc.search)
		t.Run(name, func(t *testing.T) {
			cmd := fmt.Sprintf("UID SORT (%s) UTF-8 %s", sc.keys, sc.search)
			o, oerr := p.sortOrder(ours, cmd)
			d, derr := p.sortOrder(dove, cmd)
			if derr != nil {
				t.Fatalf("dovecot: %v", derr)
			}
			if oerr != nil {
				sortVerdict(t, name, fmt.Sprintf("nfsimap: %v", oerr))
				return
			}
			if equalInts(o, d) {
				return
			}
			if len(o) != len(d) || !equalInts(sortedCopy(o), sortedCopy(d)) {
				// The criteria found different messages: a SEARCH
				// difference, explained (or not) by the SEARCH rules.
				// The messages both found must still be in the same order.
				oc, dc := keepOnly(o, d), keepOnly(d, o)
				if !equalInts(oc, dc) {
					sortVerdict(t, name, "order of the messages both servers found: "+p.describeOrder(oc, dc))
				}
				p.setVerdict(t, sc.search, sortedCopy(o), sortedCopy(d))
				return
			}
			sortVerdict(t, name, p.describeOrder(o, d))
		})
	}
	for _, alg := range threadAlgorithms {
		name := "THREAD " + alg
		t.Run(name, func(t *testing.T) {
			cmd := "UID THREAD " + alg + " UTF-8 ALL"
			o, oerr := p.threads(ours, cmd)
			d, derr := p.threads(dove, cmd)
			if derr != nil {
				t.Fatalf("dovecot: %v", derr)
			}
			if oerr != nil {
				sortVerdict(t, name, fmt.Sprintf("nfsimap: %v", oerr))
				return
			}
			if len(o) == len(d) {
				same := true
				for i := range o {
					if o[i] != d[i] {
						same = false
						break
					}
				}
				if same {
					t.Logf("%d threads", len(o))
					return
				}
			}
			sortVerdict(t, name, p.describeThreads(o, d))
		})
	}
}

func sortVerdict(t *testing.T, name, diff string) {
	t.Helper()
	if reason, ok := sortKnown[name]; ok {
		t.Logf("known difference: %s: %s", reason, diff)
		return
	}
	if reason, ok := sortOpenBugs[name]; ok {
		t.Skipf("open bug: %s: %s", reason, diff)
	}
	t.Errorf("%s", diff)
}

// keepOnly returns the elements of a that are in b, in a's order.
func keepOnly(a, b []int) []int {
	in := map[int]bool{}
	for _, x := range b {
		in[x] = true
	}
	var out []int
	for _, x := range a {
		if in[x] {
			out = append(out, x)
		}
	}
	return out
}

func sortedCopy(a []int) []int {
	b := append([]int(nil), a...)
	sort.Ints(b)
	return b
}

// uwField matches UW-IMAP's UID field in a maildir name.
var uwField = regexp.MustCompile(`,U=?[0-9]+`)

// dropUWUIDs removes UW-IMAP's ",U<n>" field from the corpus file names.
// nfsimap keeps those UIDs on first sight (on purpose), Dovecot numbers
// by delivery time; SORT breaks ties by sequence number, so for SORT and
// THREAD both servers must number the messages alike.
func dropUWUIDs(t *testing.T, man *corpus.Manifest) {
	t.Helper()
	for i := range man.Messages {
		m := &man.Messages[i]
		name := uwField.ReplaceAllString(m.Name, "")
		if name == m.Name {
			continue
		}
		path := filepath.Join(filepath.Dir(m.Path), name)
		if err := os.Rename(filepath.Join(man.Dir, m.Path), filepath.Join(man.Dir, path)); err != nil {
			t.Fatal(err)
		}
		m.Name, m.Path = name, path
	}
}

// sortOrder runs a UID SORT and returns the message indexes in order.
func (p *pair) sortOrder(s side, cmd string) ([]int, error) {
	resps, err := p.client(s).Command(cmd)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, r := range resps {
		if r.Name != "SORT" {
			continue
		}
		for _, v := range r.Data {
			n, err := v.Number()
			if err != nil {
				return nil, fmt.Errorf("SORT answer: %w", err)
			}
			i, ok := p.index(s)[uint32(n)]
			if !ok {
				return nil, fmt.Errorf("SORT answered unknown UID %d", n)
			}
			out = append(out, i)
		}
	}
	return out, nil
}

// threads runs a UID THREAD and returns each top-level thread written with
// message indexes ("3 (5 7)(9)" for the thread "(3 (5 7)(9))").
func (p *pair) threads(s side, cmd string) ([]string, error) {
	resps, err := p.client(s).Command(cmd)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range resps {
		if r.Name != "THREAD" {
			continue
		}
		for _, v := range r.Data {
			var b strings.Builder
			if err := p.writeThread(&b, s, v); err != nil {
				return nil, err
			}
			out = append(out, b.String())
		}
	}
	return out, nil
}

func (p *pair) writeThread(b *strings.Builder, s side, v Value) error {
	switch v.Kind {
	case Atom:
		n, err := v.Number()
		if err != nil {
			return err
		}
		i, ok := p.index(s)[uint32(n)]
		if !ok {
			return fmt.Errorf("THREAD answered unknown UID %d", n)
		}
		b.WriteString("#" + strconv.Itoa(i))
	case List:
		b.WriteByte('(')
		for k, e := range v.List {
			if k > 0 && !(e.Kind == List && v.List[k-1].Kind == List) {
				b.WriteByte(' ')
			}
			if err := p.writeThread(b, s, e); err != nil {
				return err
			}
		}
		b.WriteByte(')')
	default:
		return fmt.Errorf("unexpected %s in THREAD answer", v)
	}
	return nil
}

// describeOrder shows where two SORT answers part.
func (p *pair) describeOrder(o, d []int) string {
	if len(o) != len(d) {
		return fmt.Sprintf("nfsimap sorted %d messages, dovecot %d; only nfsimap: %s; only dovecot: %s",
			len(o), len(d), p.describe(minus(o, d)), p.describe(minus(d, o)))
	}
	first, n := -1, 0
	for i := range o {
		if o[i] != d[i] {
			n++
			if first < 0 {
				first = i
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d positions differ; first at %d:", n, len(o), first)
	for i := first; i < len(o) && i < first+4; i++ {
		fmt.Fprintf(&b, "\n  [%d] nfsimap %s\n       dovecot %s", i, p.sortLabel(o[i]), p.sortLabel(d[i]))
	}
	return b.String()
}

// describeThreads shows the first threads that differ.
func (p *pair) describeThreads(o, d []string) string {
	om, dm := map[string]bool{}, map[string]bool{}
	for _, x := range o {
		om[x] = true
	}
	for _, x := range d {
		dm[x] = true
	}
	var onlyO, onlyD []string
	for _, x := range o {
		if !dm[x] {
			onlyO = append(onlyO, x)
		}
	}
	for _, x := range d {
		if !om[x] {
			onlyD = append(onlyD, x)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "nfsimap %d threads, dovecot %d; %d threads only in nfsimap, %d only in dovecot", len(o), len(d), len(onlyO), len(onlyD))
	if len(onlyO) == 0 && len(onlyD) == 0 {
		b.WriteString(" (same threads, different order)")
		for i := range o {
			if o[i] != d[i] {
				fmt.Fprintf(&b, "\n  first at %d: nfsimap %s / dovecot %s", i, clip(o[i]), clip(d[i]))
				break
			}
		}
	}
	for i := 0; i < 3 && i < len(onlyO); i++ {
		fmt.Fprintf(&b, "\n  only nfsimap: %s%s", clip(onlyO[i]), p.threadMembers(onlyO[i]))
	}
	for i := 0; i < 3 && i < len(onlyD); i++ {
		fmt.Fprintf(&b, "\n  only dovecot: %s%s", clip(onlyD[i]), p.threadMembers(onlyD[i]))
	}
	return b.String()
}

var threadNum = regexp.MustCompile(`#([0-9]+)`)

// threadMembers lists the messages of a thread with their threading
// headers.
func (p *pair) threadMembers(thread string) string {
	var b strings.Builder
	for k, m := range threadNum.FindAllStringSubmatch(thread, -1) {
		if k == 6 {
			b.WriteString("\n      ...")
			break
		}
		i, _ := strconv.Atoi(m[1])
		msg := p.msgs[i]
		fmt.Fprintf(&b, "\n      #%d kind=%s id=%s in-reply-to=%q references=%q", i, msg.Kind, msg.MessageID, msg.InReplyTo, msg.References)
	}
	return b.String()
}

func (p *pair) sortLabel(i int) string {
	return msgLabel(i, p.msgs[i])
}
