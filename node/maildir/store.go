package maildir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nfsimap/nfsimap/nfslock"
)

// Store is one user's mail: the INBOX maildir and the Maildir++ folders
// under the folder root. It holds no open files; it is cheap to make and
// safe for concurrent use. Several Stores (here or on other nodes) may
// serve the same user at once.
type Store struct {
	paths Paths
	opt   Options
	seq   atomic.Uint64 // counter for unique file names made by this Store

	tmpCleanMu sync.Mutex           // guards tmpCleaned
	tmpCleaned map[string]time.Time // maildir -> when its tmp/ was last cleaned
}

// tmpCleanDue tells whether tmp/ of the maildir dir is due for a clean-up
// (once an hour per Store), and if so notes that it is done now.
func (s *Store) tmpCleanDue(dir string, now time.Time) bool {
	s.tmpCleanMu.Lock()
	defer s.tmpCleanMu.Unlock()
	if last, ok := s.tmpCleaned[dir]; ok && now.Sub(last) < time.Hour {
		return false
	}
	if s.tmpCleaned == nil {
		s.tmpCleaned = make(map[string]time.Time)
	}
	s.tmpCleaned[dir] = now
	return true
}

// New returns the Store for the given paths (see Layout.Paths). It does no
// I/O: the INBOX maildir is created on first use.
func New(paths Paths, opt Options) (*Store, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	if paths.Inbox == "" || !filepath.IsAbs(paths.Inbox) {
		return nil, fmt.Errorf("%w: INBOX path %q is not absolute", ErrInvalidName, paths.Inbox)
	}
	if paths.Root == "" {
		paths.Root = paths.Inbox
	}
	if !filepath.IsAbs(paths.Root) {
		return nil, fmt.Errorf("%w: folder root %q is not absolute", ErrInvalidName, paths.Root)
	}
	return &Store{paths: paths, opt: opt.withDefaults()}, nil
}

// Paths returns the store's locations.
func (s *Store) Paths() Paths { return s.paths }

// CanonicalName checks an IMAP mailbox name and returns it with INBOX (as
// the whole name or its first level) spelled "INBOX". The hierarchy
// separator is '.'. Refused with ErrInvalidName: the empty name, an empty
// level ("a..b", ".a", "a."), '/', NUL, CR, LF, and a level longer than
// 200 bytes.
func CanonicalName(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("%w: empty mailbox name", ErrInvalidName)
	}
	if strings.ContainsAny(name, "/\x00\r\n") {
		return "", fmt.Errorf("%w: mailbox name %q contains '/' or a control character", ErrInvalidName, name)
	}
	levels := strings.Split(name, string(Separator))
	for _, l := range levels {
		if l == "" {
			return "", fmt.Errorf("%w: mailbox name %q has an empty level", ErrInvalidName, name)
		}
		if len(l) > 200 {
			return "", fmt.Errorf("%w: mailbox name %q has a level over 200 bytes", ErrInvalidName, name)
		}
	}
	if strings.EqualFold(levels[0], "INBOX") {
		levels[0] = "INBOX"
	}
	return strings.Join(levels, string(Separator)), nil
}

// MailboxPath returns the maildir directory of an IMAP mailbox name,
// without checking that it exists. Names are checked by CanonicalName.
func (s *Store) MailboxPath(name string) (string, error) {
	c, err := CanonicalName(name)
	if err != nil {
		return "", err
	}
	return s.pathOf(c), nil
}

func (s *Store) pathOf(canonical string) string {
	if canonical == "INBOX" {
		return s.paths.Inbox
	}
	return filepath.Join(s.paths.Root, "."+canonical)
}

// Mailbox opens a mailbox by IMAP name ("INBOX" in any case, or a folder).
// The INBOX maildir is created when missing; a missing folder gives
// ErrNoMailbox. It reads nothing else: call Sync.
func (s *Store) Mailbox(ctx context.Context, name string) (*Mailbox, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := CanonicalName(name)
	if err != nil {
		return nil, err
	}
	dir := s.pathOf(c)
	if _, err := s.stat(filepath.Join(dir, "cur")); err != nil {
		if !isNotExist(err) {
			return nil, fmt.Errorf("maildir: open %s: %w", c, err)
		}
		if c != "INBOX" {
			return nil, fmt.Errorf("%w: %s", ErrNoMailbox, c)
		}
		for _, sub := range []string{"cur", "new", "tmp"} {
			if err := s.mkdirTolerant(filepath.Join(dir, sub)); err != nil {
				return nil, fmt.Errorf("maildir: create INBOX: %w", err)
			}
		}
	}
	return newMailbox(s, c, dir), nil
}

