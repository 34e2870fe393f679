package session

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/nfsimap/nfsimap/localindex"
	"github.com/nfsimap/nfsimap/node/maildir"
)

// normalizeName trims the trailing separator RFC 3501 allows on CREATE
// ("foo." creates "foo") and spells INBOX in capitals.
func normalizeName(name string) string {
	name = strings.TrimSuffix(name, string(maildir.Separator))
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	return name
}

// Create implements imapserver.Session.
func (s *Session) Create(mailbox string, options *imap.CreateOptions) error {
	name := normalizeName(mailbox)
	if name == "INBOX" {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: "INBOX always exists"}
	}
	if name == "" {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Empty mailbox name"}
	}
	ctx, cancel := s.opCtx()
	defer cancel()
	return s.userError("create", name, s.store.Create(ctx, spoolName(name)))
}

// Delete implements imapserver.Session.
func (s *Session) Delete(mailbox string) error {
	name := normalizeName(mailbox)
	if name == "INBOX" {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "INBOX cannot be deleted"}
	}
	ctx, cancel := s.opCtx()
	defer cancel()
	return s.userError("delete", name, s.store.Delete(ctx, spoolName(name)))
}

// Rename implements imapserver.Session. Renaming INBOX moves its messages
// into the new folder and leaves INBOX empty (RFC 3501).
func (s *Session) Rename(mailbox, newName string, options *imap.RenameOptions) error {
	from, to := normalizeName(mailbox), normalizeName(newName)
	if to == "INBOX" {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: "INBOX always exists"}
	}
	ctx, cancel := s.opCtx()
	defer cancel()
	return s.userError("rename", from, s.store.Rename(ctx, spoolName(from), spoolName(to)))
}

// Subscribe implements imapserver.Session.
func (s *Session) Subscribe(mailbox string) error {
	ctx, cancel := s.opCtx()
	defer cancel()
	return s.userError("subscribe", mailbox, s.store.SetSubscribed(ctx, spoolName(normalizeName(mailbox)), true))
}

// Unsubscribe implements imapserver.Session.
func (s *Session) Unsubscribe(mailbox string) error {
	ctx, cancel := s.opCtx()
	defer cancel()
	return s.userError("unsubscribe", mailbox, s.store.SetSubscribed(ctx, spoolName(normalizeName(mailbox)), false))
}

// listEntry is one name LIST may show.
type listEntry struct {
	name        string // IMAP name, UTF-8
	exists      bool
	noSelect    bool
	hasChildren bool
	subscribed  bool
	childSub    bool // a descendant is subscribed (RECURSIVEMATCH)
}

