package torture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/nfsimap/nfsimap/node/maildir"
)

// checkInput is what the checker needs to know about a finished run.
type checkInput struct {
	Maildir     string            // INBOX maildir on the backing directory (no mount)
	Mailboxes   []string          // IMAP names
	UIDValidity map[string]uint32 // per mailbox, as set up before the run
	Journals    []string          // journal files
	StaleAge    time.Duration     // dot-lock stale age (a killed writer may have left a lock)
}

// Report is the checker's result.
type Report struct {
	Problems []string       // empty when the spool is consistent with the journals
	Done     map[string]int // completed operations per Op
	Pending  map[string]int // operations begun and not completed (failed or killed)
	Messages int            // messages on the spool at the end
}

func (r *Report) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// String summarises the report (problems first, at most 50).
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d messages at the end; done %v; pending %v; %d problems", r.Messages, r.Done, r.Pending, len(r.Problems))
	for i, p := range r.Problems {
		if i == 50 {
			fmt.Fprintf(&b, "\n  ... %d more", len(r.Problems)-50)
			break
		}
		b.WriteString("\n  ")
		b.WriteString(p)
	}
	return b.String()
}

type uidKey struct {
	mbox string
	uid  uint32
}

type idKey struct {
	mbox, id string
}

// Instance states.
const (
	stLive = iota
	stExpunged
	stExpungePending
)

// expected is a message copy the journals say was made.
type expected struct {
	id     string
	flags  []string // acceptable flag states; "?" accepts any
	state  int
	source string // journal and sequence number, for messages
}

// model is what the journals say the spool must hold.
type model struct {
	insts         map[uidKey]*expected
	pendingCreate map[idKey]int
	mtaDone       map[idKey]int
	mtaAdopted    map[idKey]int   // MTA messages a writer took over (counted as its instances)
	adoptions     []string        // "<source> <ID>" of every adoption
	known         map[string]bool // every message ID any journal mentions
	mta           map[string]bool // IDs of MTA deliveries
}

// check compares the spool with the journals.
func check(ctx context.Context, in checkInput) (*Report, error) {
	rep := &Report{Done: map[string]int{}, Pending: map[string]int{}}
	md := &model{
		insts:         map[uidKey]*expected{},
		pendingCreate: map[idKey]int{},
		mtaDone:       map[idKey]int{},
		mtaAdopted:    map[idKey]int{},
		known:         map[string]bool{},
		mta:           map[string]bool{},
	}
	for _, path := range in.Journals {
		recs, err := ReadJournalFile(path)
		if err != nil {
			return nil, err
		}
		md.replay(rep, filepath.Base(path), recs, in.UIDValidity)
	}

	// The raw spool first: every uidlist parses and keeps its UIDVALIDITY,
	// no unique part is in new/ and cur/ at once.
	for _, mbox := range in.Mailboxes {
		checkRaw(rep, maildirPath(in.Maildir, mbox), mbox, in.UIDValidity[mbox])
	}

	// Then the spool as a fresh reader sees it after a Sync.
	opt := storeOptions("checker", in.StaleAge, slog.New(slog.NewTextHandler(io.Discard, nil)))
	store, err := maildir.New(maildir.Paths{Inbox: in.Maildir, Root: in.Maildir}, opt)
	if err != nil {
		return nil, err
	}
	actual := map[uidKey]string{}
	flagsOf := map[uidKey]string{}
	counts := map[idKey]int{}
	for _, mbox := range in.Mailboxes {
		mb, err := store.Mailbox(ctx, mbox)
		if err != nil {
			return nil, fmt.Errorf("checker: %s: %w", mbox, err)
		}
		snap, err := mb.Sync(ctx, maildir.SyncOptions{})
		if err != nil {
			return nil, fmt.Errorf("checker: sync %s: %w", mbox, err)
		}
		if snap.UIDValidity != in.UIDValidity[mbox] {
			rep.problem("%s: UIDVALIDITY %d after the run, %d before", mbox, snap.UIDValidity, in.UIDValidity[mbox])
		}
		dir := maildirPath(in.Maildir, mbox)
		uniques := map[string]bool{}
		var last uint32
		for _, m := range snap.Messages {
			if m.UID <= last {
				rep.problem("%s: snapshot UIDs not ascending (%d after %d)", mbox, m.UID, last)
			}
			last = m.UID
			if m.UID >= snap.UIDNext {
				rep.problem("%s: UID %d not below UIDNEXT %d", mbox, m.UID, snap.UIDNext)
			}
			uniques[m.Name.Unique] = true
			sub := "cur"
			if m.InNew {
				sub = "new"
			}
			id, err := readFileID(filepath.Join(dir, sub, m.File))
			if err != nil {
				rep.problem("%s: UID %d file %s: %v", mbox, m.UID, m.File, err)
				continue
			}
			k := uidKey{mbox, m.UID}
			actual[k] = id
			flagsOf[k] = flagState(m.Flags, m.Keywords)
			counts[idKey{mbox, id}]++
			rep.Messages++
		}
		// Every message file must have a UID after the Sync.
		for _, sub := range []string{"new", "cur"} {
			for _, name := range listNames(rep, filepath.Join(dir, sub)) {
				n, err := maildir.ParseName(name)
				if err != nil {
					continue
				}
				if !uniques[n.Unique] {
					rep.problem("%s: %s/%s has no UID after a Sync", mbox, sub, name)
				}
			}
		}
	}

	md.compare(rep, actual, flagsOf, counts)
	return rep, nil
}

