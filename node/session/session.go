package session

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/nfsimap/nfsimap/node/auth"
	"github.com/nfsimap/nfsimap/node/front"
	"github.com/nfsimap/nfsimap/node/maildir"
)

// Factory makes the sessions of one node. It owns the node's shared
// mailbox state (see registry). Safe for concurrent use.
type Factory struct {
	cfg    Config
	logger *slog.Logger
	reg    *registry
	sums   *summaries
}

// statusCacheSize bounds the in-memory STATUS cache used without a local
// index (mailboxes; about 150 bytes each).
const statusCacheSize = 100000

// NewFactory checks cfg and returns a Factory. logger nil discards.
func NewFactory(cfg Config, logger *slog.Logger) (*Factory, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	if cfg.Maildir.Logger == nil {
		cfg.Maildir.Logger = logger
	}
	return &Factory{cfg: cfg, logger: logger, reg: newRegistry(logger), sums: newSummaries(cfg.Index, statusCacheSize)}, nil
}

// New makes the session of an authenticated user; it has the signature of
// front.SessionFactory. It does no spool I/O.
func (f *Factory) New(ctx context.Context, user *auth.User, info front.ConnInfo) (imapserver.Session, error) {
	s, err := f.NewSession(ctx, user, info.ID, info.Remote)
	if err != nil {
		return nil, err
	}
	s.rawEnvelopes = info.RawEnvelopes
	return s, nil
}

// NewSession is New with plain parameters: connID and remote name the
// connection in logs (remote may be nil).
func (f *Factory) NewSession(ctx context.Context, user *auth.User, connID string, remote net.Addr) (*Session, error) {
	if user == nil {
		return nil, fmt.Errorf("session: nil user")
	}
	paths, err := f.cfg.Layout.Paths(maildir.User{Name: user.Name, Home: user.Home, Mail: user.Mail})
	if err != nil {
		return nil, fmt.Errorf("session: mail location of %q: %w", user.Name, err)
	}
	store, err := maildir.New(paths, f.cfg.Maildir)
	if err != nil {
		return nil, fmt.Errorf("session: spool of %q: %w", user.Name, err)
	}
	attrs := []any{"user", user.Name, "conn", connID}
	if remote != nil {
		attrs = append(attrs, "remote", remote.String())
	}
	sctx, cancel := context.WithCancel(context.Background())
	_ = ctx // the session outlives the login's context
	return &Session{
		f:      f,
		user:   user,
		store:  store,
		logger: f.logger.With(attrs...),
		ctx:    sctx,
		cancel: cancel,
	}, nil
}

// Session is the go-imap backend of one authenticated connection.
//
// Concurrency: go-imap calls a session from its connection's goroutine,
// one command at a time; only Idle runs on another goroutine, while the
// connection goroutine waits. selMu guards the selected state anyway, so
// SORT and THREAD answered by the front are safe too.
type Session struct {
	f      *Factory
	user   *auth.User
	store  *maildir.Store
	logger *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc

	selMu sync.Mutex // guards sel
	sel   *selected

	// rawEnvelopes: the front swaps envelope placeholders on this
	// connection (front.ConnInfo.RawEnvelopes); set before first use.
	rawEnvelopes bool
}

var (
	_ imapserver.Session            = (*Session)(nil)
	_ imapserver.SessionIMAP4rev2   = (*Session)(nil)
	_ imapserver.SessionAppendLimit = (*Session)(nil)
	_ front.Sorter                  = (*Session)(nil)
	_ front.Threader                = (*Session)(nil)
	_ front.SessionFactory          = (*Factory)(nil).New
)

// selected is the state of the selected mailbox as this session's client
// knows it: the view's index + 1 is the message sequence number.
type selected struct {
	box         *sharedBox
	name        string // IMAP name, UTF-8
	readOnly    bool
	uidValidity uint32
	keywords    []string // the mailbox keywords last announced in FLAGS
	view        []viewMsg
	version     uint64 // the box version the view fully reflects
	notify      chan struct{}
	searchRes   imap.UIDSet
}

type viewMsg struct {
	msg    maildir.Message // as last reported to the client
	flags  []imap.Flag     // flags last reported, without \Recent
	recent bool
	gone   bool // expunged on the spool; the client was not told yet
}

func (v *viewMsg) uid() imap.UID { return imap.UID(v.msg.UID) }

func (v *viewMsg) clientFlags() []imap.Flag {
	if !v.recent {
		return v.flags
	}
	return append(slices.Clip(v.flags), FlagRecent)
}

// opCtx bounds one command's spool work.
func (s *Session) opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, s.f.cfg.SpoolTimeout)
}

