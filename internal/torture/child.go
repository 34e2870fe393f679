package torture

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nfsimap/nfsimap/node/maildir"
)

// childEnv is the environment variable that turns a re-executed test
// binary into a torture child; its value is the JSON childConfig.
const childEnv = "NFSIMAP_TORTURE_CHILD"

// Roles of child processes.
const (
	roleWriter = "writer"
	roleMTA    = "mta"
)

// childConfig tells a child process what to do.
type childConfig struct {
	Role      string
	Index     int
	Sessions  int       // writer sessions (goroutines) in this process
	Writers   int       // writer processes started at the beginning (they share out the MTA's messages)
	Maildir   string    // the INBOX maildir as this child sees it (through its mount)
	Mailboxes []string  // IMAP names; the first is INBOX
	Journals  string    // directory for the journal files (local disk)
	Deadline  time.Time // stop starting operations at this time
	Seed      uint64
	Host      string        // this node's name (file names, lock owner)
	StaleAge  time.Duration // dot-lock stale age
	MTARate   int           // MTA deliveries per second
	MaxLive   int           // writer session: expunge more when it owns this many messages
}

// RunChild runs a torture child process when the environment asks for one
// and exits; otherwise it returns at once. Call it first in TestMain.
func RunChild() {
	v := os.Getenv(childEnv)
	if v == "" {
		return
	}
	var cfg childConfig
	if err := json.Unmarshal([]byte(v), &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "torture child: bad config: %v\n", err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var err error
	switch cfg.Role {
	case roleWriter:
		err = runWriter(cfg, logger)
	case roleMTA:
		err = runMTA(cfg)
	default:
		err = fmt.Errorf("unknown role %q", cfg.Role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "torture child %s %d: %v\n", cfg.Role, cfg.Index, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func journalPath(dir, role string, index, session int) string {
	return filepath.Join(dir, fmt.Sprintf("%s-%d-%d.jsonl", role, index, session))
}

// storeOptions are the maildir options of every torture participant.
func storeOptions(host string, staleAge time.Duration, logger *slog.Logger) maildir.Options {
	opt := maildir.DefaultOptions()
	opt.Host = host
	opt.Logger = logger
	opt.Lock.Host = host
	opt.Lock.StaleAge = staleAge
	opt.Lock.Timeout = 30 * time.Second
	return opt
}

func runWriter(cfg childConfig, logger *slog.Logger) error {
	store, err := maildir.New(maildir.Paths{Inbox: cfg.Maildir, Root: cfg.Maildir},
		storeOptions(cfg.Host, cfg.StaleAge, logger))
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make([]error, cfg.Sessions)
	for s := range cfg.Sessions {
		wg.Go(func() {
			errs[s] = runSession(cfg, s, store)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// keywordPool are the keywords sessions set.
var keywordPool = []string{"$Label1", "Junk", "NonJunk", "$Forwarded"}

// instance is a message copy a session owns.
type instance struct {
	mbox  string
	uid   uint32
	id    string
	flags string // canonical flag state; "?" when an operation on it failed
}

// session is one writer session: its own mailbox handles, model and
// journal. It is used by one goroutine.
type session struct {
	cfg   childConfig
	index int
	rng   *rand.Rand
	j     *Journal
	boxes map[string]*maildir.Mailbox
	live  []*instance
	n     int
	// adopted are the unique parts of MTA messages this session took
	// over (it flags and expunges them like its own).
	adopted map[string]bool
}

func runSession(cfg childConfig, s int, store *maildir.Store) error {
	ctx := context.Background()
	j, err := CreateJournal(journalPath(cfg.Journals, cfg.Role, cfg.Index, s))
	if err != nil {
		return err
	}
	defer j.Close()
	ss := &session{
		cfg: cfg, index: s, j: j,
		rng:     rand.New(rand.NewPCG(cfg.Seed, uint64(cfg.Index)<<8|uint64(s))),
		boxes:   map[string]*maildir.Mailbox{},
		adopted: map[string]bool{},
	}
	for _, name := range cfg.Mailboxes {
		mb, err := store.Mailbox(ctx, name)
		if err != nil {
			return fmt.Errorf("opening %s: %w", name, err)
		}
		ss.boxes[name] = mb
	}
	for time.Now().Before(cfg.Deadline) {
		if err := ss.step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// flagState is the canonical form of a message's flags and keywords as
// journals record them: the flag letters, "|", the sorted keywords.
func flagState(f maildir.Flags, keywords []string) string {
	kw := slices.Clone(keywords)
	slices.Sort(kw)
	return f.String() + "|" + strings.Join(kw, ",")
}

func (ss *session) randomFlags() (maildir.Flags, []string) {
	var f maildir.Flags
	for _, b := range []maildir.Flags{maildir.FlagSeen, maildir.FlagFlagged, maildir.FlagReplied, maildir.FlagDraft} {
		if ss.rng.IntN(2) == 0 {
			f |= b
		}
	}
	var kw []string
	for _, k := range keywordPool {
		if ss.rng.IntN(4) == 0 {
			kw = append(kw, k)
		}
	}
	return f, kw
}

func (ss *session) write(r Record) error {
	if err := ss.j.Write(r); err != nil {
		return err
	}
	return nil
}

// finish writes the done or fail record of an operation.
func (ss *session) finish(r Record, err error) error {
	if err != nil {
		r.Phase, r.Err = PhaseFail, err.Error()
	} else {
		r.Phase = PhaseDone
	}
	return ss.write(r)
}

func (ss *session) anomaly(format string, args ...any) error {
	return ss.write(Record{Phase: PhaseDone, Op: OpAnomaly, Note: fmt.Sprintf(format, args...)})
}

func (ss *session) pickMailbox() string {
	return ss.cfg.Mailboxes[ss.rng.IntN(len(ss.cfg.Mailboxes))]
}

// step does one random operation.
func (ss *session) step(ctx context.Context) error {
	p := ss.rng.IntN(100)
	if len(ss.live) == 0 {
		p = 0
	}
	if len(ss.live) > ss.cfg.MaxLive && p < 40 {
		p = 90
	}
	switch {
	case p < 30:
		return ss.deliver(ctx)
	case p < 55:
		return ss.flag(ctx)
	case p < 70:
		return ss.sync(ctx)
	case p < 80:
		return ss.copy(ctx)
	default:
		return ss.expunge(ctx)
	}
}

func (ss *session) deliver(ctx context.Context) error {
	ss.n++
	id := fmt.Sprintf("w%d-s%d-%d", ss.cfg.Index, ss.index, ss.n)
	mbox := ss.pickMailbox()
	f, kw := ss.randomFlags()
	state := flagState(f, kw)
	rec := Record{Op: OpDeliver, Mailbox: mbox, ID: id, Flags: state}
	rec.Phase = PhaseBegin
	if err := ss.write(rec); err != nil {
		return err
	}
	uid, err := ss.boxes[mbox].Append(ctx, bytes.NewReader(buildMessage(id, ss.rng)), maildir.AppendOptions{Flags: f, Keywords: kw})
	rec.UID = uid
	if err := ss.finish(rec, err); err != nil {
		return err
	}
	if err == nil {
		ss.live = append(ss.live, &instance{mbox: mbox, uid: uid, id: id, flags: state})
	}
	return nil
}

func (ss *session) pickLive() (int, *instance) {
	i := ss.rng.IntN(len(ss.live))
	return i, ss.live[i]
}

func (ss *session) flag(ctx context.Context) error {
	_, in := ss.pickLive()
	f, kw := ss.randomFlags()
	state := flagState(f, kw)
	rec := Record{Op: OpFlag, Mailbox: in.mbox, UID: in.uid, ID: in.id, Flags: state}
	rec.Phase = PhaseBegin
	if err := ss.write(rec); err != nil {
		return err
	}
	msg, err := ss.boxes[in.mbox].Store(ctx, in.uid, maildir.FlagsSet, f, kw)
	if err := ss.finish(rec, err); err != nil {
		return err
	}
	if err != nil {
		in.flags = "?"
		if errors.Is(err, maildir.ErrNoMessage) {
			return ss.anomaly("STORE of own live message %s UID %d in %s: %v", in.id, in.uid, in.mbox, err)
		}
		return nil
	}
	in.flags = state
	if got := flagState(msg.Flags, msg.Keywords); got != state {
		return ss.anomaly("STORE of %s UID %d in %s returned flags %q, set %q", in.id, in.uid, in.mbox, got, state)
	}
	return nil
}

func (ss *session) sync(ctx context.Context) error {
	mbox := ss.pickMailbox()
	rec := Record{Op: OpSync, Mailbox: mbox, Phase: PhaseBegin}
	if err := ss.write(rec); err != nil {
		return err
	}
	mb := ss.boxes[mbox]
	snap, err := mb.Sync(ctx, maildir.SyncOptions{MoveNew: true})
	if snap != nil {
		rec.UIDValidity = snap.UIDValidity
	}
	if err := ss.finish(rec, err); err != nil || snap == nil {
		return err
	}
	if err := ss.adopt(ctx, mb, snap); err != nil {
		return err
	}
	// Every message this session owns in the mailbox must be in the
	// snapshot under its UID, and (for a sample) hold its content.
	checked := 0
	for _, in := range ss.live {
		if in.mbox != mbox {
			continue
		}
		m, ok := snap.Lookup(in.uid)
		if !ok {
			if err := ss.anomaly("own message %s UID %d missing from a snapshot of %s", in.id, in.uid, mbox); err != nil {
				return err
			}
			continue
		}
		if checked >= 3 {
			continue
		}
		checked++
		if got, err := readOwnID(ctx, mb, m.UID); err == nil && got != in.id {
			if err := ss.anomaly("UID %d in %s holds %q, want %s", in.uid, mbox, got, in.id); err != nil {
				return err
			}
		}
	}
	return nil
}

// adopt takes over a few of the MTA's messages in the snapshot that fall
// to this session (by their number), so that mail delivered into new/ is
// also flagged and expunged, racing with other nodes moving it to cur/.
// Writers started later (a restarted node) adopt nothing.
func (ss *session) adopt(ctx context.Context, mb *maildir.Mailbox, snap *maildir.Snapshot) error {
	if ss.cfg.Index >= ss.cfg.Writers {
		return nil
	}
	total := ss.cfg.Writers * ss.cfg.Sessions
	me := ss.cfg.Index*ss.cfg.Sessions + ss.index
	took := 0
	for _, m := range snap.Messages {
		if took >= 3 || len(ss.live) >= ss.cfg.MaxLive {
			return nil
		}
		n, ok := mtaNumber(m.Name.Unique)
		if !ok || n%total != me || ss.adopted[m.Name.Unique] {
			continue
		}
		id, err := readOwnID(ctx, mb, m.UID)
		if err != nil {
			continue // gone meanwhile, or not readable now: next time
		}
		ss.adopted[m.Name.Unique] = true
		if want := fmt.Sprintf("mta0-%d", n); id != want {
			if err := ss.anomaly("UID %d in %s holds %q, its file name says %s", m.UID, mb.Name(), id, want); err != nil {
				return err
			}
			continue
		}
		state := flagState(m.Flags, m.Keywords)
		rec := Record{Op: OpAdopt, Mailbox: mb.Name(), UID: m.UID, ID: id, Flags: state, Phase: PhaseBegin}
		if err := ss.write(rec); err != nil {
			return err
		}
		rec.Phase = PhaseDone
		if err := ss.write(rec); err != nil {
			return err
		}
		ss.live = append(ss.live, &instance{mbox: mb.Name(), uid: m.UID, id: id, flags: state})
		took++
	}
	return nil
}

// mtaNumber returns n from an MTA file name's unique part
// "<time>.<pid>_<n>.mx".
func mtaNumber(unique string) (int, bool) {
	rest, ok := strings.CutSuffix(unique, ".mx")
	if !ok {
		return 0, false
	}
	i := strings.LastIndexByte(rest, '_')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(rest[i+1:])
	return n, err == nil && n >= 0
}

func readOwnID(ctx context.Context, mb *maildir.Mailbox, uid uint32) (string, error) {
	f, _, err := mb.Open(ctx, uid)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return ReadID(f)
}

func (ss *session) copy(ctx context.Context) error {
	_, in := ss.pickLive()
	dst := ss.pickMailbox()
	if dst == in.mbox {
		dst = ss.cfg.Mailboxes[(slices.Index(ss.cfg.Mailboxes, dst)+1)%len(ss.cfg.Mailboxes)]
	}
	rec := Record{Op: OpCopy, Mailbox: in.mbox, UID: in.uid, ID: in.id, Dst: dst, Flags: in.flags, Phase: PhaseBegin}
	if err := ss.write(rec); err != nil {
		return err
	}
	res, err := ss.boxes[in.mbox].Copy(ctx, []uint32{in.uid}, ss.boxes[dst])
	if err == nil && len(res) != 1 {
		err = fmt.Errorf("copy of own live UID %d returned %d results", in.uid, len(res))
	}
	if err == nil {
		rec.DstUID = res[0].DstUID
	}
	if err := ss.finish(rec, err); err != nil {
		return err
	}
	if err != nil {
		return nil
	}
	ss.live = append(ss.live, &instance{mbox: dst, uid: rec.DstUID, id: in.id, flags: in.flags})
	return nil
}

func (ss *session) expunge(ctx context.Context) error {
	i, in := ss.pickLive()
	rec := Record{Op: OpExpunge, Mailbox: in.mbox, UID: in.uid, ID: in.id, Phase: PhaseBegin}
	if err := ss.write(rec); err != nil {
		return err
	}
	// Whatever happens now, the session no longer touches the message.
	ss.live = slices.Delete(ss.live, i, i+1)
	mb := ss.boxes[in.mbox]
	_, err := mb.Store(ctx, in.uid, maildir.FlagsAdd, maildir.FlagTrashed, nil)
	var gone []uint32
	if err == nil {
		gone, err = mb.Expunge(ctx, []uint32{in.uid})
	}
	if err := ss.finish(rec, err); err != nil {
		return err
	}
	if err == nil && !slices.Contains(gone, in.uid) {
		return ss.anomaly("EXPUNGE of own UID %d (%s) in %s did not report it gone: %v", in.uid, in.id, in.mbox, gone)
	}
	return nil
}

// runMTA delivers into new/ the way procmail does: a file in tmp/ named
// "<time>.<pid>_<n>.<host>", fsynced, hard-linked into new/, unlinked from
// tmp/.
func runMTA(cfg childConfig) error {
	j, err := CreateJournal(journalPath(cfg.Journals, cfg.Role, cfg.Index, 0))
	if err != nil {
		return err
	}
	defer j.Close()
	// The store only names the mailboxes' directories; the MTA itself
	// writes the files, as a foreign program would.
	store, err := maildir.New(maildir.Paths{Inbox: cfg.Maildir, Root: cfg.Maildir}, maildir.DefaultOptions())
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, uint64(cfg.Index)))
	rate := max(cfg.MTARate, 1)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	pid := os.Getpid()
	for n := 1; time.Now().Before(cfg.Deadline); n++ {
		<-tick.C
		mbox := cfg.Mailboxes[rng.IntN(len(cfg.Mailboxes))]
		dir, err := store.MailboxPath(mbox)
		if err != nil {
			return err
		}
		id := fmt.Sprintf("mta%d-%d", cfg.Index, n)
		name := fmt.Sprintf("%d.%d_%d.%s", time.Now().Unix(), pid, n, cfg.Host)
		rec := Record{Op: OpMTA, Mailbox: mbox, ID: id, File: name, Phase: PhaseBegin}
		if err := j.Write(rec); err != nil {
			return err
		}
		if err := deliverProcmail(dir, name, buildMessage(id, rng)); err != nil {
			rec.Phase, rec.Err = PhaseFail, err.Error()
		} else {
			rec.Phase = PhaseDone
		}
		if err := j.Write(rec); err != nil {
			return err
		}
	}
	return nil
}

func deliverProcmail(dir, name string, msg []byte) error {
	tmp := filepath.Join(dir, "tmp", name)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("mta: %w", err)
	}
	_, werr := f.Write(msg)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("mta: writing %s: %w", tmp, err)
	}
	if err := os.Link(tmp, filepath.Join(dir, "new", name)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("mta: %w", err)
	}
	if err := os.Remove(tmp); err != nil {
		return fmt.Errorf("mta: %w", err)
	}
	return nil
}
