package maildir

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nfsimap/nfsimap/nfslock"
)

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
func isStale(err error) bool    { return errors.Is(err, syscall.ESTALE) }

// randHex returns n random bytes in hex.
func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// syncDir fsyncs a directory so that a rename or link into it is durable.
func (s *Store) syncDir(dir string) error {
	if s.opt.NoFsync {
		return nil
	}
	var d *os.File
	err := s.retryStale(func() error {
		var err error
		d, err = os.Open(dir)
		return err
	})
	if err != nil {
		return fmt.Errorf("maildir: open %s for fsync: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("maildir: fsync %s: %w", dir, err)
	}
	return nil
}

// errNameTaken: replaceFile with create set found the name taken.
var errNameTaken = errors.New("maildir: file appeared meanwhile")

// replaceFile writes data to a fresh temp file next to path, fsyncs it,
// renames it over path and fsyncs the directory. The caller holds path's
// dot-lock; lock (may be nil) is checked just before the rename so that a
// writer whose lock was broken does not overwrite the new owner's work.
// With create set the file is linked into place instead, which fails with
// errNameTaken when path exists after all (this client's cache said it did
// not).
func (s *Store) replaceFile(path string, data []byte, lock *nfslock.Lock, create bool) error {
	dir, base := filepath.Split(path)
	tmp := filepath.Join(dir, base+".tmp."+randHex(6))
	if err := writeNew(tmp, data, uint32(s.opt.FileMode.Perm()), !s.opt.NoFsync, s.retryStale); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("maildir: write %s: %w", tmp, err)
	}
	if lock != nil {
		if err := lock.Verify(); err != nil {
			_ = os.Remove(tmp)
			return fmt.Errorf("maildir: lock on %s lost before replacing it: %w", path, err)
		}
	}
	if create {
		err := s.retryStale(func() error { return os.Link(tmp, path) })
		_ = os.Remove(tmp)
		if errors.Is(err, fs.ErrExist) {
			return errNameTaken
		}
		if err != nil {
			return fmt.Errorf("maildir: link %s: %w", path, err)
		}
	} else if err := s.renameFileRetry(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("maildir: rename %s: %w", tmp, err)
	}
	s.op(OpControlWrite)
	return s.syncDir(dir)
}

// op tells Options.OnOp of an operation.
func (s *Store) op(name string) {
	if s.opt.OnOp != nil {
		s.opt.OnOp(name)
	}
}

// lock takes the dot-lock of path.
func (s *Store) lock(ctx context.Context, path string) (*nfslock.Lock, error) {
	var l *nfslock.Lock
	err := s.retryStale(func() error {
		var err error
		l, err = nfslock.Acquire(ctx, path, s.opt.Lock)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("maildir: lock %s: %w", path, err)
	}
	return l, nil
}

func (s *Store) unlock(l *nfslock.Lock) {
	if err := l.Release(); err != nil {
		s.opt.Logger.Warn("releasing a dot-lock failed", "lock", l.Path(), "err", err)
	}
}

// readFile reads a whole file (opening it anew, which makes an NFS
// client revalidate it), retrying ESTALE, and returns its identity. A
// missing file gives an error with isNotExist true.
func (s *Store) readFile(path string) ([]byte, fileIdentity, error) {
	var err error
	for i := 0; i <= s.opt.StaleRetries; i++ {
		var data []byte
		var id fileIdentity
		data, id, err = readWhole(path)
		if err == nil {
			return data, id, nil
		}
		if !isStale(err) {
			if isNotExist(err) {
				return nil, fileIdentity{}, err
			}
			return nil, fileIdentity{}, fmt.Errorf("maildir: read %s: %w", path, err)
		}
	}
	return nil, fileIdentity{}, fmt.Errorf("maildir: read %s: %w: %w", path, ErrRetriesExhausted, err)
}

// hostPart makes the host name safe inside a file name.
func hostPart(h string) string {
	r := strings.NewReplacer("/", `\057`, ":", `\072`, ",", `\054`, "\x00", "", "\n", "", "\r", "")
	return r.Replace(h)
}

// newUnique returns a fresh unique part: Dovecot's "<sec>.M<usec>P<pid>"
// plus a per-Store counter and random digits, then the host.
func (s *Store) newUnique() string {
	now := s.opt.Now()
	n := s.seq.Add(1)
	var b strings.Builder
	b.WriteString(strconv.FormatInt(now.Unix(), 10))
	b.WriteString(".M")
	b.WriteString(strconv.Itoa(now.Nanosecond() / 1000))
	b.WriteString("P")
	b.WriteString(strconv.Itoa(os.Getpid()))
	b.WriteString("Q")
	b.WriteString(strconv.FormatUint(n, 10))
	b.WriteString("R")
	b.WriteString(randHex(4))
	b.WriteString(".")
	b.WriteString(hostPart(s.opt.Host))
	return b.String()
}

// fileIdentity says whether a file changed since it was read.
type fileIdentity struct {
	ino   uint64
	size  int64
	mtime int64
}

func identityOf(st os.FileInfo) fileIdentity {
	id := fileIdentity{size: st.Size(), mtime: st.ModTime().UnixNano()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		id.ino = sys.Ino
	}
	return id
}

func inodeOf(st os.FileInfo) (dev, ino uint64) {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(sys.Dev), sys.Ino
	}
	return 0, 0
}

