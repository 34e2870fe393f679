package nfslock

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// tempPrefix starts the names of our temp files next to the lock, as
// Dovecot's do: ".temp.HOST.PID.NONCE".
const tempPrefix = ".temp."

// snapshot is what we saw of a lock file: enough to tell whether it is the
// same file with the same content later.
type snapshot struct {
	dev, ino uint64
	size     int64
	mtime    time.Time
	content  []byte // at most maxContent+1 bytes
}

// sameFile reports whether s and o are the same inode with the same content.
// With mtime set it also wants the same mtime (an untouched file).
func (s snapshot) sameFile(o snapshot, mtime bool) bool {
	if s.dev != o.dev || s.ino != o.ino || s.size != o.size || !bytes.Equal(s.content, o.content) {
		return false
	}
	return !mtime || s.mtime.Equal(o.mtime)
}

// readSnapshot opens path and reads its attributes and content. Opening
// (rather than stat) makes an NFS client revalidate its cached attributes
// (close-to-open), so the answer is fresh.
func readSnapshot(path string) (snapshot, error) {
	var s snapshot
	err := retryStale(func() error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		s, err = snapshotOf(f)
		return err
	})
	return s, err
}

// staleRetries bounds how often an operation that failed with ESTALE (a
// file handle the NFS server no longer knows) is tried again.
const staleRetries = 4

// retryStale runs f again while it fails with ESTALE, a bounded number of
// times. ESTALE means the operation was not done, so retrying is safe.
func retryStale(f func() error) error {
	var err error
	for range staleRetries {
		if err = f(); !errors.Is(err, syscall.ESTALE) {
			return err
		}
	}
	return err
}

func snapshotOf(f *os.File) (snapshot, error) {
	fi, err := f.Stat()
	if err != nil {
		return snapshot{}, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return snapshot{}, fmt.Errorf("nfslock: no stat_t for %s", f.Name())
	}
	content, err := io.ReadAll(io.LimitReader(f, maxContent+1))
	if err != nil {
		return snapshot{}, fmt.Errorf("nfslock: read %s: %w", f.Name(), err)
	}
	return snapshot{
		dev:     st.Dev,
		ino:     st.Ino,
		size:    st.Size,
		mtime:   time.Unix(st.Mtim.Sec, st.Mtim.Nsec),
		content: content,
	}, nil
}

// touchFile sets the mtime of the open file f to now. It goes through
// /proc/self/fd so it changes exactly the inode that f is, not whatever is
// at f's path by now; without /proc it falls back to the path. A NULL time
// makes an NFS client ask the server to use its own clock.
func touchFile(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var uerr error
	cerr := rc.Control(func(fd uintptr) {
		uerr = unix.UtimesNanoAt(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(int(fd)), nil, 0)
	})
	if cerr != nil {
		return cerr
	}
	if errors.Is(uerr, unix.ENOENT) {
		uerr = unix.UtimesNanoAt(unix.AT_FDCWD, f.Name(), nil, 0)
	}
	if uerr != nil {
		return &fs.PathError{Op: "utimensat", Path: f.Name(), Err: uerr}
	}
	return nil
}

// touchPath sets the mtime of path to now (the server's clock on NFS).
func touchPath(path string) error {
	if err := retryStale(func() error { return unix.UtimesNanoAt(unix.AT_FDCWD, path, nil, 0) }); err != nil {
		return &fs.PathError{Op: "utimensat", Path: path, Err: err}
	}
	return nil
}

// newNonce returns 16 random hex digits.
func newNonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b[:])
}

// tempName is a unique name in dir for our temp files.
func tempName(dir, host string, pid int, nonce string) string {
	return filepath.Join(dir, tempPrefix+host+"."+strconv.Itoa(pid)+"."+nonce)
}

// removeFile removes path, retrying on ESTALE.
func removeFile(path string) error {
	return retryStale(func() error { return os.Remove(path) })
}

// linkCount returns the number of hard links of path, and its inode.
func linkCount(path string) (nlink, ino uint64, err error) {
	var st unix.Stat_t
	if err := retryStale(func() error { return unix.Lstat(path, &st) }); err != nil {
		return 0, 0, err
	}
	return uint64(st.Nlink), st.Ino, nil
}

// linkSafe links oldname to newname the NFS-safe way: on any error it
// checks the link count of oldname, and a count of 2 means the link was made
// (the reply to the first request was lost and the retransmission failed).
// The caller owns oldname, so no one else can have linked it.
func linkSafe(oldname, newname string) error {
	err := retryStale(func() error { return os.Link(oldname, newname) })
	if err == nil {
		return nil
	}
	if n, _, serr := linkCount(oldname); serr == nil && n == 2 {
		return nil
	}
	return err
}

var (
	// errGone: the lock file disappeared before we could move it.
	errGone = errors.New("nfslock: lock file disappeared")
	// errChanged: the lock file was not the one we judged; it was put back.
	errChanged = errors.New("nfslock: lock file changed")
)

// removeIfSame removes the lock file at lockPath only if it is the file in
// want (same inode and content, and same mtime if mtime is set). It first
// renames the lock to the private name aside, checks what it moved, and
// removes it or, when it is some other lock, links it back into place. So a
// lock created by someone else after want was taken is never removed.
//
// It returns nil when the file was removed, errGone when nothing was at
// lockPath, errChanged when a different file was there (and was put back),
// and other errors as they come.
func (a *acquirer) removeIfSame(lockPath string, want snapshot, mtime bool) error {
	aside := tempName(filepath.Dir(lockPath), a.host, a.pid, newNonce())
	if err := retryStale(func() error { return os.Rename(lockPath, aside) }); err != nil {
		// A lost reply to a rename retransmits it, and the second try fails
		// with ENOENT: look at the target to know what happened.
		if _, _, serr := linkCount(aside); serr != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return errGone
			}
			return fmt.Errorf("nfslock: move aside %s: %w", lockPath, err)
		}
	}
	got, err := readSnapshot(aside)
	if err == nil && got.sameFile(want, mtime) {
		if err := removeFile(aside); err != nil && !errors.Is(err, fs.ErrNotExist) {
			a.log.Warn("cannot remove moved lock file", "path", aside, "err", err)
		}
		return nil
	}
	// Not the file we meant (or we cannot tell): put it back.
	if lerr := linkSafe(aside, lockPath); lerr != nil {
		a.log.Error("moved another process's lock aside and could not put it back; its owner will find it stolen",
			"lock", lockPath, "err", lerr)
	}
	if rerr := removeFile(aside); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		a.log.Warn("cannot remove temp file", "path", aside, "err", rerr)
	}
	if err != nil {
		return fmt.Errorf("nfslock: check moved lock %s: %w", lockPath, err)
	}
	return errChanged
}