// replay applies one journal to the model.
func (md *model) replay(rep *Report, name string, recs []Record, uidv map[string]uint32) {
	var open *Record
	for i := range recs {
		r := &recs[i]
		if r.ID != "" {
			md.known[r.ID] = true
			if r.Op == OpMTA {
				md.mta[r.ID] = true
			}
		}
		switch {
		case r.Op == OpAnomaly:
			rep.problem("%s#%d: writer saw: %s", name, r.Seq, r.Note)
		case r.Phase == PhaseBegin:
			if open != nil {
				md.pending(rep, name, open)
			}
			open = r
		default:
			if open == nil || open.Op != r.Op {
				rep.problem("%s#%d: %s %s without its begin", name, r.Seq, r.Phase, r.Op)
				continue
			}
			if r.Phase == PhaseDone {
				md.done(rep, name, r, uidv)
			} else {
				md.pending(rep, name, open)
			}
			open = nil
		}
	}
	if open != nil {
		md.pending(rep, name, open)
	}
}

func (md *model) add(rep *Report, src string, k uidKey, id, flags string) {
	if old, ok := md.insts[k]; ok {
		rep.problem("%s: UID %d in %s given to %s was already given to %s (%s)", src, k.uid, k.mbox, id, old.id, old.source)
		return
	}
	md.insts[k] = &expected{id: id, flags: []string{flags}, source: src}
}

func (md *model) done(rep *Report, name string, r *Record, uidv map[string]uint32) {
	rep.Done[r.Op]++
	src := fmt.Sprintf("%s#%d", name, r.Seq)
	switch r.Op {
	case OpDeliver:
		md.add(rep, src, uidKey{r.Mailbox, r.UID}, r.ID, r.Flags)
	case OpCopy:
		md.add(rep, src, uidKey{r.Dst, r.DstUID}, r.ID, r.Flags)
	case OpFlag:
		if in := md.insts[uidKey{r.Mailbox, r.UID}]; in != nil {
			in.flags = []string{r.Flags}
		} else {
			rep.problem("%s: flags set on UID %d in %s, which no journal created", src, r.UID, r.Mailbox)
		}
	case OpExpunge:
		if in := md.insts[uidKey{r.Mailbox, r.UID}]; in != nil {
			in.state = stExpunged
		}
	case OpSync:
		if r.UIDValidity != uidv[r.Mailbox] {
			rep.problem("%s: a Sync of %s saw UIDVALIDITY %d, set up with %d", src, r.Mailbox, r.UIDValidity, uidv[r.Mailbox])
		}
	case OpMTA:
		md.mtaDone[idKey{r.Mailbox, r.ID}]++
	case OpAdopt:
		md.adoptions = append(md.adoptions, src+" "+r.ID)
		md.add(rep, src, uidKey{r.Mailbox, r.UID}, r.ID, r.Flags)
		md.mtaAdopted[idKey{r.Mailbox, r.ID}]++
	}
}

// pending records an operation that may or may not have happened.
func (md *model) pending(rep *Report, name string, r *Record) {
	rep.Pending[r.Op]++
	switch r.Op {
	case OpDeliver, OpMTA:
		md.pendingCreate[idKey{r.Mailbox, r.ID}]++
	case OpCopy:
		md.pendingCreate[idKey{r.Dst, r.ID}]++
	case OpFlag:
		if in := md.insts[uidKey{r.Mailbox, r.UID}]; in != nil {
			in.flags = append(in.flags, r.Flags)
		}
	case OpExpunge:
		if in := md.insts[uidKey{r.Mailbox, r.UID}]; in != nil {
			in.state = stExpungePending
			in.flags = append(in.flags, "?")
		}
	}
}