// Close implements imapserver.Session.
func (s *Session) Close() error {
	s.selMu.Lock()
	s.unselectLocked()
	s.selMu.Unlock()
	s.cancel()
	return nil
}

// Login implements imapserver.Session. Sessions start authenticated (the
// front logged the user in), so LOGIN is refused.
func (s *Session) Login(username, password string) error {
	return &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Already authenticated"}
}

// AppendLimit implements imapserver.SessionAppendLimit.
func (s *Session) AppendLimit() uint32 { return s.f.cfg.AppendLimit }

// Namespace implements imapserver.SessionNamespace: one personal namespace
// with "." as separator.
func (s *Session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: maildir.Separator}}}, nil
}

// spoolName turns an IMAP (UTF-8) mailbox name into the spool's name.
func spoolName(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	return encodeMUTF7(name)
}

// imapName turns a spool name into the IMAP (UTF-8) name; names that are
// not valid modified UTF-7 are shown as they are.
func imapName(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	if d, err := decodeMUTF7(name); err == nil {
		return d
	}
	return name
}

// userError maps the spool's errors for user mistakes to IMAP replies and
// wraps server faults (logged by go-imap, shown as [SERVERBUG]).
func (s *Session) userError(op, mailbox string, err error) error {
	var imapErr *imap.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &imapErr):
		return err
	case errors.Is(err, maildir.ErrNoMailbox):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "Mailbox does not exist: " + mailbox}
	case errors.Is(err, maildir.ErrMailboxExists):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: "Mailbox already exists: " + mailbox}
	case errors.Is(err, maildir.ErrInvalidName):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Invalid mailbox name: " + mailbox}
	case errors.Is(err, maildir.ErrNotAllowed):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Operation not allowed on " + mailbox}
	case errors.Is(err, maildir.ErrTooManyKeywords):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeLimit, Text: "Too many keywords in this mailbox"}
	case errors.Is(err, maildir.ErrRetriesExhausted), errors.Is(err, context.DeadlineExceeded):
		s.logger.Warn("spool busy", "op", op, "mailbox", mailbox, "err", err)
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Mailbox is busy, try again later"}
	}
	s.logger.Error("spool failure", "op", op, "mailbox", mailbox, "err", err)
	return fmt.Errorf("%s %q: %w", op, mailbox, err)
}

func errReadOnly() error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Mailbox is read-only"}
}

// isGone tells errors that mean "the message is no longer on the spool".
func isGone(err error) bool {
	return errors.Is(err, maildir.ErrNoMessage) || errors.Is(err, fs.ErrNotExist)
}

// --- flags ---

var systemFlags = []struct {
	flag imap.Flag
	bit  maildir.Flags
}{
	{imap.FlagAnswered, maildir.FlagReplied},
	{imap.FlagFlagged, maildir.FlagFlagged},
	{imap.FlagDeleted, maildir.FlagTrashed},
	{imap.FlagSeen, maildir.FlagSeen},
	{imap.FlagDraft, maildir.FlagDraft},
}

// messageFlags returns a message's IMAP flags: system flags, then keywords.
func messageFlags(m *maildir.Message) []imap.Flag {
	flags := make([]imap.Flag, 0, 4+len(m.Keywords))
	for _, sf := range systemFlags {
		if m.Flags&sf.bit != 0 {
			flags = append(flags, sf.flag)
		}
	}
	for _, k := range m.Keywords {
		flags = append(flags, imap.Flag(k))
	}
	return flags
}

// splitFlags turns IMAP flags into maildir flags and keyword names.
// \Recent is ignored (it cannot be stored); unknown system flags are a
// client error.
func splitFlags(flags []imap.Flag) (maildir.Flags, []string, error) {
	var f maildir.Flags
	var kw []string
	for _, fl := range flags {
		if strings.HasPrefix(string(fl), "\\") {
			if strings.EqualFold(string(fl), string(FlagRecent)) {
				continue
			}
			found := false
			for _, sf := range systemFlags {
				if strings.EqualFold(string(fl), string(sf.flag)) {
					f |= sf.bit
					found = true
				}
			}
			if !found {
				return 0, nil, &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Unknown system flag " + string(fl)}
			}
			continue
		}
		if !slices.Contains(kw, string(fl)) {
			kw = append(kw, string(fl))
		}
	}
	return f, kw, nil
}

// mailboxFlags are the FLAGS of a mailbox: system flags and its keywords.
func mailboxFlags(snap *maildir.Snapshot) []imap.Flag {
	flags := []imap.Flag{imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagSeen, imap.FlagDraft}
	for _, k := range snap.Keywords {
		if k != "" {
			flags = append(flags, imap.Flag(k))
		}
	}
	return flags
}

