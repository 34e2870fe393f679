package maildir

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Keywords returns the mailbox's keyword names by index ("" = unused),
// read from dovecot-keywords.
func (m *Mailbox) Keywords(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	kw, err := m.keywordsLocked(false)
	if err != nil {
		return nil, err
	}
	return append([]string(nil), kw...), nil
}

func (m *Mailbox) keywordsPath() string { return filepath.Join(m.dir, KeywordsName) }

// keywordsLocked returns the keyword names, from the cache when the file
// is unchanged and force is false. The returned slice is never modified.
func (m *Mailbox) keywordsLocked(force bool) ([]string, error) {
	path := m.keywordsPath()
	if force {
		m.store.revalidate(path)
	}
	if !force && m.kwRead {
		st, err := os.Stat(path)
		if isNotExist(err) && m.kwID == (fileIdentity{}) {
			return m.kw, nil
		}
		if err == nil && identityOf(st) == m.kwID {
			return m.kw, nil
		}
	}
	data, id, err := m.store.readFile(path)
	if isNotExist(err) {
		m.kw, m.kwID, m.kwRead = nil, fileIdentity{}, true
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	kw, perr := ParseKeywords(data)
	if perr != nil {
		m.store.opt.Logger.Warn("bad lines in keywords file", "path", path, "err", perr)
	}
	m.kw, m.kwID, m.kwRead = kw, id, true
	return kw, nil
}

// keywordLettersLocked maps keyword names to letters. Names not yet in
// dovecot-keywords are added under its lock when create is true, else
// left out.
func (m *Mailbox) keywordLettersLocked(ctx context.Context, names []string, create bool) (string, error) {
	if len(names) == 0 {
		return "", nil
	}
	for _, n := range names {
		if !validKeyword(n) {
			return "", fmt.Errorf("%w: keyword %q", ErrInvalidName, n)
		}
	}
	kw, err := m.keywordsLocked(false)
	if err != nil {
		return "", err
	}
	letters, missing := lettersFor(kw, names)
	if len(missing) == 0 || !create {
		return letters, nil
	}
	lock, err := m.store.lock(ctx, m.keywordsPath())
	if err != nil {
		return "", err
	}
	defer m.store.unlock(lock)
	err = m.store.waitVisible(ctx, func() error {
		var err error
		if kw, err = m.keywordsLocked(true); err != nil {
			return err
		}
		_, missing := lettersFor(kw, names)
		if len(missing) == 0 {
			return nil
		}
		nk := append([]string(nil), kw...)
		for _, name := range missing {
			placed := false
			for i := range nk {
				if nk[i] == "" {
					nk[i], placed = name, true
					break
				}
			}
			if !placed {
				if len(nk) >= MaxKeywords {
					return fmt.Errorf("%w: %s: cannot add %q", ErrTooManyKeywords, m.name, name)
				}
				nk = append(nk, name)
			}
		}
		// A missing file is created with link(2), which fails if it
		// exists after all (this client's cache said it did not).
		err = m.store.replaceFile(m.keywordsPath(), MarshalKeywords(nk), lock, m.kwID == (fileIdentity{}))
		if errors.Is(err, errNameTaken) {
			return fmt.Errorf("%w (%w)", errNameTaken, fs.ErrNotExist)
		}
		if err != nil {
			return err
		}
		var id fileIdentity
		if st, err := os.Stat(m.keywordsPath()); err == nil {
			id = identityOf(st)
		}
		m.kw, m.kwID, m.kwRead = nk, id, true
		kw = nk
		return nil
	})
	if err != nil {
		return "", err
	}
	letters, _ = lettersFor(kw, names)
	return letters, nil
}

// lettersFor maps names (case-insensitively, as IMAP compares keywords) to
// letters; it returns the names without a letter, each once.
func lettersFor(kw []string, names []string) (string, []string) {
	var b []byte
	var missing []string
	for _, n := range names {
		found := false
		for i, k := range kw {
			if k != "" && strings.EqualFold(k, n) {
				b = append(b, byte('a'+i))
				found = true
				break
			}
		}
		if !found {
			dup := false
			for _, x := range missing {
				if strings.EqualFold(x, n) {
					dup = true
				}
			}
			if !dup {
				missing = append(missing, n)
			}
		}
	}
	return string(b), missing
}

// writeMessage copies r into a fresh file in tmp/, fsyncs and closes it,
// and sets its mtime. It returns the unique part (with ",S=" and ",W=").
func (m *Mailbox) writeMessage(ctx context.Context, r io.Reader, date time.Time) (tmpPath, unique string, err error) {
	if err := ctx.Err(); err != nil {
		return "", "", err
	}
	base := m.store.newUnique()
	tmpPath = filepath.Join(m.dir, "tmp", base)
	var f *os.File
	create := func() error {
		var err error
		f, err = os.OpenFile(tmpPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, m.store.opt.FileMode)
		return err
	}
	err = m.store.retryStale(create)
	if isNotExist(err) {
		// tmp/ missing (some tools do not make it) or not yet visible here.
		if _, serr := m.store.stat(m.dir); isNotExist(serr) {
			if _, serr := m.store.stat(filepath.Join(m.dir, "cur")); isNotExist(serr) {
				return "", "", fmt.Errorf("%w: %s", ErrNoMailbox, m.name)
			}
		}
		if merr := m.store.mkdirOne(ctx, filepath.Join(m.dir, "tmp")); merr != nil {
			if isNotExist(merr) {
				return "", "", fmt.Errorf("%w: %s: %w", ErrNoMailbox, m.name, merr)
			}
			return "", "", merr
		}
		err = m.store.waitVisible(ctx, create)
	}
	if err != nil {
		return "", "", fmt.Errorf("maildir: create %s: %w", tmpPath, err)
	}
	fail := func(err error) (string, string, error) {
		_ = f.Close()
		_ = os.Remove(tmpPath)
		return "", "", err
	}
	cw := &crlfCounter{}
	bw := bufio.NewWriterSize(f, 64<<10)
	if _, err := io.Copy(io.MultiWriter(bw, cw), r); err != nil {
		return fail(fmt.Errorf("maildir: write %s: %w", tmpPath, err))
	}
	if err := bw.Flush(); err != nil {
		return fail(fmt.Errorf("maildir: write %s: %w", tmpPath, err))
	}
	if !m.store.opt.NoFsync {
		if err := f.Sync(); err != nil {
			return fail(fmt.Errorf("maildir: fsync %s: %w", tmpPath, err))
		}
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(tmpPath)
		return "", "", fmt.Errorf("maildir: close %s: %w", tmpPath, err)
	}
	if !date.IsZero() {
		if err := m.store.retryStale(func() error { return os.Chtimes(tmpPath, date, date) }); err != nil {
			_ = os.Remove(tmpPath)
			return "", "", fmt.Errorf("maildir: set date of %s: %w", tmpPath, err)
		}
	}
	unique = base + ",S=" + strconv.FormatInt(cw.n, 10) + ",W=" + strconv.FormatInt(cw.n+cw.bare, 10)
	return tmpPath, unique, nil
}

// Append stores a message as IMAP APPEND does: it is written to tmp/,
// fsynced, given its flags and date (mtime) and renamed into cur/; then it
// gets its UID under the uidlist lock, which is returned (for APPENDUID).
// The name carries ",S=<size>" and ",W=<CRLF size>". On error the message
// is removed again (at worst a file is left in tmp/, cleaned after 36 h).
func (m *Mailbox) Append(ctx context.Context, r io.Reader, opt AppendOptions) (uint32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	letters, err := m.keywordLettersLocked(ctx, opt.Keywords, true)
	if err != nil {
		return 0, err
	}
	date := opt.Date
	if date.IsZero() {
		date = m.store.opt.Now()
	}
	tmp, unique, err := m.writeMessage(ctx, r, date)
	if err != nil {
		return 0, err
	}
	file := Name{Unique: unique}.WithFlags(opt.Flags, letters)
	if err := m.store.waitVisible(ctx, func() error { return m.store.renameFileRetry(tmp, filepath.Join(m.dir, "cur", file)) }); err != nil {
		_ = os.Remove(tmp)
		return 0, fmt.Errorf("maildir: append to %s: %w", m.name, err)
	}
	m.store.opt.Listings.forget(m.dir)
	if err := m.store.syncDir(filepath.Join(m.dir, "cur")); err != nil {
		return 0, err
	}
	_, uids, err := m.syncLocked(ctx, SyncOptions{}, []wantFile{{unique: unique, file: file}})
	if err != nil {
		// The client is told APPEND failed: do not leave the message
		// behind for it to appear twice when the client tries again.
		_ = os.Remove(filepath.Join(m.dir, "cur", file))
		return 0, fmt.Errorf("maildir: append to %s: no UID: %w", m.name, err)
	}
	if uids[0] == 0 {
		return 0, fmt.Errorf("%w: appended message vanished from %s before it got a UID", ErrNoMessage, m.name)
	}
	m.store.op(OpAppend)
	return uids[0], nil
}

// Deliver stores a message as an MTA does: written to tmp/, fsynced and
// renamed into new/, without a UID (the next Sync gives it one). It returns
// the file name in new/.
func (m *Mailbox) Deliver(ctx context.Context, r io.Reader) (string, error) {
	tmp, unique, err := m.writeMessage(ctx, r, time.Time{})
	if err != nil {
		return "", err
	}
	if err := m.store.waitVisible(ctx, func() error { return m.store.renameFileRetry(tmp, filepath.Join(m.dir, "new", unique)) }); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("maildir: deliver to %s: %w", m.name, err)
	}
	m.store.opt.Listings.forget(m.dir)
	if err := m.store.syncDir(filepath.Join(m.dir, "new")); err != nil {
		return "", err
	}
	m.store.op(OpDeliver)
	return unique, nil
}