// retryStale runs op again while it fails with ESTALE, at most
// Options.StaleRetries more times. op must be safe to repeat after an
// ESTALE (the filer did not do it).
func (s *Store) retryStale(op func() error) error {
	err := op()
	for i := 0; i < s.opt.StaleRetries && isStale(err); i++ {
		err = op()
	}
	return err
}

// renameRetry renames with ESTALE retries. If a retry finds the source
// gone and the target present, the earlier attempt did it (a lost reply).
func (s *Store) renameRetry(src, dst string) error {
	return s.renameRetryWith(os.Rename, src, dst)
}

// renameFileRetry is renameRetry for a file onto a file name: it skips
// the lstat of the target that os.Rename makes (to refuse a directory
// target), one system call per rename on the paths that deliver mail and
// write the uidlist.
func (s *Store) renameFileRetry(src, dst string) error {
	return s.renameRetryWith(renameFile, src, dst)
}

// renameFile is rename(2), with the error os.Rename would give.
func renameFile(src, dst string) error {
	if err := eintr(func() error { return unix.Rename(src, dst) }); err != nil {
		return &os.LinkError{Op: "rename", Old: src, New: dst, Err: err}
	}
	return nil
}

func (s *Store) renameRetryWith(rename func(src, dst string) error, src, dst string) error {
	staled := false
	return s.retryStale(func() error {
		err := rename(src, dst)
		if isStale(err) {
			staled = true
		}
		if staled && isNotExist(err) {
			if _, serr := os.Lstat(dst); serr == nil {
				return nil
			}
		}
		return err
	})
}

// mkdirTolerant makes dir and its missing parents. EEXIST is success even
// when a lookup still says the directory is missing: on NFS another node may
// have made it a moment ago and this client's cache does not show it yet.
func (s *Store) mkdirTolerant(dir string) error {
	if _, err := s.stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := s.mkdirTolerant(parent); err != nil {
			return err
		}
	}
	err := s.waitVisible(context.Background(), func() error { return os.Mkdir(dir, s.opt.DirMode) })
	if err == nil || errors.Is(err, fs.ErrExist) {
		return nil
	}
	return fmt.Errorf("maildir: mkdir %s: %w", dir, err)
}

// mkdirOne makes dir, whose parent must exist (it is never created: a
// folder deleted by another node must not come back). EEXIST is success;
// a parent that is not visible yet is waited for a few seconds.
func (s *Store) mkdirOne(ctx context.Context, dir string) error {
	err := s.waitVisible(ctx, func() error { return os.Mkdir(dir, s.opt.DirMode) })
	if err == nil || errors.Is(err, fs.ErrExist) {
		return nil
	}
	return fmt.Errorf("maildir: mkdir %s: %w", dir, err)
}

// waitVisible retries op while it fails with ENOENT, for up to about five
// seconds: a directory another node made a moment ago may be hidden from
// this client until its caches expire.
func (s *Store) waitVisible(ctx context.Context, op func() error) error {
	err := s.retryStale(op)
	delay := 20 * time.Millisecond
	deadline := time.Now().Add(5 * time.Second)
	for isNotExist(err) && time.Now().Before(deadline) {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		if delay < 500*time.Millisecond {
			delay *= 2
		}
		err = s.retryStale(op)
	}
	return err
}

// revalidate makes an NFS client fetch fresh attributes of path (and so
// drop cached data of a changed file): chown(path, -1, -1) changes nothing
// but is a SETATTR the filer answers with the current attributes.
func (s *Store) revalidate(path string) {
	_ = s.retryStale(func() error { return os.Chown(path, -1, -1) })
}

// stat is os.Stat with ESTALE retries.
func (s *Store) stat(path string) (os.FileInfo, error) {
	var st os.FileInfo
	err := s.retryStale(func() error {
		var err error
		st, err = os.Stat(path)
		return err
	})
	return st, err
}

// lstat is os.Lstat with ESTALE retries.
func (s *Store) lstat(path string) (os.FileInfo, error) {
	var st os.FileInfo
	err := s.retryStale(func() error {
		var err error
		st, err = os.Lstat(path)
		return err
	})
	return st, err
}
