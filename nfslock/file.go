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
// (close-to-open), so the answer is fresh. Only the contended path uses it:
// judging someone else's lock needs its inode and mtime.
func readSnapshot(path string) (snapshot, error) {
	var s snapshot
	err := retryStale(func() error {
		fd, err := openFile(path, unix.O_RDONLY, 0)
		if err != nil {
			return err
		}
		defer closeFD(fd)
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return &fs.PathError{Op: "fstat", Path: path, Err: err}
		}
		// The size says how much to read, so a whole lock is one read(2)
		// without a second one to see the end of the file.
		want := maxContent + 1
		if st.Size > 0 && st.Size <= maxContent {
			want = int(st.Size)
		}
		content, err := readFD(fd, path, want, maxContent+1)
		if err != nil {
			return err
		}
		s = snapshot{
			dev:     st.Dev,
			ino:     st.Ino,
			size:    st.Size,
			mtime:   time.Unix(st.Mtim.Sec, st.Mtim.Nsec),
			content: content,
		}
		return nil
	})
	return s, err
}

// readPrefix opens path and reads at least n bytes of it (fewer only at the
// end of the file), with no fstat: enough to compare the content with one
// of our own locks. The nonce in our content makes it unique, so a file
// that starts with it is ours.
func readPrefix(path string, n int) ([]byte, error) {
	var b []byte
	err := retryStale(func() error {
		fd, err := openFile(path, unix.O_RDONLY, 0)
		if err != nil {
			return err
		}
		defer closeFD(fd)
		b, err = readFD(fd, path, n, maxContent+1)
		return err
	})
	return b, err
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

// The lock files are opened, read, written and closed with plain system
// calls rather than through os.File: os.Open and os.Create register every
// file with Go's network poller, which costs two fcntl(F_GETFL/F_SETFL)
// pairs and a failing epoll_ctl per file, none of which a regular file
// needs.

// openFile is open(2) with O_CLOEXEC (the tests re-exec helper processes),
// retried on EINTR (FUSE and NFS may return it).
func openFile(path string, flags int, mode uint32) (int, error) {
	for {
		fd, err := unix.Open(path, flags|unix.O_CLOEXEC, mode)
		if err == nil {
			return fd, nil
		}
		if !errors.Is(err, unix.EINTR) {
			return -1, &fs.PathError{Op: "open", Path: path, Err: err}
		}
	}
}

// closeFD closes fd. close(2) is never retried: the descriptor is gone
// even when it fails.
func closeFD(fd int) error {
	return unix.Close(fd)
}

// readFD reads from fd until it has at least want bytes, reaches the end of
// the file or has limit bytes.
func readFD(fd int, path string, want, limit int) ([]byte, error) {
	buf := make([]byte, limit)
	n := 0
	for n < limit {
		m, err := unix.Read(fd, buf[n:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if m <= 0 {
			break
		}
		n += m
		if n >= want {
			break
		}
	}
	return buf[:n], nil
}

// writeFD writes all of b to fd.
func writeFD(fd int, path string, b []byte) error {
	for len(b) > 0 {
		m, err := unix.Write(fd, b)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return &fs.PathError{Op: "write", Path: path, Err: err}
		}
		if m <= 0 {
			return &fs.PathError{Op: "write", Path: path, Err: io.ErrShortWrite}
		}
		b = b[m:]
	}
	return nil
}

// touchFD sets the mtime of the open file fd to now. It goes through
// /proc/self/fd so it changes exactly the inode that fd is, not whatever is
// at path by now; without /proc it falls back to the path. A NULL time
// makes an NFS client ask the server to use its own clock.
func touchFD(fd int, path string) error {
	err := retryStale(func() error {
		return unix.UtimesNanoAt(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), nil, 0)
	})
	if errors.Is(err, unix.ENOENT) {
		err = retryStale(func() error { return unix.UtimesNanoAt(unix.AT_FDCWD, path, nil, 0) })
	}
	if err != nil {
		return &fs.PathError{Op: "utimensat", Path: path, Err: err}
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
	err := retryStale(func() error { return unix.Unlink(path) })
	if err != nil {
		return &fs.PathError{Op: "unlink", Path: path, Err: err}
	}
	return nil
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
	err := retryStale(func() error { return unix.Link(oldname, newname) })
	if err == nil {
		return nil
	}
	if n, _, serr := linkCount(oldname); serr == nil && n == 2 {
		return nil
	}
	return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: err}
}

var (
	// errGone: the lock file disappeared before we could move it.
	errGone = errors.New("nfslock: lock file disappeared")
	// errChanged: the lock file was not the one we judged; it was put back.
	errChanged = errors.New("nfslock: lock file changed")
)

// removeIfSame removes the lock file at lockPath only if it is the file in
// want (same inode and content, and same mtime if mtime is set); see
// moveAsideAndRemove.
func (a *acquirer) removeIfSame(lockPath string, want snapshot, mtime bool) error {
	return a.moveAsideAndRemove(lockPath, func(aside string) (bool, error) {
		got, err := readSnapshot(aside)
		return err == nil && got.sameFile(want, mtime), err
	})
}

// moveAsideAndRemove removes the lock file at lockPath only if check
// accepts it. It first renames the lock to a private name, so check looks
// at exactly the file that was moved and nobody else can change it any
// more, and then removes it or, when it is some other lock, links it back
// into place. So a lock created by someone else after check's idea of it
// was formed is never removed.
//
// It returns nil when the file was removed, errGone when nothing was at
// lockPath, errChanged when a different file was there (and was put back),
// and other errors as they come.
func (a *acquirer) moveAsideAndRemove(lockPath string, check func(aside string) (bool, error)) error {
	aside := tempName(filepath.Dir(lockPath), a.host, a.pid, newNonce())
	// unix.Rename, not os.Rename: os.Rename first lstats the target to
	// refuse a directory, a request we do not need (the name is ours).
	if err := retryStale(func() error { return unix.Rename(lockPath, aside) }); err != nil {
		// A lost reply to a rename retransmits it, and the second try fails
		// with ENOENT: look at the target to know what happened.
		if _, _, serr := linkCount(aside); serr != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return errGone
			}
			return fmt.Errorf("nfslock: move aside %s: %w", lockPath, &os.LinkError{Op: "rename", Old: lockPath, New: aside, Err: err})
		}
	}
	ok, err := check(aside)
	if err == nil && ok {
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