func permanentFlags(snap *maildir.Snapshot) []imap.Flag {
	flags := mailboxFlags(snap)
	used := 0
	for _, k := range snap.Keywords {
		if k != "" {
			used++
		}
	}
	if used < maildir.MaxKeywords {
		flags = append(flags, imap.FlagWildcard)
	}
	return flags
}

// --- SELECT, updates ---

// Select implements imapserver.Session (SELECT and EXAMINE). EXAMINE
// changes nothing on the spool except, like Dovecot, giving UIDs to
// messages that have none yet: files stay in new/, no flag changes.
func (s *Session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	s.selMu.Lock()
	defer s.selMu.Unlock()
	s.unselectLocked()
	readOnly := options != nil && options.ReadOnly
	ctx, cancel := s.opCtx()
	defer cancel()
	// The revalidated stats of new/, cur/ and the uidlist come first (three
	// GETATTRs); they refresh the client's attribute cache, so opening the
	// mailbox (a stat of cur/) costs nothing more.
	opt := boxOptions{pollInterval: s.f.cfg.PollInterval, moveNew: !readOnly, index: s.f.cfg.Index, user: s.user.Name}
	if path, err := s.store.MailboxPath(spoolName(name)); err == nil {
		opt.takenAt = time.Now()
		if st, err := statSpool(path, true); err == nil {
			opt.pre = &st
		}
	}
	mbox, err := s.store.Mailbox(ctx, spoolName(name))
	if err != nil {
		return nil, s.userError("select", name, err)
	}
	box, fresh, err := s.f.reg.acquire(ctx, mbox, opt)
	if err != nil {
		return nil, s.userError("select", name, err)
	}
	if !fresh {
		// Another session has it: make sure the state is current (and
		// new mail moved to cur/ for a read-write SELECT).
		snap, _ := box.current()
		needMove := !readOnly && slices.ContainsFunc(snap.Messages, func(m maildir.Message) bool { return m.InNew })
		if box.changedSince(opt.pre) || needMove {
			if _, err := box.syncSpool(ctx, maildir.SyncOptions{MoveNew: !readOnly}); err != nil {
				s.f.reg.release(box)
				return nil, s.userError("select", name, err)
			}
		}
	}
	snap, version := box.current()
	sel := &selected{
		box:         box,
		name:        name,
		readOnly:    readOnly,
		uidValidity: snap.UIDValidity,
		keywords:    snap.Keywords,
		version:     version,
		notify:      make(chan struct{}, 1),
	}
	uids := make([]uint32, len(snap.Messages))
	for i, m := range snap.Messages {
		uids[i] = m.UID
	}
	recent := box.claimRecent(uids, readOnly)
	sel.view = make([]viewMsg, len(snap.Messages))
	data := &imap.SelectData{
		Flags:          mailboxFlags(snap),
		PermanentFlags: permanentFlags(snap),
		NumMessages:    uint32(len(snap.Messages)),
		UIDNext:        imap.UID(snap.UIDNext),
		UIDValidity:    snap.UIDValidity,
	}
	if readOnly {
		data.PermanentFlags = []imap.Flag{}
	}
	for i := range snap.Messages {
		m := &snap.Messages[i]
		sel.view[i] = viewMsg{msg: *m, flags: messageFlags(m), recent: recent[m.UID]}
		if recent[m.UID] {
			data.NumRecent++
		}
		if data.FirstUnseenSeqNum == 0 && m.Flags&maildir.FlagSeen == 0 {
			data.FirstUnseenSeqNum = uint32(i + 1)
		}
	}
	box.watch(sel.notify)
	s.sel = sel
	return data, nil
}

// Unselect implements imapserver.Session.
func (s *Session) Unselect() error {
	s.selMu.Lock()
	defer s.selMu.Unlock()
	s.unselectLocked()
	return nil
}

func (s *Session) unselectLocked() {
	if s.sel == nil {
		return
	}
	s.sel.box.unwatch(s.sel.notify)
	s.f.reg.release(s.sel.box)
	s.sel = nil
}

// updateWriter receives the unsolicited updates of applyUpdates.
type updateWriter struct {
	expunge  func(seq uint32) error
	exists   func(n uint32) error                                    // nil: new messages wait
	recent   func(n uint32) error                                    // may be nil
	flags    func(seq uint32, uid imap.UID, flags []imap.Flag) error // nil: flag changes wait
	mflags   func(flags []imap.Flag) error                           // FLAGS of the mailbox; may be nil
	noExpnge bool                                                    // EXPUNGE not allowed now
}

func fullWriter(w *imapserver.UpdateWriter, allowExpunge bool) *updateWriter {
	return &updateWriter{
		expunge:  w.WriteExpunge,
		exists:   w.WriteNumMessages,
		recent:   w.WriteNumRecent,
		flags:    w.WriteMessageFlags,
		mflags:   w.WriteMailboxFlags,
		noExpnge: !allowExpunge,
	}
}