// folderDirs lists the folder root: canonical folder name -> selectable.
func (s *Store) folderDirs() (map[string]bool, error) {
	var ents []os.DirEntry
	err := s.retryStale(func() error {
		var err error
		ents, err = os.ReadDir(s.paths.Root)
		return err
	})
	if isNotExist(err) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("maildir: list folders in %s: %w", s.paths.Root, err)
	}
	out := make(map[string]bool, len(ents))
	for _, e := range ents {
		n := e.Name()
		if len(n) < 2 || n[0] != '.' || n[1] == '.' {
			continue
		}
		isDir := e.IsDir()
		if e.Type()&os.ModeSymlink != 0 {
			if st, err := s.stat(filepath.Join(s.paths.Root, n)); err == nil && st.IsDir() {
				isDir = true
			}
		}
		if !isDir {
			continue
		}
		c, err := CanonicalName(n[1:])
		if err != nil || c == "INBOX" {
			continue
		}
		_, err = s.stat(filepath.Join(s.paths.Root, n, "cur"))
		out[c] = err == nil
	}
	return out, nil
}

// List returns INBOX and every folder, sorted by name, with the implied
// parents of folders (NoSelect) included. It lists the folder root once
// and stats each folder's cur/.
func (s *Store) List(ctx context.Context) ([]MailboxInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dirs, err := s.folderDirs()
	if err != nil {
		return nil, err
	}
	infos := map[string]*MailboxInfo{"INBOX": {Name: "INBOX"}}
	for name, sel := range dirs {
		infos[name] = &MailboxInfo{Name: name, NoSelect: !sel}
	}
	for name := range dirs {
		levels := strings.Split(name, string(Separator))
		for i := len(levels) - 1; i > 0; i-- {
			parent := strings.Join(levels[:i], string(Separator))
			p, ok := infos[parent]
			if !ok {
				p = &MailboxInfo{Name: parent, NoSelect: true}
				infos[parent] = p
			}
			p.HasChildren = true
		}
	}
	out := make([]MailboxInfo, 0, len(infos))
	for _, i := range infos {
		out = append(out, *i)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Create makes a folder: the directory with new/ cur/ tmp/ and a
// "maildirfolder" file, built under a temporary name and renamed into
// place so other nodes never see half of it. Parents are not created
// (Maildir++ needs none; List shows them as NoSelect). ErrMailboxExists if
// it exists; creating INBOX gives ErrMailboxExists.
func (s *Store) Create(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := CanonicalName(name)
	if err != nil {
		return err
	}
	if c == "INBOX" {
		return fmt.Errorf("%w: INBOX", ErrMailboxExists)
	}
	dir := s.pathOf(c)
	if _, err := s.stat(filepath.Join(dir, "cur")); err == nil {
		return fmt.Errorf("%w: %s", ErrMailboxExists, c)
	}
	if err := s.mkdirTolerant(s.paths.Root); err != nil {
		return fmt.Errorf("maildir: create folder root: %w", err)
	}
	tmp := filepath.Join(s.paths.Root, "..nfsimap-create."+s.newUnique())
	if err := s.retryStale(func() error { return os.Mkdir(tmp, s.opt.DirMode) }); err != nil {
		return fmt.Errorf("maildir: create %s: %w", c, err)
	}
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := s.retryStale(func() error { return os.Mkdir(filepath.Join(tmp, sub), s.opt.DirMode) }); err != nil {
			_ = os.RemoveAll(tmp)
			return fmt.Errorf("maildir: create %s: %w", c, err)
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, "maildirfolder"), nil, s.opt.FileMode); err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("maildir: create %s: %w", c, err)
	}
	if err := s.syncDir(tmp); err != nil {
		_ = os.RemoveAll(tmp)
		return err
	}
	// rename(2) replaces an empty directory (a leftover without cur/) but
	// fails on a non-empty one.
	if err := s.renameRetry(tmp, dir); err != nil {
		_ = os.RemoveAll(tmp)
		if errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.ENOTEMPTY) {
			return fmt.Errorf("%w: %s", ErrMailboxExists, c)
		}
		return fmt.Errorf("maildir: create %s: %w", c, err)
	}
	return s.syncDir(s.paths.Root)
}

// Delete removes a folder and its messages. Deleting INBOX is refused
// (ErrNotAllowed). Children are kept (Maildir++ keeps each folder in its
// own directory), so a deleted parent of existing children shows as
// NoSelect in List, as in Dovecot and RFC 3501. Deleting a name that is
// only an implied parent gives ErrNoMailbox. The folder is first renamed
// out of sight, then removed, so other nodes see it vanish at once.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := CanonicalName(name)
	if err != nil {
		return err
	}
	if c == "INBOX" {
		return fmt.Errorf("%w: deleting INBOX", ErrNotAllowed)
	}
	dir := s.pathOf(c)
	if _, err := s.stat(dir); err != nil {
		if isNotExist(err) {
			return fmt.Errorf("%w: %s", ErrNoMailbox, c)
		}
		return fmt.Errorf("maildir: delete %s: %w", c, err)
	}
	trash := filepath.Join(s.paths.Root, "..nfsimap-deleted."+s.newUnique())
	if err := s.renameRetry(dir, trash); err != nil {
		if isNotExist(err) {
			return fmt.Errorf("%w: %s", ErrNoMailbox, c)
		}
		return fmt.Errorf("maildir: delete %s: %w", c, err)
	}
	if err := os.RemoveAll(trash); err != nil {
		// The folder is gone from sight; leftovers are only litter.
		s.opt.Logger.Warn("removing a deleted folder failed", "path", trash, "err", err)
	}
	return nil
}