// List implements imapserver.Session: LIST with LIST-EXTENDED selection
// and return options (SUBSCRIBED, RECURSIVEMATCH, SPECIAL-USE, CHILDREN,
// STATUS) and LSUB.
func (s *Session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if options == nil {
		options = &imap.ListOptions{}
	}
	if len(patterns) == 0 {
		// LIST "" "": the hierarchy separator and root.
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: maildir.Separator, Mailbox: ""})
	}
	ctx, cancel := s.opCtx()
	defer cancel()
	infos, err := s.store.List(ctx)
	if err != nil {
		return s.userError("list", "", err)
	}
	entries := map[string]*listEntry{}
	var order []string
	add := func(name string) *listEntry {
		if e, ok := entries[name]; ok {
			return e
		}
		e := &listEntry{name: name}
		entries[name] = e
		order = append(order, name)
		return e
	}
	for _, info := range infos {
		e := add(imapName(info.Name))
		e.exists = true
		e.noSelect = info.NoSelect
		e.hasChildren = info.HasChildren
	}
	needSubs := options.SelectSubscribed || options.ReturnSubscribed
	if needSubs {
		subs, err := s.store.Subscriptions(ctx)
		if err != nil {
			return s.userError("list", "", err)
		}
		for _, sub := range subs {
			name := imapName(sub)
			e, ok := entries[name]
			if !ok {
				if !options.SelectSubscribed {
					continue
				}
				e = add(name) // subscribed but absent: \NonExistent
			}
			e.subscribed = true
		}
		if options.SelectRecursiveMatch {
			for _, e := range entries {
				if !e.subscribed {
					continue
				}
				for p := parentName(e.name); p != ""; p = parentName(p) {
					add(p).childSub = true
				}
			}
		}
	}
	sortListNames(order)
	for _, name := range order {
		e := entries[name]
		if !matchAny(name, ref, patterns) {
			continue
		}
		if options.SelectSubscribed && !e.subscribed && !(options.SelectRecursiveMatch && e.childSub) {
			continue
		}
		attr, special := s.f.cfg.SpecialUse[name]
		if options.SelectSpecialUse && !special {
			continue
		}
		data := &imap.ListData{Delim: maildir.Separator, Mailbox: name}
		switch {
		case !e.exists:
			data.Attrs = append(data.Attrs, imap.MailboxAttrNonExistent)
		case e.noSelect:
			data.Attrs = append(data.Attrs, imap.MailboxAttrNoSelect)
		}
		if e.exists {
			if e.hasChildren {
				data.Attrs = append(data.Attrs, imap.MailboxAttrHasChildren)
			} else {
				data.Attrs = append(data.Attrs, imap.MailboxAttrHasNoChildren)
			}
		}
		if e.subscribed && needSubs {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
		}
		if special {
			data.Attrs = append(data.Attrs, attr)
		}
		if options.SelectRecursiveMatch && e.childSub && !e.subscribed {
			data.ChildInfo = &imap.ListDataChildInfo{Subscribed: true}
		}
		if options.ReturnStatus != nil && e.exists && !e.noSelect {
			st, err := s.status(ctx, name, options.ReturnStatus)
			if err == nil {
				data.Status = st
			} else if !isUserError(err) {
				return err
			}
		}
		if err := w.WriteList(data); err != nil {
			return err
		}
	}
	return nil
}

func isUserError(err error) bool {
	var imapErr *imap.Error
	return errors.As(err, &imapErr)
}

func parentName(name string) string {
	i := strings.LastIndexByte(name, maildir.Separator)
	if i <= 0 {
		return ""
	}
	return name[:i]
}

func matchAny(name, ref string, patterns []string) bool {
	for _, p := range patterns {
		if strings.EqualFold(name, "INBOX") {
			// INBOX matches case-insensitively.
			if imapserver.MatchList("INBOX", maildir.Separator, strings.ToUpper(ref), strings.ToUpper(p)) {
				return true
			}
			continue
		}
		if imapserver.MatchList(name, maildir.Separator, ref, p) {
			return true
		}
	}
	return false
}

// sortListNames puts INBOX first, then the rest by name.
func sortListNames(names []string) {
	less := func(a, b string) bool {
		if a == "INBOX" {
			return b != "INBOX"
		}
		if b == "INBOX" {
			return false
		}
		return a < b
	}
	for i := 1; i < len(names); i++ {
		for j := i; j > 0 && less(names[j], names[j-1]); j-- {
			names[j], names[j-1] = names[j-1], names[j]
		}
	}
}

// Status implements imapserver.Session.
func (s *Session) Status(mailbox string, options *imap.StatusOptions) (*imap.StatusData, error) {
	ctx, cancel := s.opCtx()
	defer cancel()
	return s.status(ctx, normalizeName(mailbox), options)
}