// applyUpdatesLocked brings the client's view up to the shared state and
// tells the client what changed: EXPUNGE (when allowed), EXISTS (and
// RECENT), FETCH FLAGS. What a writer cannot carry waits for a later call.
func (s *Session) applyUpdatesLocked(w *updateWriter) error {
	sel := s.sel
	if sel == nil {
		return nil
	}
	snap, version := sel.box.current()
	hasGone := slices.ContainsFunc(sel.view, func(v viewMsg) bool { return v.gone })
	if version == sel.version && !(hasGone && !w.noExpnge) {
		return nil
	}
	if snap.UIDValidity != sel.uidValidity {
		s.logger.Error("UIDVALIDITY changed under a selected mailbox", "mailbox", sel.name, "old", sel.uidValidity, "new", snap.UIDValidity)
		return fmt.Errorf("mailbox %q: UIDVALIDITY changed from %d to %d", sel.name, sel.uidValidity, snap.UIDValidity)
	}
	msgs := snap.Messages
	var expunged []int // view indexes, ascending
	var flagChanged []int
	j := 0
	for i := range sel.view {
		v := &sel.view[i]
		for j < len(msgs) && msgs[j].UID < v.msg.UID {
			// A lower UID this session never saw (a listing that missed
			// it earlier): it cannot get a sequence number now; it shows
			// at the next SELECT.
			j++
		}
		if j < len(msgs) && msgs[j].UID == v.msg.UID {
			m := &msgs[j]
			j++
			if w.flags != nil {
				if m.Flags != v.msg.Flags || !slices.Equal(m.Keywords, v.msg.Keywords) {
					if nf := messageFlags(m); !slices.Equal(nf, v.flags) {
						v.flags = nf
						flagChanged = append(flagChanged, i)
					}
				}
				v.msg = *m
			}
			continue
		}
		v.gone = true
		if !w.noExpnge {
			expunged = append(expunged, i)
		}
	}
	complete := !w.noExpnge || !hasGone && len(expunged) == 0
	// EXPUNGE from the highest sequence number down, so that each
	// number is right when the client reads it.
	for k := len(expunged) - 1; k >= 0; k-- {
		if err := w.expunge(uint32(expunged[k] + 1)); err != nil {
			return err
		}
	}
	if len(expunged) > 0 || !w.noExpnge {
		newView := sel.view[:0:0]
		newView = slices.Grow(newView, len(sel.view)-len(expunged)+len(msgs)-j)
		// Map old indexes of flag changes to new ones as we compact.
		changedSet := make(map[int]bool, len(flagChanged))
		for _, i := range flagChanged {
			changedSet[i] = true
		}
		flagChanged = flagChanged[:0]
		for i := range sel.view {
			if sel.view[i].gone && !w.noExpnge {
				continue
			}
			if changedSet[i] {
				flagChanged = append(flagChanged, len(newView))
			}
			newView = append(newView, sel.view[i])
		}
		sel.view = newView
	}
	if w.exists != nil && j < len(msgs) {
		added := msgs[j:]
		uids := make([]uint32, len(added))
		for k := range added {
			uids[k] = added[k].UID
		}
		recent := sel.box.claimRecent(uids, sel.readOnly)
		for k := range added {
			m := &added[k]
			sel.view = append(sel.view, viewMsg{msg: *m, flags: messageFlags(m), recent: recent[m.UID]})
		}
		if err := w.exists(uint32(len(sel.view))); err != nil {
			return err
		}
		if len(recent) > 0 && w.recent != nil {
			n := 0
			for k := range sel.view {
				if sel.view[k].recent {
					n++
				}
			}
			if err := w.recent(uint32(n)); err != nil {
				return err
			}
		}
	} else if j < len(msgs) {
		complete = false
	}
	if w.mflags != nil && !slices.Equal(snap.Keywords, sel.keywords) {
		// A new keyword: the mailbox's FLAGS change (RFC 3501 7.2.6).
		if err := w.mflags(mailboxFlags(snap)); err != nil {
			return err
		}
		sel.keywords = snap.Keywords
	}
	if w.flags != nil {
		for _, i := range flagChanged {
			v := &sel.view[i]
			if err := w.flags(uint32(i+1), v.uid(), v.clientFlags()); err != nil {
				return err
			}
		}
	} else {
		complete = false
	}
	if complete {
		sel.version = version
	}
	return nil
}

