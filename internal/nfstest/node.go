package nfstest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// node is one file or directory of a mount: go-fuse's loopback node plus
// the NFS behaviour (close-to-open, hidden new entries, non-atomic O_EXCL,
// coarse times, silly rename).
type node struct {
	*fs.LoopbackNode
	m *Mount

	// opens counts handles open on this node through this mount (for
	// silly rename).
	opens atomic.Int32

	sillyMu   sync.Mutex // guards sillyPath
	sillyPath string     // backing path of the .nfs file this node was renamed to, "" if none
}

var (
	_ fs.NodeWrapChilder     = (*node)(nil)
	_ fs.NodeLookuper        = (*node)(nil)
	_ fs.NodeGetattrer       = (*node)(nil)
	_ fs.NodeSetattrer       = (*node)(nil)
	_ fs.NodeCreater         = (*node)(nil)
	_ fs.NodeOpener          = (*node)(nil)
	_ fs.NodeOpendirHandler  = (*node)(nil)
	_ fs.NodeMkdirer         = (*node)(nil)
	_ fs.NodeMknoder         = (*node)(nil)
	_ fs.NodeLinker          = (*node)(nil)
	_ fs.NodeSymlinker       = (*node)(nil)
	_ fs.NodeUnlinker        = (*node)(nil)
	_ fs.NodeRmdirer         = (*node)(nil)
	_ fs.NodeRenamer         = (*node)(nil)
	_ fs.FileReleaser        = (*handle)(nil)
	_ fs.FileFlusher         = (*handle)(nil)
	_ fs.FileReaddirenter    = (*dirHandle)(nil)
	_ fs.FileSeekdirer       = (*dirHandle)(nil)
	_ fs.FileReleasedirer    = (*dirHandle)(nil)
	_ fs.FileFsyncdirer      = (*dirHandle)(nil)
	_ fs.FilePassthroughFder = (*handle)(nil)
)

// WrapChild gives every new node of the mount our behaviour.
func (n *node) WrapChild(ctx context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	if ln, ok := ops.(*fs.LoopbackNode); ok {
		return &node{LoopbackNode: ln, m: n.m}
	}
	return ops
}

// backingPath is the path of n in the backing directory.
func (n *node) backingPath() string {
	return filepath.Join(n.RootData.Path, n.Path(n.RootData.RootNode.EmbeddedInode()))
}

func (n *node) child(name string) string {
	return filepath.Join(n.backingPath(), name)
}

// markSeen records that this mount has shown (or made) the entry path, so
// DelayNewEntries never hides that name again (also not when it is
// replaced by a new file: an NFS client then shows the name, perhaps stale,
// but does not lose it).
func (m *Mount) markSeen(path string) {
	if m.faults.Load().DelayNewEntries <= 0 {
		return
	}
	m.seenMu.Lock()
	m.seen[path] = struct{}{}
	m.seenMu.Unlock()
}

// bornXattr marks, on the backing file, a name made through a mount while
// DelayNewEntries was on: "<UnixNano> <name>". Entries without it (made
// before, or outside the mounts) are never hidden. The name is part of the
// value because hard links share the attribute: only the newest name is new.
const bornXattr = "user.nfstest.born"

// markBorn records that path is a new name.
func markBorn(path string) {
	v := fmt.Sprintf("%d %s", time.Now().UnixNano(), filepath.Base(path))
	_ = unix.Lsetxattr(path, bornXattr, []byte(v), 0)
}

// clearBorn records that path is not a new name (a rename replaced an
// existing entry: other clients keep seeing the name).
func clearBorn(path string) {
	_ = unix.Lremovexattr(path, bornXattr)
}