// lookupLocked finds a message in the view; a UID above everything the
// view has seen triggers one rescan (it may be new).
func (m *Mailbox) lookupLocked(ctx context.Context, uid uint32) (Message, bool, error) {
	if msg, ok := m.view[uid]; ok {
		return msg, true, nil
	}
	if m.lastSnap == nil || uid >= m.lastSnap.UIDNext {
		if err := m.rescanLocked(ctx); err != nil {
			return Message{}, false, err
		}
		msg, ok := m.view[uid]
		return msg, ok, nil
	}
	return Message{}, false, nil
}

// rescanLocked lists the maildir again (a Sync without moving new mail).
func (m *Mailbox) rescanLocked(ctx context.Context) error {
	_, _, err := m.syncLocked(ctx, SyncOptions{}, nil)
	return err
}

// raceRescanLocked rescans after a lost race (ENOENT, ESTALE) on attempt
// n. From the second retry on it first waits, growing from 20 ms to 1 s:
// an NFS client may show a cached directory listing that still has the old
// name until its attribute cache expires.
func (m *Mailbox) raceRescanLocked(ctx context.Context, n int) error {
	if n > 0 {
		d := 20 * time.Millisecond << min(n-1, 6)
		if d > time.Second {
			d = time.Second
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return m.rescanLocked(ctx)
}

// Store changes the flags and keywords of one message by renaming its
// file (into cur/ if it was in new/). If the rename fails with ENOENT the
// message was renamed by someone else: the maildir is rescanned and the
// change is applied again to the flags it has now. It returns the message
// as it is after the change; ErrNoMessage if the message is gone;
// ErrTooManyKeywords if a new keyword does not fit.
func (m *Mailbox) Store(ctx context.Context, uid uint32, op FlagOp, flags Flags, keywords []string) (Message, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ensureViewLocked(ctx); err != nil {
		return Message{}, err
	}
	letters, err := m.keywordLettersLocked(ctx, keywords, op != FlagsRemove)
	if err != nil {
		return Message{}, err
	}
	var lastErr error
	stale := 0
	for attempt := 0; attempt <= m.store.opt.RaceRetries; attempt++ {
		msg, ok, err := m.lookupLocked(ctx, uid)
		if err != nil {
			return Message{}, err
		}
		if !ok {
			return Message{}, fmt.Errorf("%w: UID %d in %s", ErrNoMessage, uid, m.name)
		}
		nf, nk := msg.Name.Flags, msg.Name.Keywords
		switch op {
		case FlagsSet:
			nf, nk = flags, letters
		case FlagsAdd:
			nf, nk = nf|flags, nk+letters
		case FlagsRemove:
			nf = nf &^ flags
			nk = strings.Map(func(r rune) rune {
				if strings.ContainsRune(letters, r) {
					return -1
				}
				return r
			}, nk)
		}
		target := msg.Name.WithFlags(nf, nk)
		if !msg.InNew && target == msg.File {
			return msg, nil
		}
		src := filepath.Join(m.dir, "new", msg.File)
		if !msg.InNew {
			src = filepath.Join(m.dir, "cur", msg.File)
		}
		err = renameFile(src, filepath.Join(m.dir, "cur", target))
		if err == nil {
			m.store.opt.Listings.forget(m.dir)
			m.store.op(OpRename)
			n, _ := ParseName(target)
			e := &entry{file: target, name: n}
			kw, _ := m.keywordsLocked(false)
			msg = messageOf(uid, e, kw)
			m.view[uid] = msg
			return msg, nil
		}
		lastErr = err
		switch {
		case isNotExist(err):
			// Renamed or expunged by someone else: look again.
		case isStale(err) && stale < m.store.opt.StaleRetries:
			stale++
		default:
			return Message{}, fmt.Errorf("maildir: store flags on UID %d in %s: %w", uid, m.name, err)
		}
		if err := m.raceRescanLocked(ctx, attempt); err != nil {
			return Message{}, err
		}
	}
	return Message{}, fmt.Errorf("maildir: store flags on UID %d in %s: %w: %w", uid, m.name, ErrRetriesExhausted, lastErr)
}

// Expunge removes the messages with these UIDs (unlink). A message that is
// already gone counts as removed. It returns the UIDs that are now gone
// (all of those given that existed in the handle's view), sorted.
func (m *Mailbox) Expunge(ctx context.Context, uids []uint32) ([]uint32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ensureViewLocked(ctx); err != nil {
		return nil, err
	}
	var done []uint32
	for _, uid := range uids {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		if _, ok, err := m.lookupLocked(ctx, uid); err != nil {
			return done, err
		} else if !ok {
			continue
		}
		if err := m.expungeOneLocked(ctx, uid); err != nil {
			return done, err
		}
		done = append(done, uid)
	}
	sort.Slice(done, func(i, j int) bool { return done[i] < done[j] })
	return done, nil
}

func (m *Mailbox) expungeOneLocked(ctx context.Context, uid uint32) error {
	stale := 0
	var lastErr error
	for attempt := 0; attempt <= m.store.opt.RaceRetries; attempt++ {
		msg, ok := m.view[uid]
		if !ok {
			return nil // gone already
		}
		sub := "cur"
		if msg.InNew {
			sub = "new"
		}
		path := filepath.Join(m.dir, sub, msg.File)
		// Other names of the same file (a crash between link and unlink
		// left two) go too, or the message would come back.
		var extra []string
		if names := m.extraNames[msg.Name.Unique]; len(names) > 0 {
			if st, err := os.Lstat(path); err == nil {
				for _, rel := range names {
					if st2, err := os.Lstat(filepath.Join(m.dir, rel)); err == nil && os.SameFile(st, st2) {
						extra = append(extra, filepath.Join(m.dir, rel))
					}
				}
			}
		}
		err := syscall.Unlink(path)
		if err == nil {
			m.store.opt.Listings.forget(m.dir)
			m.store.op(OpExpunge)
			for _, p := range extra {
				_ = syscall.Unlink(p)
			}
			if _, ok := m.missingSince[msg.Name.Unique]; !ok {
				m.missingSince[msg.Name.Unique] = m.store.opt.Now()
			}
			delete(m.view, uid)
			return nil
		}
		lastErr = err
		switch {
		case isNotExist(err):
		case isStale(err) && stale < m.store.opt.StaleRetries:
			stale++
		default:
			return fmt.Errorf("maildir: expunge UID %d in %s: %w", uid, m.name, err)
		}
		if err := m.raceRescanLocked(ctx, attempt); err != nil {
			return err
		}
	}
	return fmt.Errorf("maildir: expunge UID %d in %s: %w: %w", uid, m.name, ErrRetriesExhausted, lastErr)
}

// Open opens the message file for reading; the caller closes it. A file
// renamed meanwhile (ENOENT) is looked up again after a rescan.
// ErrNoMessage if it is gone. The file's mtime is the internal date. On
// NFS a read may still fail with ESTALE when another node expunges the
// message while it is being read: Open again (or use ReadAll).
func (m *Mailbox) Open(ctx context.Context, uid uint32) (*os.File, Message, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.openLocked(ctx, uid)
}

func (m *Mailbox) openLocked(ctx context.Context, uid uint32) (*os.File, Message, error) {
	if err := m.ensureViewLocked(ctx); err != nil {
		return nil, Message{}, err
	}
	stale := 0
	var lastErr error
	for attempt := 0; attempt <= m.store.opt.RaceRetries; attempt++ {
		msg, ok, err := m.lookupLocked(ctx, uid)
		if err != nil {
			return nil, Message{}, err
		}
		if !ok {
			return nil, Message{}, fmt.Errorf("%w: UID %d in %s", ErrNoMessage, uid, m.name)
		}
		sub := "cur"
		if msg.InNew {
			sub = "new"
		}
		f, err := os.Open(filepath.Join(m.dir, sub, msg.File))
		if err == nil {
			m.store.op(OpRead)
			return f, msg, nil
		}
		lastErr = err
		switch {
		case isNotExist(err):
		case isStale(err) && stale < m.store.opt.StaleRetries:
			stale++
		default:
			return nil, Message{}, fmt.Errorf("maildir: open UID %d in %s: %w", uid, m.name, err)
		}
		if err := m.raceRescanLocked(ctx, attempt); err != nil {
			return nil, Message{}, err
		}
	}
	return nil, Message{}, fmt.Errorf("maildir: open UID %d in %s: %w: %w", uid, m.name, ErrRetriesExhausted, lastErr)
}

// OpenFile opens the file of msg (a message of a snapshot) by the name
// msg has, without the handle's mutex, so that reads do not wait for
// another goroutine's work on the maildir. It does not look the message
// up again: when it was renamed or expunged meanwhile the error wraps
// fs.ErrNotExist (or ESTALE), and Open finds it under its new name.
func (m *Mailbox) OpenFile(msg Message) (*os.File, error) {
	sub := "cur"
	if msg.InNew {
		sub = "new"
	}
	f, err := os.Open(filepath.Join(m.dir, sub, msg.File))
	if err != nil {
		return nil, err
	}
	m.store.op(OpRead)
	return f, nil
}

// ReadAll returns the whole message. Unlike reading from Open's file, it
// also survives a rename or an ESTALE in the middle of the read (it opens
// the message again), and gives ErrNoMessage when the message is gone.
func (m *Mailbox) ReadAll(ctx context.Context, uid uint32) ([]byte, Message, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var lastErr error
	for i := 0; i <= m.store.opt.StaleRetries; i++ {
		f, msg, err := m.openLocked(ctx, uid)
		if err != nil {
			return nil, Message{}, err
		}
		data, err := io.ReadAll(f)
		_ = f.Close()
		if err == nil {
			return data, msg, nil
		}
		lastErr = err
		if !isStale(err) && !isNotExist(err) {
			break
		}
		if err := m.raceRescanLocked(ctx, i); err != nil {
			return nil, Message{}, err
		}
	}
	return nil, Message{}, fmt.Errorf("maildir: read UID %d in %s: %w", uid, m.name, lastErr)
}

// Sizes returns the physical size of a message (its file size) and its
// RFC822.SIZE (the size with every bare LF counted as CRLF): from the
// name's ",S=" and ",W=" fields where present, else by stat and by reading
// the file. The caller caches what it wants.
func (m *Mailbox) Sizes(ctx context.Context, uid uint32) (physical, rfc822 int64, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ensureViewLocked(ctx); err != nil {
		return 0, 0, err
	}
	if msg, ok := m.view[uid]; ok && msg.Name.Size >= 0 && msg.Name.VSize >= 0 {
		return msg.Name.Size, msg.Name.VSize, nil
	}
	f, msg, err := m.openLocked(ctx, uid)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("maildir: stat UID %d in %s: %w", uid, m.name, err)
	}
	physical = st.Size()
	if msg.Name.VSize >= 0 {
		return physical, msg.Name.VSize, nil
	}
	rfc822, err = RFC822Size(f)
	if err != nil {
		return 0, 0, fmt.Errorf("maildir: read UID %d in %s: %w", uid, m.name, err)
	}
	return physical, rfc822, nil
}

// crlfCounter counts bytes and LFs not preceded by CR.
type crlfCounter struct {
	n, bare int64
	lastCR  bool
}

func (c *crlfCounter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	for i, b := range p {
		if b == '\n' {
			prevCR := c.lastCR
			if i > 0 {
				prevCR = p[i-1] == '\r'
			}
			if !prevCR {
				c.bare++
			}
		}
	}
	if len(p) > 0 {
		c.lastCR = p[len(p)-1] == '\r'
	}
	return len(p), nil
}

// RFC822Size returns the size of the message read from r with every LF
// not preceded by CR counted as two bytes.
func RFC822Size(r io.Reader) (int64, error) {
	var c crlfCounter
	if _, err := io.Copy(&c, r); err != nil {
		return 0, fmt.Errorf("maildir: reading message: %w", err)
	}
	return c.n + c.bare, nil
}

// linkFallback reports whether a link error means "copy the bytes".
func linkFallback(err error) bool {
	return errors.Is(err, syscall.EXDEV) || errors.Is(err, syscall.EPERM) ||
		errors.Is(err, syscall.EMLINK) || errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EACCES)
}