// Poll implements imapserver.Session: after most commands, and for NOOP,
// it reports what changed. It reads the spool when the mailbox was not
// read for Config.MinSyncInterval.
func (s *Session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	s.selMu.Lock()
	defer s.selMu.Unlock()
	if s.sel == nil {
		return nil
	}
	box := s.sel.box
	if box.sinceSync() >= s.f.cfg.MinSyncInterval {
		ctx, cancel := s.opCtx()
		changed, _ := box.changedOnSpool(ctx)
		if changed {
			if _, err := box.syncSpool(ctx, maildir.SyncOptions{MoveNew: !s.sel.readOnly}); err != nil {
				level := slog.LevelWarn
				if errors.Is(err, maildir.ErrNoMailbox) {
					level = slog.LevelDebug // deleted elsewhere: shown as expunged
				}
				s.logger.Log(ctx, level, "mailbox sync failed", "mailbox", s.sel.name, "err", err)
			}
		}
		cancel()
	}
	return s.applyUpdatesLocked(fullWriter(w, allowExpunge))
}

// Idle implements imapserver.Session: it pushes changes made by other
// sessions of this node at once, and those of other nodes and MTAs within
// Config.PollInterval.
func (s *Session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	s.selMu.Lock()
	var notify chan struct{}
	if s.sel != nil {
		notify = s.sel.notify
	}
	err := s.applyUpdatesLocked(fullWriter(w, true))
	s.selMu.Unlock()
	if err != nil {
		return err
	}
	for {
		select {
		case <-stop:
			return nil
		case <-s.ctx.Done():
			return nil
		case <-notify:
			s.selMu.Lock()
			err := s.applyUpdatesLocked(fullWriter(w, true))
			s.selMu.Unlock()
			if err != nil {
				return err
			}
		}
	}
}

// --- message sets ---

// resolve turns a sequence or UID set into view indexes, ascending.
// Sequence numbers beyond the mailbox are a client error.
func (sel *selected) resolve(numSet imap.NumSet) ([]int, error) {
	var out []int
	switch set := numSet.(type) {
	case imap.SeqSet:
		n := uint32(len(sel.view))
		for _, r := range set {
			// A static number beyond the mailbox is a client error;
			// ranges with "*" are resolved against the mailbox.
			if r.Start != 0 && r.Stop != 0 && max(r.Start, r.Stop) > n {
				return nil, &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Invalid message sequence number"}
			}
		}
		if n == 0 {
			return nil, nil
		}
		for i := range sel.view {
			if seqSetContains(set, uint32(i+1), n) {
				out = append(out, i)
			}
		}
	case imap.UIDSet:
		if imap.IsSearchRes(set) {
			set = sel.searchRes
		}
		if len(sel.view) == 0 {
			return nil, nil
		}
		max := sel.view[len(sel.view)-1].uid()
		for i := range sel.view {
			if uidSetContains(set, sel.view[i].uid(), max) {
				out = append(out, i)
			}
		}
	default:
		return nil, fmt.Errorf("unknown number set type %T", numSet)
	}
	return out, nil
}

func (s *Session) selectedLocked() (*selected, error) {
	if s.sel == nil {
		return nil, &imap.Error{Type: imap.StatusResponseTypeBad, Text: "No mailbox selected"}
	}
	return s.sel, nil
}

// --- FETCH, STORE ---

// Fetch implements imapserver.Session.
func (s *Session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	s.selMu.Lock()
	defer s.selMu.Unlock()
	sel, err := s.selectedLocked()
	if err != nil {
		return err
	}
	idxs, err := sel.resolve(numSet)
	if err != nil {
		return err
	}
	ctx, cancel := s.opCtx()
	defer cancel()
	// A body fetch without .PEEK sets \Seen first, so the response can
	// carry the new flags.
	var seenSet map[int]bool
	if !sel.readOnly && fetchSetsSeen(options) {
		if seenSet, err = s.markSeenLocked(ctx, sel, idxs); err != nil {
			return err
		}
	}
	defer sel.box.flushParsed()
	for _, i := range idxs {
		v := &sel.view[i]
		fm := &fetchMessage{seqNum: uint32(i + 1), uid: v.uid(), flags: v.clientFlags(), size: -1, rawEnvelopes: s.rawEnvelopes}
		var content []byte
		fm.content = func() ([]byte, error) {
			if content != nil {
				return content, nil
			}
			c, meta, err := sel.box.readMessage(ctx, v.msg)
			content = c
			fm.size, fm.internalDate = meta.size, meta.date
			return c, err
		}
		// What the index parsed earlier is served from it; the message
		// is read (once) only for what it lacks.
		if rec, ok := sel.box.parsed(v.msg.UID); ok {
			fm.size, fm.internalDate = rec.Size, rec.InternalDate
			if options.Envelope {
				fm.envelope, _ = cachedEnvelope(&rec)
			}
			if options.BodyStructure != nil {
				fm.bodyStructure, _ = cachedBodyStructure(&rec)
			}
		} else if fetchNeedsContent(fm, options) {
			if _, err := fm.content(); err != nil {
				if isGone(err) {
					continue
				}
				return s.userError("fetch", sel.name, err)
			}
		} else if options.InternalDate || options.RFC822Size {
			meta, err := sel.box.messageMeta(ctx, v.msg)
			if err != nil {
				if isGone(err) {
					continue
				}
				return s.userError("fetch", sel.name, err)
			}
			fm.size, fm.internalDate = meta.size, meta.date
		}
		if fetchNeedsContent(fm, options) {
			if _, err := fm.content(); err != nil {
				if isGone(err) {
					continue
				}
				return s.userError("fetch", sel.name, err)
			}
		}
		if err := writeFetch(w, fm, options, seenSet[i]); err != nil {
			return err
		}
	}
	return nil
}