// entryBirth returns when the name path was made through a mount with
// DelayNewEntries on; ok is false for other entries.
func entryBirth(path string) (time.Time, bool) {
	buf := make([]byte, 128)
	n, err := unix.Lgetxattr(path, bornXattr, buf)
	if err != nil {
		return time.Time{}, false
	}
	ts, name, ok := strings.Cut(string(buf[:n]), " ")
	if !ok || name != filepath.Base(path) {
		return time.Time{}, false
	}
	ns, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

// hidden reports whether DelayNewEntries hides the entry path (which
// appeared at born) from this mount now, and counts a hit if so.
func (m *Mount) hidden(path string, born time.Time) bool {
	d := m.faults.Load().DelayNewEntries
	if d <= 0 {
		return false
	}
	m.seenMu.Lock()
	defer m.seenMu.Unlock()
	if _, ok := m.seen[path]; ok {
		return false
	}
	if time.Since(born) >= d || born.Before(m.delaySince()) {
		m.seen[path] = struct{}{}
		return false
	}
	m.count.add(cHidden, 1)
	return true
}

// coarse truncates the times of a to whole seconds when CoarseMtime is on.
func (m *Mount) coarse(a *fuse.Attr) {
	if !m.faults.Load().CoarseMtime {
		return
	}
	if a.Mtimensec != 0 || a.Ctimensec != 0 || a.Atimensec != 0 {
		m.count.add(cCoarseMtime, 1)
	}
	a.Mtimensec, a.Ctimensec, a.Atimensec = 0, 0, 0
}

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if n.m.faults.Load().DelayNewEntries > 0 {
		p := n.child(name)
		if born, ok := entryBirth(p); ok && n.m.hidden(p, born) {
			return nil, syscall.ENOENT
		}
	}
	ch, errno := n.LoopbackNode.Lookup(ctx, name, out)
	if errno == 0 {
		n.m.coarse(&out.Attr)
	}
	return ch, errno
}

func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if h, ok := f.(*handle); ok {
		f = h.LoopbackFile
	}
	errno := n.LoopbackNode.Getattr(ctx, f, out)
	if errno == 0 {
		n.m.coarse(&out.Attr)
	}
	return errno
}

func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if h, ok := f.(*handle); ok {
		f = h.LoopbackFile
	}
	errno := n.LoopbackNode.Setattr(ctx, f, in, out)
	if errno == 0 {
		n.m.coarse(&out.Attr)
	}
	return errno
}

// trace reports a change to Options.Trace.
func (m *Mount) trace(ctx context.Context, op string, paths ...string) {
	if m.opt.Trace == nil {
		return
	}
	var pid uint32
	if c, ok := fuse.FromContext(ctx); ok {
		pid = c.Pid
	}
	m.opt.Trace(op, pid, paths...)
}

// created does the bookkeeping for an entry this mount made.
func (n *node) created(ctx context.Context, op, name string, out *fuse.EntryOut) {
	p := n.child(name)
	n.m.trace(ctx, op, p)
	if n.m.faults.Load().DelayNewEntries > 0 {
		n.m.markSeen(p)
		markBorn(p)
	}
	n.m.coarse(&out.Attr)
}

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_EXCL != 0 && n.m.faults.Load().NonAtomicExcl {
		return n.createNonAtomic(ctx, name, flags, mode, out)
	}
	existed := exists(n.child(name))
	ch, fh, fuseFlags, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	if errno != 0 {
		return ch, fh, fuseFlags, errno
	}
	if existed {
		n.m.trace(ctx, "open-existing", n.child(name))
	} else {
		n.created(ctx, "create", name, out)
	}
	return ch, n.wrap(ch, fh), fuseFlags, 0
}

// createNonAtomic is O_CREAT|O_EXCL the NFSv2 way: look, then create. The
// window between the two is widened a little so races show up in tests.
func (n *node) createNonAtomic(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	n.m.count.add(cExclNonAtomic, 1)
	p := n.child(name)
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err == nil {
		return nil, nil, 0, syscall.EEXIST
	}
	n.m.rngMu.Lock()
	window := time.Duration(n.m.rng.Int64N(int64(2 * time.Millisecond)))
	n.m.rngMu.Unlock()
	time.Sleep(window)
	ch, fh, fuseFlags, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	if errno == syscall.EEXIST {
		// Someone created it after our look: the non-atomic create
		// "succeeds" anyway and opens their file.
		n.m.count.add(cExclRace, 1)
		ch, fh, fuseFlags, errno = n.LoopbackNode.Create(ctx, name, flags&^syscall.O_EXCL, mode, out)
		if errno == 0 {
			n.m.trace(ctx, "open-existing-nonatomic", n.child(name))
			return ch, n.wrap(ch, fh), fuseFlags, 0
		}
	}
	if errno != 0 {
		return ch, fh, fuseFlags, errno
	}
	n.created(ctx, "create-nonatomic", name, out)
	return ch, n.wrap(ch, fh), fuseFlags, 0
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ch, errno := n.LoopbackNode.Mkdir(ctx, name, mode, out)
	if errno == 0 {
		n.created(ctx, "mkdir", name, out)
	}
	return ch, errno
}

