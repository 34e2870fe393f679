package maildir

import (
	"errors"
	"io/fs"
	"syscall"

	"golang.org/x/sys/unix"
)

// Reads of control files and listings of directories go through plain
// system calls rather than *os.File: os.Open registers every file with the
// runtime's poller, which costs four fcntl(2) and an epoll_ctl(2) per
// open on Linux (counted by the bench's strace), and io.ReadAll grows its
// buffer in a dozen reads where one fstat gives the size. Both run on
// every sync that finds new mail.

// dirBufSize is the buffer of one getdents64(2) call: a 2,000-file cur/
// takes 4 calls instead of Readdirnames' 15.
const dirBufSize = 32 << 10

// eintr retries a system call interrupted by a signal.
func eintr(f func() error) error {
	for {
		if err := f(); !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// listNames returns the names in dir, without "." and "..".
func listNames(dir string) ([]string, error) {
	var fd int
	err := eintr(func() (err error) {
		fd, err = unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	buf := make([]byte, dirBufSize)
	var names []string
	for {
		var n int
		err := eintr(func() (err error) {
			n, err = unix.Getdents(fd, buf)
			return err
		})
		if err != nil {
			return nil, &fs.PathError{Op: "readdirent", Path: dir, Err: err}
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

// readWhole reads the file at path and returns its content and identity
// (from fstat of the open file).
func readWhole(path string) ([]byte, fileIdentity, error) {
	var fd int
	err := eintr(func() (err error) {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return nil, fileIdentity{}, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := eintr(func() error { return unix.Fstat(fd, &st) }); err != nil {
		return nil, fileIdentity{}, &fs.PathError{Op: "fstat", Path: path, Err: err}
	}
	id := fileIdentity{ino: st.Ino, size: st.Size, mtime: st.Mtim.Nano()}
	// Room for the whole file and a little growth; the loop reads on
	// until end of file whatever the size said.
	data := make([]byte, 0, int(st.Size)+512)
	for {
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
		var n int
		err := eintr(func() (err error) {
			n, err = unix.Read(fd, data[len(data):cap(data)])
			return err
		})
		if err != nil {
			return nil, fileIdentity{}, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if n <= 0 {
			return data, id, nil
		}
		data = data[:len(data)+n]
	}
}

// writeNew creates path (which must not exist), writes data to it, fsyncs
// it when sync is set and closes it. retry runs the create (it may repeat
// it after ESTALE, which means the filer did not create the file). On an
// error the file may be left behind: the caller removes it.
func writeNew(path string, data []byte, mode uint32, sync bool, retry func(func() error) error) error {
	var fd int
	err := retry(func() error {
		return eintr(func() (err error) {
			fd, err = unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, mode)
			return err
		})
	})
	if err != nil {
		return &fs.PathError{Op: "open", Path: path, Err: err}
	}
	for len(data) > 0 {
		var n int
		err := eintr(func() (err error) {
			n, err = unix.Write(fd, data)
			return err
		})
		if err != nil {
			_ = unix.Close(fd)
			return &fs.PathError{Op: "write", Path: path, Err: err}
		}
		data = data[n:]
	}
	if sync {
		if err := eintr(func() error { return unix.Fsync(fd) }); err != nil {
			_ = unix.Close(fd)
			return &fs.PathError{Op: "fsync", Path: path, Err: err}
		}
	}
	// close(2) reports write-back errors (NFS): never ignore them here.
	if err := unix.Close(fd); err != nil {
		return &fs.PathError{Op: "close", Path: path, Err: err}
	}
	return nil
}