// markSeenLocked sets \Seen on the messages (view indexes) that lack it
// and returns the indexes it changed.
func (s *Session) markSeenLocked(ctx context.Context, sel *selected, idxs []int) (map[int]bool, error) {
	sel.box.flagsMu.Lock()
	defer sel.box.flagsMu.Unlock()
	seen := map[int]bool{}
	var changed []maildir.Message
	defer func() { sel.box.patch(changed, nil) }()
	for _, i := range idxs {
		v := &sel.view[i]
		if v.gone || v.msg.Flags&maildir.FlagSeen != 0 {
			continue
		}
		m, err := sel.box.mbox.Store(ctx, v.msg.UID, maildir.FlagsAdd, maildir.FlagSeen, nil)
		if err != nil {
			if isGone(err) {
				continue
			}
			return nil, s.userError("fetch", sel.name, err)
		}
		changed = append(changed, m)
		v.msg = m
		v.flags = messageFlags(&m)
		seen[i] = true
	}
	return seen, nil
}

// Store implements imapserver.Session.
func (s *Session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) error {
	s.selMu.Lock()
	defer s.selMu.Unlock()
	sel, err := s.selectedLocked()
	if err != nil {
		return err
	}
	if sel.readOnly {
		return errReadOnly()
	}
	idxs, err := sel.resolve(numSet)
	if err != nil {
		return err
	}
	f, kw, err := splitFlags(flags.Flags)
	if err != nil {
		return err
	}
	var op maildir.FlagOp
	switch flags.Op {
	case imap.StoreFlagsAdd:
		op = maildir.FlagsAdd
	case imap.StoreFlagsDel:
		op = maildir.FlagsRemove
	default:
		op = maildir.FlagsSet
	}
	ctx, cancel := s.opCtx()
	defer cancel()
	sel.box.flagsMu.Lock()
	locked := true
	defer func() {
		if locked {
			sel.box.flagsMu.Unlock()
		}
	}()
	var changed []maildir.Message
	var done []int
	var storeErr error
	for _, i := range idxs {
		v := &sel.view[i]
		if v.gone {
			continue
		}
		ff := f
		if op == maildir.FlagsSet {
			// Keep the maildir 'P' (passed) flag, which IMAP cannot show.
			ff |= v.msg.Flags & maildir.FlagPassed
		}
		if (op == maildir.FlagsAdd || op == maildir.FlagsRemove) && ff == 0 && len(kw) == 0 {
			done = append(done, i)
			continue
		}
		m, err := sel.box.mbox.Store(ctx, v.msg.UID, op, ff, kw)
		if err != nil {
			if isGone(err) {
				continue
			}
			storeErr = s.userError("store", sel.name, err)
			break
		}
		changed = append(changed, m)
		v.msg = m
		v.flags = messageFlags(&m)
		done = append(done, i)
	}
	var keywords []string
	if len(kw) > 0 && len(changed) > 0 {
		snap, _ := sel.box.current()
		for _, k := range kw {
			if !slices.Contains(snap.Keywords, k) {
				// A keyword new to the mailbox: learn its letter's list.
				if keywords, err = sel.box.mbox.Keywords(ctx); err != nil {
					s.logger.Warn("reading keywords", "mailbox", sel.name, "err", err)
					keywords = nil
				}
				break
			}
		}
	}
	sel.box.patch(changed, keywords)
	sel.box.flagsMu.Unlock()
	locked = false
	if !flags.Silent {
		_, isUID := numSet.(imap.UIDSet)
		for _, i := range done {
			v := &sel.view[i]
			rw := w.CreateMessage(uint32(i + 1))
			if isUID {
				rw.WriteUID(v.uid())
			}
			rw.WriteFlags(v.clientFlags())
			if err := rw.Close(); err != nil {
				return err
			}
		}
	}
	return storeErr
}

// --- EXPUNGE, COPY, MOVE ---