func (n *node) Mknod(ctx context.Context, name string, mode, rdev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ch, errno := n.LoopbackNode.Mknod(ctx, name, mode, rdev, out)
	if errno == 0 {
		n.created(ctx, "mknod", name, out)
	}
	return ch, errno
}

func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ch, errno := n.LoopbackNode.Link(ctx, target, name, out)
	if errno == 0 {
		n.created(ctx, "link", name, out)
	}
	return ch, errno
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ch, errno := n.LoopbackNode.Symlink(ctx, target, name, out)
	if errno == 0 {
		n.created(ctx, "symlink", name, out)
	}
	return ch, errno
}

// sillyRename moves the open file name (child of n, open through this mount)
// aside to a .nfs name, the way an NFS client keeps an unlinked open file
// readable. It reports whether it did.
func (n *node) sillyRename(ctx context.Context, name string) (bool, syscall.Errno) {
	if !n.m.faults.Load().SillyRename {
		return false, 0
	}
	ci := n.GetChild(name)
	if ci == nil {
		return false, 0
	}
	c, ok := ci.Operations().(*node)
	if !ok || c.opens.Load() <= 0 {
		return false, 0
	}
	from := n.child(name)
	silly := n.child(fmt.Sprintf(".nfs%016x", ci.StableAttr().Ino<<20^n.m.sillySeq.Add(1)))
	if err := os.Rename(from, silly); err != nil {
		return false, fs.ToErrno(err)
	}
	c.sillyMu.Lock()
	c.sillyPath = silly
	c.sillyMu.Unlock()
	n.m.count.add(cSillyRename, 1)
	n.m.trace(ctx, "silly-rename", from, silly)
	return true, 0
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	if done, errno := n.sillyRename(ctx, name); done || errno != 0 {
		return errno
	}
	errno := n.LoopbackNode.Unlink(ctx, name)
	if errno == 0 {
		n.m.trace(ctx, "unlink", n.child(name))
	}
	return errno
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	errno := n.LoopbackNode.Rmdir(ctx, name)
	if errno == 0 {
		n.m.trace(ctx, "rmdir", n.child(name))
	}
	return errno
}

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	np, ok := newParent.(*node)
	if !ok {
		return syscall.EXDEV
	}
	to := np.child(newName)
	existed := exists(to)
	if flags == 0 {
		if _, errno := np.sillyRename(ctx, newName); errno != 0 {
			return errno
		}
	}
	errno := n.LoopbackNode.Rename(ctx, name, np.LoopbackNode, newName, flags)
	if errno != 0 {
		return errno
	}
	n.m.trace(ctx, "rename", n.child(name), to)
	switch {
	case existed:
		clearBorn(to)
	case np.m.faults.Load().DelayNewEntries > 0:
		np.m.markSeen(to)
		markBorn(to)
	}
	return errno
}