func (md *model) compare(rep *Report, actual map[uidKey]string, flagsOf map[uidKey]string, counts map[idKey]int) {
	keys := make([]uidKey, 0, len(md.insts))
	for k := range md.insts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].mbox != keys[j].mbox {
			return keys[i].mbox < keys[j].mbox
		}
		return keys[i].uid < keys[j].uid
	})
	live := map[idKey]int{}
	maybe := map[idKey]int{}
	for _, k := range keys {
		in := md.insts[k]
		got, ok := actual[k]
		switch in.state {
		case stLive:
			live[idKey{k.mbox, in.id}]++
			switch {
			case !ok:
				rep.problem("lost: %s UID %d (%s, from %s) is not on the spool", k.mbox, k.uid, in.id, in.source)
			case got != in.id:
				rep.problem("UID %d in %s holds %s, but was given to %s (%s)", k.uid, k.mbox, got, in.id, in.source)
			case !slices.Contains(in.flags, "?") && !slices.Contains(in.flags, flagsOf[k]):
				rep.problem("flags: %s UID %d (%s) has %q on disk, last set %q", k.mbox, k.uid, in.id, flagsOf[k], in.flags)
			}
		case stExpunged:
			if ok {
				rep.problem("expunged %s UID %d (%s, from %s) is back, holding %s", k.mbox, k.uid, in.id, in.source, got)
			}
		case stExpungePending:
			maybe[idKey{k.mbox, in.id}]++
			if ok && got != in.id {
				rep.problem("UID %d in %s holds %s, but was given to %s (%s)", k.uid, k.mbox, got, in.id, in.source)
			}
		}
	}
	for _, a := range md.adoptions {
		src, id, _ := strings.Cut(a, " ")
		if !md.mta[id] {
			rep.problem("%s: adopted %s, which no MTA journal delivered", src, id)
		}
	}
	// A writer's message on the spool under a UID no journal gave it:
	// only a create that may or may not have happened explains that (an
	// MTA message gets its UID later and is counted below).
	unexplained := map[idKey][]uint32{}
	for k, id := range actual {
		if _, ok := md.insts[k]; !ok && !md.mta[id] {
			unexplained[idKey{k.mbox, id}] = append(unexplained[idKey{k.mbox, id}], k.uid)
		}
	}
	for k, uids := range unexplained {
		if len(uids) > md.pendingCreate[k] {
			slices.Sort(uids)
			rep.problem("UID changed: %s holds %s under UID(s) %v that no journal gave it", k.mbox, k.id, uids)
		}
	}
	all := map[idKey]bool{}
	for _, m := range []map[idKey]int{counts, live, maybe, md.pendingCreate, md.mtaDone} {
		for k := range m {
			all[k] = true
		}
	}
	for k := range all {
		c := counts[k]
		lo := live[k] + md.mtaDone[k] - md.mtaAdopted[k]
		hi := lo + maybe[k] + md.pendingCreate[k]
		switch {
		case !md.known[k.id]:
			rep.problem("%s holds %d messages with the unknown ID %q", k.mbox, c, k.id)
		case c < lo:
			rep.problem("missing: %s holds %d copies of %s, want at least %d", k.mbox, c, k.id, lo)
		case c > hi:
			rep.problem("duplicate: %s holds %d copies of %s, want at most %d", k.mbox, c, k.id, hi)
		}
	}
	sort.Strings(rep.Problems)
}

// checkRaw checks a maildir's files without the maildir package.
func checkRaw(rep *Report, dir, mbox string, uidv uint32) {
	data, err := os.ReadFile(filepath.Join(dir, maildir.UidlistName))
	if err != nil {
		rep.problem("%s: reading the uidlist: %v", mbox, err)
	} else {
		ul, err := maildir.ParseUidlist(data)
		switch {
		case err != nil:
			rep.problem("%s: uidlist does not parse: %v", mbox, err)
		case ul.UIDValidity != uidv:
			rep.problem("%s: uidlist UIDVALIDITY %d, set up with %d", mbox, ul.UIDValidity, uidv)
		default:
			var last uint32
			for _, r := range ul.Records {
				if r.UID <= last || r.UID >= ul.NextUID {
					rep.problem("%s: uidlist record UID %d out of order (previous %d, next UID %d)", mbox, r.UID, last, ul.NextUID)
				}
				last = r.UID
			}
		}
	}
	if data, err := os.ReadFile(filepath.Join(dir, maildir.KeywordsName)); err == nil {
		if _, err := maildir.ParseKeywords(data); err != nil {
			rep.problem("%s: keywords file does not parse: %v", mbox, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		rep.problem("%s: reading the keywords file: %v", mbox, err)
	}
	where := map[string]string{}
	for _, sub := range []string{"new", "cur"} {
		for _, name := range listNames(rep, filepath.Join(dir, sub)) {
			n, err := maildir.ParseName(name)
			if err != nil {
				continue
			}
			if prev, ok := where[n.Unique]; ok {
				rep.problem("%s: unique part %s twice: %s and %s/%s", mbox, n.Unique, prev, sub, name)
				continue
			}
			where[n.Unique] = sub + "/" + name
		}
	}
}

func listNames(rep *Report, dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		rep.problem("listing %s: %v", dir, err)
		return nil
	}
	var out []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out
}

func readFileID(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	id, err := ReadID(f)
	if err == nil && id == "" {
		err = errors.New("no " + IDHeader + " header")
	}
	return id, err
}

// maildirPath is the Maildir++ directory of an IMAP name under inbox.
func maildirPath(inbox, mbox string) string {
	if strings.EqualFold(mbox, "INBOX") {
		return inbox
	}
	return filepath.Join(inbox, "."+mbox)
}