// Expunge implements imapserver.Session (EXPUNGE, UID EXPUNGE and the
// silent expunge of CLOSE).
func (s *Session) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	s.selMu.Lock()
	defer s.selMu.Unlock()
	sel, err := s.selectedLocked()
	if err != nil {
		return err
	}
	if sel.readOnly {
		if *w == (imapserver.ExpungeWriter{}) {
			return nil // CLOSE of an EXAMINEd mailbox expunges nothing
		}
		return errReadOnly()
	}
	ctx, cancel := s.opCtx()
	defer cancel()
	// Decide from the newest flags this node knows.
	snap, _ := sel.box.current()
	var targets []uint32
	var max imap.UID
	if n := len(sel.view); n > 0 {
		max = sel.view[n-1].uid()
	}
	for i := range sel.view {
		v := &sel.view[i]
		if v.gone {
			continue
		}
		m, ok := snap.Lookup(v.msg.UID)
		if !ok || m.Flags&maildir.FlagTrashed == 0 {
			continue
		}
		if uids != nil && !uidSetContains(*uids, v.uid(), max) {
			continue
		}
		targets = append(targets, v.msg.UID)
	}
	if len(targets) > 0 {
		removed, err := sel.box.mbox.Expunge(ctx, targets)
		sel.box.removeUIDs(removed)
		if err != nil {
			return s.userError("expunge", sel.name, err)
		}
	}
	return s.applyUpdatesLocked(&updateWriter{expunge: w.WriteExpunge})
}

// destination opens the target mailbox of COPY, MOVE or APPEND; a missing
// one is NO [TRYCREATE]. If a session of this node has it selected, the
// shared handle is used so those sessions see the new messages at once;
// release must be called.
func (s *Session) destination(ctx context.Context, name string) (mbox *maildir.Mailbox, box *sharedBox, release func(), err error) {
	mbox, err = s.store.Mailbox(ctx, spoolName(name))
	if err != nil {
		if errors.Is(err, maildir.ErrNoMailbox) {
			return nil, nil, nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTryCreate, Text: "Mailbox does not exist: " + name}
		}
		return nil, nil, nil, s.userError("open", name, err)
	}
	box = s.f.reg.lookup(mbox.Path())
	if box == nil {
		return mbox, nil, func() {}, nil
	}
	return box.mbox, box, func() { s.f.reg.release(box) }, nil
}

// uidValidityAfter reads the destination after adding messages: it
// installs the new messages in the shared state (when there is one) and
// returns the UIDVALIDITY.
func uidValidityAfter(ctx context.Context, mbox *maildir.Mailbox, box *sharedBox) (uint32, error) {
	if box != nil {
		snap, err := box.syncSpool(ctx, maildir.SyncOptions{})
		if err != nil {
			return 0, err
		}
		return snap.UIDValidity, nil
	}
	snap, err := mbox.Sync(ctx, maildir.SyncOptions{})
	if err != nil {
		return 0, fmt.Errorf("sync destination: %w", err)
	}
	return snap.UIDValidity, nil
}

func copyData(validity uint32, res []maildir.CopyResult) *imap.CopyData {
	var src, dst imap.UIDSet
	for _, r := range res {
		src.AddNum(imap.UID(r.SrcUID))
		dst.AddNum(imap.UID(r.DstUID))
	}
	return &imap.CopyData{UIDValidity: validity, SourceUIDs: src, DestUIDs: dst}
}

// copyOrMove runs COPY or MOVE on the spool.
func (s *Session) copyOrMove(numSet imap.NumSet, dest string, move bool) (*imap.CopyData, error) {
	sel, err := s.selectedLocked()
	if err != nil {
		return nil, err
	}
	if move && sel.readOnly {
		return nil, errReadOnly()
	}
	idxs, err := sel.resolve(numSet)
	if err != nil {
		return nil, err
	}
	var uids []uint32
	for _, i := range idxs {
		if !sel.view[i].gone {
			uids = append(uids, sel.view[i].msg.UID)
		}
	}
	ctx, cancel := s.opCtx()
	defer cancel()
	dst, dbox, release, err := s.destination(ctx, dest)
	if err != nil {
		return nil, err
	}
	defer release()
	if len(uids) == 0 {
		return nil, nil
	}
	var res []maildir.CopyResult
	if move {
		res, err = sel.box.mbox.Move(ctx, uids, dst)
		moved := make([]uint32, len(res))
		for i, r := range res {
			moved[i] = r.SrcUID
		}
		sel.box.removeUIDs(moved)
	} else {
		res, err = sel.box.mbox.Copy(ctx, uids, dst)
	}
	if err != nil {
		return nil, s.userError("copy", dest, err)
	}
	if len(res) == 0 {
		return nil, nil
	}
	validity, err := uidValidityAfter(ctx, dst, dbox)
	if err != nil {
		return nil, s.userError("copy", dest, err)
	}
	return copyData(validity, res), nil
}

