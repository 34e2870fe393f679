package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/emersion/go-imap/v2"
)

// Violation is a broken promise of the server: lost, duplicated or confused
// mail, with the commands of the connection that led to it.
type Violation struct {
	User     string   `json:"user"`
	Conn     string   `json:"conn"`
	Mailbox  string   `json:"mailbox"`
	What     string   `json:"what"`
	Commands []string `json:"commands"`
}

// Checker collects violations and the state that spans connections
// (UIDVALIDITY per mailbox). Safe for concurrent use.
type Checker struct {
	enabled bool

	mu          sync.Mutex
	violations  []Violation
	uidValidity map[string]uint32 // user + "\x00" + mailbox
}

func newChecker(enabled bool) *Checker {
	return &Checker{enabled: enabled, uidValidity: map[string]uint32{}}
}

func (ch *Checker) report(v Violation) {
	ch.mu.Lock()
	ch.violations = append(ch.violations, v)
	ch.mu.Unlock()
}

func (ch *Checker) all() []Violation {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return append([]Violation(nil), ch.violations...)
}

// seeUIDValidity records the UIDVALIDITY a server gave for a mailbox and
// says whether it differs from the one seen before. The tool never deletes
// the mailboxes it checks, so a change means the server renumbered them.
func (ch *Checker) seeUIDValidity(user, mailbox string, v uint32) (prev uint32, changed bool) {
	if v == 0 {
		return 0, false
	}
	key := user + "\x00" + mailbox
	ch.mu.Lock()
	defer ch.mu.Unlock()
	prev, ok := ch.uidValidity[key]
	if !ok {
		ch.uidValidity[key] = v
		return 0, false
	}
	return prev, prev != v
}

func writeViolations(w io.Writer, vs []Violation) {
	for i, v := range vs {
		fmt.Fprintf(w, "VIOLATION %d: user %s conn %s mailbox %q: %s\n", i+1, v.User, v.Conn, v.Mailbox, v.What)
		for _, c := range v.Commands {
			fmt.Fprintf(w, "    %s\n", c)
		}
	}
}

// msgModel is what the tool knows of a message it put into a mailbox.
type msgModel struct {
	id    string // the X-Loadtest-ID header
	flags flagSet
}

// mboxModel is the exact expected content of a mailbox that only one client
// of the tool changes.
type mboxModel struct {
	name        string
	uidValidity uint32
	maxUID      imap.UID // highest UID ever seen here: new ones must be above
	msgs        map[imap.UID]*msgModel
	// unknown are copies whose UID the server did not say (no COPYUID);
	// the next verify matches them by id.
	unknown []*msgModel
}

func newMboxModel(name string) *mboxModel {
	return &mboxModel{name: name, msgs: map[imap.UID]*msgModel{}}
}

func (m *mboxModel) uids() []imap.UID {
	out := make([]imap.UID, 0, len(m.msgs))
	for u := range m.msgs {
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// flagSet is a set of flags compared case-insensitively, \Recent left out
// (it is the server's to set).
type flagSet map[string]struct{}

func newFlagSet(flags []imap.Flag) flagSet {
	s := flagSet{}
	for _, f := range flags {
		k := strings.ToLower(string(f))
		if k == `\recent` {
			continue
		}
		s[k] = struct{}{}
	}
	return s
}

func (s flagSet) clone() flagSet {
	c := make(flagSet, len(s))
	for k := range s {
		c[k] = struct{}{}
	}
	return c
}

func (s flagSet) equal(o flagSet) bool {
	if len(s) != len(o) {
		return false
	}
	for k := range s {
		if _, ok := o[k]; !ok {
			return false
		}
	}
	return true
}

func (s flagSet) String() string {
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return "(" + strings.Join(keys, " ") + ")"
}

// commandLog keeps the last commands of a connection for violation reports.
type commandLog struct {
	lines []string
	next  int
	full  bool
}

const commandLogSize = 24

func (l *commandLog) add(line string) {
	if l.lines == nil {
		l.lines = make([]string, commandLogSize)
	}
	if len(line) > 300 {
		line = line[:300] + "..."
	}
	l.lines[l.next] = line
	l.next = (l.next + 1) % commandLogSize
	if l.next == 0 {
		l.full = true
	}
}

func (l *commandLog) snapshot() []string {
	if l.lines == nil {
		return nil
	}
	if !l.full {
		return append([]string(nil), l.lines[:l.next]...)
	}
	return append(append([]string(nil), l.lines[l.next:]...), l.lines[:l.next]...)
}