// Copy copies the messages with these UIDs (in the given order) into dst,
// keeping flags, keywords (by name) and internal date: a hard link under a
// fresh unique name into dst's cur/, or a byte copy through dst's tmp/ when
// linking fails (EXDEV, EPERM, EMLINK). The copies get consecutive UIDs in
// dst in the given order under dst's uidlist lock. Messages that vanished
// are skipped (not in the result). dst may be m's own mailbox. If the
// copies cannot get UIDs they are removed again and an error returned; an
// error after some copies were placed returns those with their UIDs.
func (m *Mailbox) Copy(ctx context.Context, uids []uint32, dst *Mailbox) ([]CopyResult, error) {
	res, _, err := m.copy(ctx, uids, dst)
	return res, err
}

// Move is Copy followed by Expunge of the copied source messages.
func (m *Mailbox) Move(ctx context.Context, uids []uint32, dst *Mailbox) ([]CopyResult, error) {
	res, _, err := m.copy(ctx, uids, dst)
	if err != nil {
		return res, err
	}
	src := make([]uint32, len(res))
	for i, r := range res {
		src[i] = r.SrcUID
	}
	if _, err := m.Expunge(ctx, src); err != nil {
		return res, fmt.Errorf("maildir: move: copied, but expunging the originals failed: %w", err)
	}
	return res, nil
}