// Copy implements imapserver.Session.
func (s *Session) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	s.selMu.Lock()
	defer s.selMu.Unlock()
	return s.copyOrMove(numSet, dest, false)
}

// Move implements imapserver.SessionMove.
func (s *Session) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	s.selMu.Lock()
	defer s.selMu.Unlock()
	data, err := s.copyOrMove(numSet, dest, true)
	if err != nil {
		return err
	}
	if data != nil {
		if err := w.WriteCopyData(data); err != nil {
			return err
		}
	}
	return s.applyUpdatesLocked(&updateWriter{expunge: w.WriteExpunge})
}

// --- APPEND ---

// Append implements imapserver.Session. The message goes through tmp/ with
// fsync and rename (the maildir delivery), its internal date is the file's
// mtime.
func (s *Session) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	if r.Size() > int64(s.f.cfg.AppendLimit) {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTooBig, Text: "Message too big"}
	}
	f, kw, err := splitFlags(options.Flags)
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.opCtx()
	defer cancel()
	mbox, box, release, err := s.destination(ctx, mailbox)
	if err != nil {
		return nil, err
	}
	defer release()
	uid, err := mbox.Append(ctx, r, maildir.AppendOptions{Flags: f, Keywords: kw, Date: options.Time})
	if err != nil {
		return nil, s.userError("append", mailbox, err)
	}
	validity, err := uidValidityAfter(ctx, mbox, box)
	if err != nil {
		return nil, s.userError("append", mailbox, err)
	}
	return &imap.AppendData{UID: imap.UID(uid), UIDValidity: validity}, nil
}

// --- SEARCH ---

// searchMsg adapts a view entry to SearchMessage.
type searchMsg struct {
	ctx     context.Context
	sel     *selected
	seq     uint32
	v       *viewMsg
	content []byte
	meta    *msgMeta
	err     error
}

func (m *searchMsg) SeqNum() uint32     { return m.seq }
func (m *searchMsg) UID() imap.UID      { return m.v.uid() }
func (m *searchMsg) Flags() []imap.Flag { return m.v.clientFlags() }
func (m *searchMsg) loadMeta() msgMeta {
	if m.meta == nil {
		meta, err := m.sel.box.messageMeta(m.ctx, m.v.msg)
		if err != nil && m.err == nil {
			m.err = err
		}
		m.meta = &meta
	}
	return *m.meta
}
func (m *searchMsg) InternalDate() time.Time { return m.loadMeta().date }
func (m *searchMsg) Size() int64             { return m.loadMeta().size }
func (m *searchMsg) Content() ([]byte, error) {
	if m.content != nil {
		return m.content, nil
	}
	c, meta, err := m.sel.box.readMessage(m.ctx, m.v.msg)
	if err != nil {
		return nil, err
	}
	m.content, m.meta = c, &meta
	return c, nil
}

// searchLocked runs the matcher over the view and returns the matching
// messages in sequence order.
func (s *Session) searchLocked(sel *selected, criteria *imap.SearchCriteria) ([]*searchMsg, error) {
	var maxUID imap.UID
	if n := len(sel.view); n > 0 {
		maxUID = sel.view[n-1].uid()
	}
	matcher := NewMatcher(criteria, uint32(len(sel.view)), maxUID, sel.searchRes)
	ctx, cancel := s.opCtx()
	defer cancel()
	var out []*searchMsg
	for i := range sel.view {
		m := &searchMsg{ctx: ctx, sel: sel, seq: uint32(i + 1), v: &sel.view[i]}
		ok, err := matcher.Match(m)
		if err == nil {
			err = m.err
		}
		if err != nil {
			if isGone(err) {
				continue
			}
			return nil, s.userError("search", sel.name, err)
		}
		if ok {
			out = append(out, m)
		}
	}
	return out, nil
}

// Search implements imapserver.Session (SEARCH, UID SEARCH, ESEARCH
// return options and SEARCHRES's SAVE).
func (s *Session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	s.selMu.Lock()
	defer s.selMu.Unlock()
	sel, err := s.selectedLocked()
	if err != nil {
		return nil, err
	}
	found, err := s.searchLocked(sel, criteria)
	if err != nil {
		return nil, err
	}
	matched := make([]SearchMessage, len(found))
	for i, m := range found {
		matched[i] = m
	}
	data := searchResult(kind == imapserver.NumKindUID, matched)
	if options != nil && options.ReturnSave {
		var set imap.UIDSet
		for _, m := range found {
			set.AddNum(m.UID())
		}
		sel.searchRes = set
	}
	return data, nil
}
