package difftest

import (
	"fmt"
	"sort"
	"strings"
	"testing"
)

// A rule explains one kind of difference between the two servers. Its
// transform rewrites one or both answers so that the aspect the rule is
// about no longer differs; it returns the values unchanged when the rule
// does not apply. A difference is explained when the answers are equal
// after the transforms.
type rule struct {
	// Name is short and unique; Checks are the comparisons it applies to.
	Name   string
	Checks []string
	// Reason says why we keep the difference (knownDifferences) or what
	// our bug is and where it probably lives (openBugs).
	Reason    string
	Transform func(f *finding, o, d Value) (Value, Value)
}

func (r *rule) appliesTo(check string) bool {
	for _, c := range r.Checks {
		if c == check {
			return true
		}
	}
	return false
}

// finding is one comparison's subject: which check on which message (or
// which search criteria), with the two answers.
type finding struct {
	Check string
	What  string // "#17 kind=junk" or the criteria
	Kind  string // the corpus kind of the message ("" for searches)
	CRLF  bool
	InNew bool // the corpus wrote the message into new/
}

// verdict collects the outcome of one comparison (one subtest).
type verdict struct {
	check       string
	compared    int
	known       map[string][]string // rule name -> what
	bugs        map[string][]string
	unexplained []string
}

func newVerdict(check string) *verdict {
	return &verdict{check: check, known: map[string][]string{}, bugs: map[string][]string{}}
}

// compare checks one pair of answers after the free-syntax normalisation
// norm (nil = none), and records the outcome.
func (v *verdict) compare(f *finding, o, d Value, norm func(Value) Value) {
	v.compared++
	if norm != nil {
		o, d = norm(o), norm(d)
	}
	if Equal(o, d) {
		return
	}
	o2, d2, known := applyRules(knownDifferences, f, o, d)
	if Equal(o2, d2) {
		for _, n := range known {
			v.known[n] = append(v.known[n], f.What)
		}
		return
	}
	o3, d3, bugs := applyRules(openBugs, f, o2, d2)
	if Equal(o3, d3) {
		for _, n := range bugs {
			v.bugs[n] = append(v.bugs[n], f.What)
		}
		return
	}
	v.unexplained = append(v.unexplained, fmt.Sprintf("%s %s:\n  nfsimap %s\n  dovecot %s%s",
		f.Check, f.What, clip(o3.String()), clip(d3.String()), firstDiff(o3.String(), d3.String())))
}

// applyRules runs the transforms of the rules for f.Check in order and
// returns the names of those that changed something.
func applyRules(rules []rule, f *finding, o, d Value) (Value, Value, []string) {
	var used []string
	for i := range rules {
		r := &rules[i]
		if !r.appliesTo(f.Check) {
			continue
		}
		o2, d2 := r.Transform(f, o, d)
		if !Equal(o2, o) || !Equal(d2, d) {
			used = append(used, r.Name)
			o, d = o2, d2
		}
	}
	return o, d, used
}

// report fails the test for unexplained differences, logs the known
// ones, and skips it (after the failures, if any) for open bugs.
func (v *verdict) report(t *testing.T) {
	t.Helper()
	for _, name := range sortedKeys(v.known) {
		t.Logf("known difference %q in %d of %d comparisons (e.g. %s): %s", name, len(v.known[name]), v.compared, v.known[name][0], ruleReason(knownDifferences, name))
	}
	for i, u := range v.unexplained {
		if i == 8 {
			t.Errorf("... and %d more unexplained differences", len(v.unexplained)-i)
			break
		}
		t.Errorf("unexplained difference: %s", u)
	}
	if len(v.bugs) > 0 {
		var msgs []string
		for _, name := range sortedKeys(v.bugs) {
			msgs = append(msgs, fmt.Sprintf("%s (%d of %d, e.g. %s): %s", name, len(v.bugs[name]), v.compared, v.bugs[name][0], ruleReason(openBugs, name)))
		}
		if t.Failed() {
			t.Logf("open bug: %s", strings.Join(msgs, "; open bug: "))
			return
		}
		t.Skipf("open bug: %s", strings.Join(msgs, "; open bug: "))
	}
	if v.compared == 0 {
		t.Errorf("%s: nothing compared", v.check)
	}
}

func ruleReason(rules []rule, name string) string {
	for _, r := range rules {
		if r.Name == name {
			return r.Reason
		}
	}
	return "?"
}

func sortedKeys(m map[string][]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func clip(s string) string {
	if len(s) > 700 {
		return s[:700] + "..."
	}
	return s
}

// firstDiff shows where two long renderings part.
func firstDiff(a, b string) string {
	if len(a) < 200 && len(b) < 200 {
		return ""
	}
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	lo := max(0, i-80)
	return fmt.Sprintf("\n  first difference at %d:\n  nfsimap ...%s\n  dovecot ...%s", i, clip(a[lo:min(len(a), i+200)]), clip(b[lo:min(len(b), i+200)]))
}