func (m *Mailbox) copy(ctx context.Context, uids []uint32, dst *Mailbox) ([]CopyResult, []wantFile, error) {
	type placed struct {
		src uint32
		w   wantFile
	}
	var done []placed
	// Phase 0: the keyword names of the messages, mapped to dst's letters
	// (dst's mutex is never taken while m's is held).
	var names []string
	err := func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		if err := m.ensureViewLocked(ctx); err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, uid := range uids {
			for _, n := range m.view[uid].Keywords {
				if !seen[n] {
					seen[n] = true
					names = append(names, n)
				}
			}
		}
		return nil
	}()
	if err != nil {
		return nil, nil, err
	}
	dstLetter := map[string]byte{}
	if len(names) > 0 {
		letters, err := dst.keywordLetters(ctx, names)
		if err != nil {
			return nil, nil, err
		}
		for i, n := range names {
			if i < len(letters) {
				dstLetter[strings.ToLower(n)] = letters[i]
			}
		}
	}
	// Phase 1, under m's mutex: put the files into dst's cur/.
	err = func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		if err := m.ensureViewLocked(ctx); err != nil {
			return err
		}
		for _, uid := range uids {
			if err := ctx.Err(); err != nil {
				return err
			}
			w, ok, err := m.copyOneLocked(ctx, uid, dst, dstLetter)
			if err != nil {
				return err
			}
			if ok {
				done = append(done, placed{uid, w})
			}
		}
		return nil
	}()
	if len(done) == 0 {
		return nil, nil, err
	}
	if serr := m.store.syncDir(filepath.Join(dst.dir, "cur")); serr != nil && err == nil {
		err = serr
	}
	// Phase 2, under dst's mutex: give the copies UIDs in order.
	want := make([]wantFile, len(done))
	for i, d := range done {
		want[i] = d.w
	}
	dst.mu.Lock()
	_, dstUIDs, serr := dst.syncLocked(ctx, SyncOptions{}, want)
	dst.mu.Unlock()
	if serr != nil {
		// The copy failed as a whole: take the copies back.
		for _, w := range want {
			_ = os.Remove(filepath.Join(dst.dir, "cur", w.file))
		}
		return nil, want, fmt.Errorf("maildir: copy to %s: no UIDs: %w", dst.name, serr)
	}
	res := make([]CopyResult, 0, len(done))
	for i, d := range done {
		if dstUIDs[i] != 0 {
			res = append(res, CopyResult{SrcUID: d.src, DstUID: dstUIDs[i]})
		}
	}
	return res, want, err
}

