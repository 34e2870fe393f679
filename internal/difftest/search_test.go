package difftest

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// searchCriteria are sent as "UID SEARCH <criteria>" to both servers. A
// "%uids(a,b,c-d)" placeholder becomes each server's own UID set for the
// corpus messages a, b and c to d (the servers number messages
// differently).
var searchCriteria = []string{
	"ALL",
	`SUBJECT "report"`,
	`SUBJECT "Re:"`,
	`SUBJECT "nfsimap-users"`,
	`SUBJECT "fwd"`,
	`SUBJECT "re"`,
	`FROM "alice"`,
	`FROM "example.org"`,
	`TO "carol"`,
	`CC "frank"`,
	`BCC "alice"`,
	`HEADER "List-Id" ""`,
	`HEADER "Message-ID" "example.net"`,
	`HEADER "X-Note" "empty line"`,
	`HEADER "In-Reply-To" "someone"`,
	`BODY "filer"`,
	`BODY "uidlist please"`,
	`TEXT "quarterly"`,
	`TEXT "Alice"`,
	"LARGER 5000",
	"SMALLER 2000",
	"SENTBEFORE 5-Jan-2024",
	"SENTSINCE 20-Jan-2024",
	"SENTON 10-Jan-2024",
	"BEFORE 5-Jan-2024",
	"SINCE 20-Jan-2024",
	"ON 10-Jan-2024",
	"SEEN",
	"UNSEEN",
	"FLAGGED",
	"ANSWERED",
	"DELETED",
	"DRAFT",
	"NOT SEEN",
	"OR FLAGGED ANSWERED",
	"(SEEN FLAGGED)",
	`NOT FROM "alice"`,
	`OR SUBJECT "lunch" BODY "budget"`,
	`OR (SUBJECT "meeting" FROM "bob") NOT LARGER 3000`,
	"UID %uids(0,5,10-40,299)",
	"NOT UID %uids(0-149)",
	"%seqs(0-19,100,250-260)",
	"NOT %seqs(0-149)",
	"CHARSET UTF-8 SUBJECT " + Literal("Größe"),
	"CHARSET UTF-8 SUBJECT " + Literal("日本語"),
	"CHARSET UTF-8 SUBJECT " + Literal("Привет"),
	"CHARSET UTF-8 SUBJECT " + Literal("会議"),
	"CHARSET UTF-8 FROM " + Literal("Ärcher"),
	"CHARSET UTF-8 TO " + Literal("García"),
	"CHARSET UTF-8 BODY " + Literal("Café crème"),
	"CHARSET UTF-8 TEXT " + Literal("Ελληνικά"),
	"CHARSET UTF-8 BODY " + Literal("お問い合わせ"),
	"CHARSET UTF-8 SUBJECT " + Literal("€"),
}

// searchRule explains a message that only one server found for some
// criteria.
type searchRule struct {
	Name   string
	Reason string
	// Explains reports whether the rule accounts for message i being
	// found by one server only (onlyOurs: by nfsimap) under crit.
	Explains func(p *pair, crit string, i int, onlyOurs bool) bool
}

// searchKnownDifferences are SEARCH differences we keep on purpose or
// that are Dovecot's quirks.
var searchKnownDifferences = []searchRule{
	{
		Name:   "sent-date-fallback",
		Reason: `for a message without a usable Date header (missing or unparsable) nfsimap's SENTBEFORE/SENTON/SENTSINCE use its INTERNALDATE, the rule RFC 5256 gives for SORT DATE, so SEARCH and SORT agree; Dovecot takes such a message as sent at time 0 (it matches every SENTBEFORE and no SENTSINCE)`,
		Explains: func(p *pair, crit string, i int, onlyOurs bool) bool {
			k := p.msgs[i].Kind
			return strings.Contains(crit, "SENT") && (k == "no-date" || k == "bad-date")
		},
	},
	{
		Name:   "dovecot-decomposed-match",
		Reason: `Dovecot compares SUBJECT text after canonical decomposition (RFC 5051 i;unicode-casemap), so "re" matches the r, e and combining accent of "crème"; nfsimap matches case-folded text as written`,
		Explains: func(p *pair, crit string, i int, onlyOurs bool) bool {
			needle, ok := subjectNeedle(crit)
			if !ok || onlyOurs {
				return false
			}
			dec := strings.ToLower(p.subject(i, true))
			return !strings.Contains(dec, needle) && strings.Contains(stripMarks(dec), needle)
		},
	},
}

// searchOpenBugs are SEARCH differences where nfsimap is wrong; the
// comparison is skipped with "open bug: ...".
var searchOpenBugs = []searchRule{}

var subjectArg = regexp.MustCompile(`SUBJECT "([^"]*)"`)

// subjectNeedle returns the lower-cased string of a SUBJECT criterion.
func subjectNeedle(crit string) (string, bool) {
	m := subjectArg.FindStringSubmatch(crit)
	if m == nil {
		return "", false
	}
	return strings.ToLower(m[1]), true
}