// Rename renames a folder and all its children. Renaming INBOX moves all
// INBOX messages (with their flags) into the new folder, which is created,
// and leaves INBOX empty. ErrMailboxExists when the new name exists,
// ErrNoMailbox when the old one does not, ErrNotAllowed when the new name
// is inside the old one or is INBOX.
func (s *Store) Rename(ctx context.Context, oldName, newName string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	oc, err := CanonicalName(oldName)
	if err != nil {
		return err
	}
	nc, err := CanonicalName(newName)
	if err != nil {
		return err
	}
	if nc == "INBOX" {
		return fmt.Errorf("%w: renaming to INBOX", ErrNotAllowed)
	}
	if nc == oc || strings.HasPrefix(nc, oc+string(Separator)) {
		return fmt.Errorf("%w: renaming %s into itself", ErrNotAllowed, oc)
	}
	if oc == "INBOX" {
		return s.renameInbox(ctx, nc)
	}
	dirs, err := s.folderDirs()
	if err != nil {
		return err
	}
	var moves []string // old names, parent first
	for name := range dirs {
		if name == oc || strings.HasPrefix(name, oc+string(Separator)) {
			moves = append(moves, name)
		}
	}
	if len(moves) == 0 {
		return fmt.Errorf("%w: %s", ErrNoMailbox, oc)
	}
	sort.Strings(moves)
	for _, name := range moves {
		target := nc + name[len(oc):]
		if _, ok := dirs[target]; ok {
			return fmt.Errorf("%w: %s", ErrMailboxExists, target)
		}
	}
	for _, name := range moves {
		target := nc + name[len(oc):]
		if err := s.renameRetry(s.pathOf(name), s.pathOf(target)); err != nil {
			if isNotExist(err) {
				continue // deleted or renamed by someone else meanwhile
			}
			if errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.ENOTEMPTY) {
				return fmt.Errorf("%w: %s", ErrMailboxExists, target)
			}
			return fmt.Errorf("maildir: rename %s to %s: %w", name, target, err)
		}
	}
	return s.syncDir(s.paths.Root)
}

func (s *Store) renameInbox(ctx context.Context, target string) error {
	if err := s.Create(ctx, target); err != nil {
		return err
	}
	inbox, err := s.Mailbox(ctx, "INBOX")
	if err != nil {
		return err
	}
	dst, err := s.Mailbox(ctx, target)
	if err != nil {
		return err
	}
	snap, err := inbox.Sync(ctx, SyncOptions{})
	if err != nil {
		return err
	}
	uids := make([]uint32, len(snap.Messages))
	for i, m := range snap.Messages {
		uids[i] = m.UID
	}
	if len(uids) == 0 {
		return nil
	}
	if _, err := inbox.Move(ctx, uids, dst); err != nil {
		return fmt.Errorf("maildir: rename INBOX to %s: %w", target, err)
	}
	return nil
}

func (s *Store) subscriptionsPath() string {
	return filepath.Join(s.paths.Root, SubscriptionsName)
}

// Subscriptions returns the subscribed names in file order.
func (s *Store) Subscriptions(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data, _, err := s.readFile(s.subscriptionsPath())
	if isNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseSubscriptions(data, Separator), nil
}

// SetSubscribed subscribes (on=true) or unsubscribes a name, under the
// subscriptions file's dot-lock, writing the file anew atomically. The name
// need not exist (IMAP allows subscribing to absent names); it must be
// valid.
func (s *Store) SetSubscribed(ctx context.Context, name string, on bool) error {
	c, err := CanonicalName(name)
	if err != nil {
		return err
	}
	if err := s.mkdirTolerant(s.paths.Root); err != nil {
		return fmt.Errorf("maildir: create folder root: %w", err)
	}
	path := s.subscriptionsPath()
	lock, err := s.lock(ctx, path)
	if err != nil {
		return err
	}
	defer s.unlock(lock)
	return s.waitVisible(ctx, func() error {
		err := s.setSubscribedLocked(path, c, on, lock)
		if errors.Is(err, errNameTaken) {
			return fmt.Errorf("%w (%w)", errNameTaken, fs.ErrNotExist)
		}
		return err
	})
}

func (s *Store) setSubscribedLocked(path, c string, on bool, lock *nfslock.Lock) error {
	s.revalidate(path)
	data, _, err := s.readFile(path)
	missing := isNotExist(err)
	if err != nil && !missing {
		return err
	}
	names := ParseSubscriptions(data, Separator)
	var out []string
	found := false
	for _, n := range names {
		if n == c {
			found = true
			if !on {
				continue
			}
		}
		out = append(out, n)
	}
	if on == found {
		return nil
	}
	if on {
		out = append(out, c)
	}
	return s.replaceFile(path, MarshalSubscriptions(out, Separator), lock, missing)
}