// copyOneLocked places one copy in dst's cur/. ok is false when the source
// message is gone.
func (m *Mailbox) copyOneLocked(ctx context.Context, uid uint32, dst *Mailbox, dstLetter map[string]byte) (wantFile, bool, error) {
	stale := 0
	var lastErr error
	for attempt := 0; attempt <= m.store.opt.RaceRetries; attempt++ {
		msg, ok, err := m.lookupLocked(ctx, uid)
		if err != nil {
			return wantFile{}, false, err
		}
		if !ok {
			return wantFile{}, false, nil
		}
		var lb []byte
		for _, n := range msg.Keywords {
			if c, ok := dstLetter[strings.ToLower(n)]; ok {
				lb = append(lb, c)
			}
		}
		letters := string(lb)
		unique := m.store.newUnique()
		if msg.Name.Size >= 0 {
			unique += ",S=" + strconv.FormatInt(msg.Name.Size, 10)
		}
		if msg.Name.VSize >= 0 {
			unique += ",W=" + strconv.FormatInt(msg.Name.VSize, 10)
		}
		nn := Name{Unique: unique, OtherFlags: msg.Name.OtherFlags}
		file := nn.WithFlags(msg.Name.Flags, letters)
		sub := "cur"
		if msg.InNew {
			sub = "new"
		}
		src := filepath.Join(m.dir, sub, msg.File)
		target := filepath.Join(dst.dir, "cur", file)
		err = os.Link(src, target)
		if err != nil && linkFallback(err) {
			err = m.copyBytes(ctx, src, dst, target)
		}
		if err == nil {
			m.store.opt.Listings.forget(dst.dir)
			m.store.op(OpCopy)
			return wantFile{unique: unique, file: file}, true, nil
		}
		lastErr = err
		switch {
		case isNotExist(err):
			if _, serr := m.store.stat(filepath.Join(dst.dir, "cur")); isNotExist(serr) {
				return wantFile{}, false, fmt.Errorf("%w: %s", ErrNoMailbox, dst.name)
			}
		case isStale(err) && stale < m.store.opt.StaleRetries:
			stale++
		default:
			return wantFile{}, false, fmt.Errorf("maildir: copy UID %d from %s to %s: %w", uid, m.name, dst.name, err)
		}
		if err := m.raceRescanLocked(ctx, attempt); err != nil {
			return wantFile{}, false, err
		}
	}
	return wantFile{}, false, fmt.Errorf("maildir: copy UID %d from %s: %w: %w", uid, m.name, ErrRetriesExhausted, lastErr)
}

// keywordLetters maps names to letters in this mailbox, adding new ones.
func (m *Mailbox) keywordLetters(ctx context.Context, names []string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.keywordLettersLocked(ctx, names, true)
}

// copyBytes copies the file src through dst's tmp/ to target, keeping the
// mtime.
func (m *Mailbox) copyBytes(ctx context.Context, src string, dst *Mailbox, target string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	tmp, _, err := dst.writeMessage(ctx, in, st.ModTime())
	if err != nil {
		return err
	}
	if err := m.store.renameRetry(tmp, target); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("maildir: copy into %s: %w", target, err)
	}
	return nil
}