// stripMarks decomposes s and drops the combining marks.
func stripMarks(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(s) {
		if !unicode.Is(unicode.Mn, r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// subject returns message i's Subject header as Dovecot's ENVELOPE gives
// it (the raw header, unfolded), decoded from RFC 2047 if decoded.
func (p *pair) subject(i int, decoded bool) string {
	p.subjectsOnce.Do(func() {
		env, err := p.fetchAll(dove, "ENVELOPE")
		if err != nil {
			p.subjectsErr = err
			return
		}
		p.subjects = make(map[int]string, len(env))
		for k, it := range env {
			if e := it["ENVELOPE"]; e.Kind == List && len(e.List) == 10 {
				p.subjects[k] = e.List[1].Str
			}
		}
	})
	s := p.subjects[i]
	if decoded {
		return decodeWords(Value{Kind: String, Str: s}).Str
	}
	return s
}

// classify explains the messages found by one server only. It returns
// the known and open-bug rules used, and whether every message was
// explained.
func (p *pair) classify(crit string, o, d []int) (known, bugs []string, ok bool) {
	usedK, usedB := map[string]bool{}, map[string]bool{}
	check := func(idx []int, onlyOurs bool) bool {
	next:
		for _, i := range idx {
			for _, r := range searchKnownDifferences {
				if r.Explains(p, crit, i, onlyOurs) {
					usedK[r.Name+": "+r.Reason] = true
					continue next
				}
			}
			for _, r := range searchOpenBugs {
				if r.Explains(p, crit, i, onlyOurs) {
					usedB[r.Name+": "+r.Reason] = true
					continue next
				}
			}
			return false
		}
		return true
	}
	ok = check(minus(o, d), true) && check(minus(d, o), false)
	for k := range usedK {
		known = append(known, k)
	}
	for b := range usedB {
		bugs = append(bugs, b)
	}
	sort.Strings(known)
	sort.Strings(bugs)
	return known, bugs, ok && p.subjectsErr == nil
}

// setVerdict reports a difference between the message sets two servers
// found: an error unless every message is explained; a skip if an open
// bug explains some.
func (p *pair) setVerdict(t *testing.T, crit string, o, d []int) {
	t.Helper()
	diff := fmt.Sprintf("nfsimap found %d, dovecot %d; only nfsimap: %s; only dovecot: %s",
		len(o), len(d), p.describe(minus(o, d)), p.describe(minus(d, o)))
	known, bugs, ok := p.classify(crit, o, d)
	if !ok {
		t.Errorf("%s", diff)
		return
	}
	for _, k := range known {
		t.Logf("known difference %s", k)
	}
	if len(bugs) > 0 {
		t.Skipf("open bug: %s (%s)", strings.Join(bugs, "; open bug: "), diff)
	}
	t.Logf("%s", diff)
}

func searchTest(t *testing.T, p *pair) {
	for _, crit := range searchCriteria {
		name := strings.ReplaceAll(crit, "\r\n", " ")
		t.Run(name, func(t *testing.T) {
			o, oerr := p.search(ours, crit)
			d, derr := p.search(dove, crit)
			if derr != nil {
				t.Fatalf("dovecot: %v", derr)
			}
			if oerr != nil {
				t.Fatalf("nfsimap: %v", oerr)
			}
			if equalInts(o, d) {
				if len(d) == 0 && crit != "DELETED" {
					t.Logf("both servers found nothing")
				}
				return
			}
			p.setVerdict(t, crit, o, d)
		})
	}
}

// search runs UID SEARCH on one server and returns the sorted message
// indexes found.
func (p *pair) search(s side, crit string) ([]int, error) {
	crit = p.expandUIDs(s, crit)
	resps, err := p.client(s).Command("UID SEARCH " + crit)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, r := range resps {
		if r.Name != "SEARCH" {
			continue
		}
		for _, v := range r.Data {
			n, err := v.Number()
			if err != nil {
				return nil, fmt.Errorf("SEARCH answer %q: %w", r.Raw, err)
			}
			i, ok := p.index(s)[uint32(n)]
			if !ok {
				return nil, fmt.Errorf("SEARCH answered unknown UID %d", n)
			}
			out = append(out, i)
		}
	}
	sort.Ints(out)
	return out, nil
}

// expandUIDs replaces "%uids(a,b-c)" with the server's UIDs of those
// corpus messages, and "%seqs(...)" with their sequence numbers.
func (p *pair) expandUIDs(s side, crit string) string {
	uids := invert(p.index(s))
	marker := "%uids("
	start := strings.Index(crit, marker)
	if start < 0 {
		marker = "%seqs("
		start = strings.Index(crit, marker)
		if start < 0 {
			return crit
		}
		// Sequence numbers are the ranks of the UIDs.
		all := make([]uint32, 0, len(uids))
		for u := range p.index(s) {
			all = append(all, u)
		}
		sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
		seq := make(map[uint32]uint32, len(all))
		for k, u := range all {
			seq[u] = uint32(k + 1)
		}
		for i, u := range uids {
			uids[i] = seq[u]
		}
	}
	end := strings.IndexByte(crit[start:], ')') + start
	var set []string
	for _, r := range strings.Split(crit[start+len(marker):end], ",") {
		lo, hi, isRange := strings.Cut(r, "-")
		a, _ := strconv.Atoi(lo)
		b := a
		if isRange {
			b, _ = strconv.Atoi(hi)
		}
		for i := a; i <= b && i < len(p.msgs); i++ {
			set = append(set, strconv.FormatUint(uint64(uids[i]), 10))
		}
	}
	return crit[:start] + strings.Join(set, ",") + crit[end+1:]
}

func minus(a, b []int) []int {
	in := map[int]bool{}
	for _, x := range b {
		in[x] = true
	}
	var out []int
	for _, x := range a {
		if !in[x] {
			out = append(out, x)
		}
	}
	return out
}

// describe names up to 5 messages.
func (p *pair) describe(idx []int) string {
	if len(idx) == 0 {
		return "none"
	}
	var parts []string
	for k, i := range idx {
		if k == 5 {
			parts = append(parts, fmt.Sprintf("... (%d in all)", len(idx)))
			break
		}
		parts = append(parts, msgLabel(i, p.msgs[i]))
	}
	return strings.Join(parts, ", ")
}