// exists reports whether the backing path exists now.
func exists(path string) bool {
	var st unix.Stat_t
	return unix.Lstat(path, &st) == nil
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, fuseFlags, errno := n.LoopbackNode.Open(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	if n.m.faults.Load().NoCloseToOpen {
		fuseFlags |= fuse.FOPEN_KEEP_CACHE
		n.m.count.add(cKeptCache, 1)
	} else {
		// Close-to-open: without KEEP_CACHE the kernel drops the
		// cached pages on open; drop the cached attributes too, so
		// the size and times come fresh from the server.
		fuseFlags &^= fuse.FOPEN_KEEP_CACHE
		n.NotifyContent(-1, 0)
	}
	return n.wrap(n.EmbeddedInode(), fh), fuseFlags, 0
}

// wrap turns go-fuse's loopback file into a handle that tracks opens.
func (n *node) wrap(ch *fs.Inode, fh fs.FileHandle) fs.FileHandle {
	lf, ok := fh.(*fs.LoopbackFile)
	if !ok {
		return fh
	}
	c, ok := ch.Operations().(*node)
	if !ok {
		return fh
	}
	c.opens.Add(1)
	return &handle{LoopbackFile: lf, n: c}
}

// handle is an open file of a mount.
type handle struct {
	*fs.LoopbackFile
	n      *node
	closed sync.Once // the open is counted off once, at the first FLUSH or at RELEASE
}

// PassthroughFd refuses passthrough: it would bypass the page cache and the
// counters.
func (h *handle) PassthroughFd() (int, bool) { return -1, false }

// Read reads into buf itself, so the reply (and the ReadBytes counter)
// holds the bytes actually read, not the size asked for.
func (h *handle) Read(ctx context.Context, buf []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	// The loopback file hands out its descriptor only this way; it
	// stays open until Release, which never runs during a READ.
	fd, ok := h.LoopbackFile.PassthroughFd()
	if !ok {
		return nil, syscall.EBADF
	}
	n, err := syscall.Pread(fd, buf, off)
	if err != nil {
		return nil, fs.ToErrno(err)
	}
	return fuse.ReadResultData(buf[:n]), 0
}

// Flush runs at every close(2) of the file, synchronously; RELEASE follows
// later in the background. An NFS client counts the file closed at close(2),
// so the open count for silly renames drops here.
func (h *handle) Flush(ctx context.Context) syscall.Errno {
	errno := h.LoopbackFile.Flush(ctx)
	h.closed.Do(h.close)
	return errno
}

func (h *handle) Release(ctx context.Context) syscall.Errno {
	errno := h.LoopbackFile.Release(ctx)
	h.closed.Do(h.close)
	return errno
}

// close counts the handle off its node and removes a silly-renamed file at
// the last close.
func (h *handle) close() {
	if h.n.opens.Add(-1) != 0 {
		return
	}
	h.n.sillyMu.Lock()
	silly := h.n.sillyPath
	h.n.sillyPath = ""
	h.n.sillyMu.Unlock()
	if silly == "" {
		return
	}
	if err := os.Remove(silly); err != nil && !os.IsNotExist(err) && h.n.m.opt.Logf != nil {
		h.n.m.opt.Logf("nfstest: removing silly-renamed %s: %v", silly, err)
	}
}

func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, fuseFlags, errno := n.LoopbackNode.OpendirHandle(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	if n.m.opt.CacheDir {
		fuseFlags |= fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE
	}
	return &dirHandle{FileHandle: fh, n: n, dir: n.backingPath()}, fuseFlags, 0
}

// dirHandle is an open directory; it hides entries under DelayNewEntries.
type dirHandle struct {
	fs.FileHandle
	n   *node
	dir string
}

func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	r := d.FileHandle.(fs.FileReaddirenter)
	for {
		de, errno := r.Readdirent(ctx)
		if errno != 0 || de == nil || d.n.m.faults.Load().DelayNewEntries <= 0 ||
			de.Name == "." || de.Name == ".." {
			return de, errno
		}
		p := filepath.Join(d.dir, de.Name)
		if born, ok := entryBirth(p); !ok || !d.n.m.hidden(p, born) {
			return de, 0
		}
	}
}

func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	return d.FileHandle.(fs.FileSeekdirer).Seekdir(ctx, off)
}

func (d *dirHandle) Releasedir(ctx context.Context, flags uint32) {
	d.FileHandle.(fs.FileReleasedirer).Releasedir(ctx, flags)
}

func (d *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	return d.FileHandle.(fs.FileFsyncdirer).Fsyncdir(ctx, flags)
}