// status answers STATUS (and LIST-STATUS). An unchanged mailbox is
// answered from its summary in the local index after two revalidated
// stats, of new/ and cur/ (see statSpool): two GETATTRs, no listing, no
// read, also for INBOX while new/ holds mail. A mailbox a session of this
// node has selected is answered from its shared state after the same two
// stats. Otherwise the maildir is synced (without moving new/ to cur/) and
// the summary stored.
func (s *Session) status(ctx context.Context, name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	sn := spoolName(name)
	path, err := s.store.MailboxPath(sn)
	if err != nil {
		return nil, s.userError("status", name, err)
	}
	needSize := options.Size || options.DeletedStorage
	var sum mailboxSummary
	// A mailbox selected on this node is read through its shared state
	// (and its \Recent count is this node's).
	if box := s.f.reg.lookup(path); box != nil {
		defer s.f.reg.release(box)
		snap, _ := box.current()
		if box.changedDirs() {
			if snap, err = box.syncSpool(ctx, maildir.SyncOptions{}); err != nil {
				return nil, s.userError("status", name, err)
			}
		}
		sum = summarize(snap)
		sum.recent = box.countUnclaimed(snap)
		if needSize {
			err = sum.addSizes(snap, func(m maildir.Message) (int64, error) {
				meta, err := box.messageMeta(ctx, m)
				return meta.size, err
			})
		}
	} else {
		sum, err = s.f.sums.summary(ctx, s.store, s.user.Name, sn, path, needSize)
	}
	if err != nil {
		return nil, s.userError("status", name, err)
	}
	limit := s.f.cfg.AppendLimit
	return &imap.StatusData{
		Mailbox:        name,
		NumMessages:    &sum.messages,
		NumRecent:      &sum.recent,
		UIDNext:        imap.UID(sum.uidNext),
		UIDValidity:    sum.uidValidity,
		NumUnseen:      &sum.unseen,
		NumDeleted:     &sum.deleted,
		AppendLimit:    &limit,
		Size:           &sum.size,
		DeletedStorage: &sum.deletedSize,
	}, nil
}

// mailboxSummary is what STATUS tells about a mailbox.
type mailboxSummary struct {
	stamp                     maildir.Stamp // of the snapshot it was made from
	messages, unseen, deleted uint32
	recent                    uint32
	uidNext, uidValidity      uint32
	sizeKnown                 bool
	size, deletedSize         int64
}

func summarize(snap *maildir.Snapshot) mailboxSummary {
	sum := mailboxSummary{
		stamp:       snap.Stamp,
		messages:    uint32(len(snap.Messages)),
		uidNext:     snap.UIDNext,
		uidValidity: snap.UIDValidity,
	}
	for _, m := range snap.Messages {
		if m.Flags&maildir.FlagSeen == 0 {
			sum.unseen++
		}
		if m.Flags&maildir.FlagTrashed != 0 {
			sum.deleted++
		}
		if m.InNew {
			sum.recent++
		}
	}
	return sum
}

// addSizes adds up RFC822.SIZE (from the names' ",W=" where present).
// Messages that vanished meanwhile are left out.
func (sum *mailboxSummary) addSizes(snap *maildir.Snapshot, sizeOf func(maildir.Message) (int64, error)) error {
	sum.size, sum.deletedSize = 0, 0
	for _, m := range snap.Messages {
		sz := m.Name.VSize
		if sz < 0 {
			var err error
			if sz, err = sizeOf(m); err != nil {
				if isGone(err) {
					continue
				}
				return err
			}
		}
		sum.size += sz
		if m.Flags&maildir.FlagTrashed != 0 {
			sum.deletedSize += sz
		}
	}
	sum.sizeKnown = true
	return nil
}

// summaries keeps the STATUS numbers of mailboxes no session of this node
// has selected: in the local index when there is one (one tiny file per
// mailbox, read only for users this node serves), else in a bounded
// in-memory map keyed by maildir path. Either is a cache: anything in it
// may go at any time, and an entry is used only when its spool state's
// new/ and cur/ equal the spool's, revalidated.
type summaries struct {
	index *localindex.Index // nil: the map below
	max   int

	mu sync.Mutex // guards m
	m  map[string]localindex.Summary
}

func newSummaries(index *localindex.Index, max int) *summaries {
	return &summaries{index: index, max: max, m: make(map[string]localindex.Summary)}
}

func (c *summaries) load(user, mailbox, path string) (*localindex.Summary, bool) {
	if c.index != nil {
		sum, err := c.index.LoadSummary(user, mailbox)
		return sum, err == nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	sum, ok := c.m[path]
	return &sum, ok
}

func (c *summaries) store(user, mailbox, path string, sum *localindex.Summary) {
	if c.index != nil {
		_ = c.index.StoreSummary(user, mailbox, sum) // counted by the index; the spool has it all
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[path] = *sum
}

// summary returns the STATUS numbers of the maildir at path: from the
// stored summary when new/ and cur/ are unchanged (two GETATTRs), else
// from a Sync (which does not move new/ to cur/). DELETED comes from the
// summary like the other counts; SIZE and DELETED-STORAGE (needSize) when
// the summary knows the sizes.
func (c *summaries) summary(ctx context.Context, store *maildir.Store, user, mailbox, path string, needSize bool) (mailboxSummary, error) {
	takenAt := time.Now()
	st, statErr := statSpool(path, false)
	if statErr == nil {
		if sum, ok := c.load(user, mailbox, path); ok && sameDirs(sum.Spool, st) && (!needSize || sum.Size >= 0 && sum.DeletedSize >= 0) {
			out := mailboxSummary{
				messages: sum.Messages, unseen: sum.Unseen, deleted: sum.Deleted, recent: sum.Recent,
				uidNext: sum.UIDNext, uidValidity: sum.UIDValidity,
			}
			if sum.Size >= 0 && sum.DeletedSize >= 0 {
				out.sizeKnown, out.size, out.deletedSize = true, sum.Size, sum.DeletedSize
			}
			return out, nil
		}
	}
	mbox, err := store.Mailbox(ctx, mailbox)
	if err != nil {
		return mailboxSummary{}, err
	}
	if statErr != nil {
		// The maildir was just made (INBOX) or could not be stat'ed.
		takenAt = time.Now()
		st, statErr = statSpool(path, false)
	}
	snap, err := mbox.Sync(ctx, maildir.SyncOptions{})
	if err != nil {
		return mailboxSummary{}, err
	}
	sum := summarize(snap)
	if needSize {
		err := sum.addSizes(snap, func(m maildir.Message) (int64, error) {
			_, sz, err := mbox.Sizes(ctx, m.UID)
			return sz, err
		})
		if err != nil {
			return mailboxSummary{}, err
		}
	}
	if statErr == nil {
		stored := localindex.Summary{
			Spool:       statusState(st, snap, takenAt),
			UIDValidity: sum.uidValidity, UIDNext: sum.uidNext,
			Messages: sum.messages, Unseen: sum.unseen, Recent: sum.recent,
			Deleted: sum.deleted,
			Size:    -1, DeletedSize: -1,
		}
		if sum.sizeKnown {
			stored.Size, stored.DeletedSize = sum.size, sum.deletedSize
		} else if allSized(snap) {
			stored.Size, stored.DeletedSize = sizeFromNames(snap)
		}
		if !stored.Spool.IsZero() {
			c.store(user, mailbox, path, &stored)
		}
	}
	return sum, nil
}

// allSized reports whether every file name carries its RFC822 size.
func allSized(snap *maildir.Snapshot) bool {
	for i := range snap.Messages {
		if snap.Messages[i].Name.VSize < 0 {
			return false
		}
	}
	return true
}

// sizeFromNames adds up the sizes in the file names: of all messages and
// of those flagged \Deleted.
func sizeFromNames(snap *maildir.Snapshot) (size, deletedSize int64) {
	for i := range snap.Messages {
		m := &snap.Messages[i]
		size += m.Name.VSize
		if m.Flags&maildir.FlagTrashed != 0 {
			deletedSize += m.Name.VSize
		}
	}
	return size, deletedSize
}
