package nfstest

import (
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// rawFS sits between the FUSE server and go-fuse's node bridge: it counts
// every request as it arrives (what a filer would see) and injects ESTALE.
type rawFS struct {
	fuse.RawFileSystem
	m *Mount
}

// stale counts request i and decides whether it fails with an injected
// ESTALE.
func (r *rawFS) stale(i int) bool {
	r.m.count.add(i, 1)
	rate := r.m.faults.Load().EStaleRate
	if rate <= 0 {
		return false
	}
	r.m.rngMu.Lock()
	hit := r.m.rng.Float64() < rate
	r.m.rngMu.Unlock()
	if hit {
		r.m.count.add(cEStale, 1)
	}
	return hit
}

func (r *rawFS) count(i int) { r.m.count.add(i, 1) }

const estale = fuse.Status(syscall.ESTALE)

func (r *rawFS) Lookup(cancel <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	if r.stale(cLookup) {
		return estale
	}
	return r.RawFileSystem.Lookup(cancel, h, name, out)
}

func (r *rawFS) GetAttr(cancel <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	if r.stale(cGetattr) {
		return estale
	}
	return r.RawFileSystem.GetAttr(cancel, in, out)
}

func (r *rawFS) Statx(cancel <-chan struct{}, in *fuse.StatxIn, out *fuse.StatxOut) fuse.Status {
	if r.stale(cGetattr) {
		return estale
	}
	st := r.RawFileSystem.Statx(cancel, in, out)
	if st.Ok() && r.m.faults.Load().CoarseMtime {
		x := &out.Statx
		if x.Mtime.Nsec != 0 || x.Ctime.Nsec != 0 || x.Atime.Nsec != 0 {
			r.m.count.add(cCoarseMtime, 1)
		}
		x.Mtime.Nsec, x.Ctime.Nsec, x.Atime.Nsec, x.Btime.Nsec = 0, 0, 0, 0
	}
	return st
}

func (r *rawFS) SetAttr(cancel <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	if r.stale(cSetattr) {
		return estale
	}
	return r.RawFileSystem.SetAttr(cancel, in, out)
}

func (r *rawFS) Mknod(cancel <-chan struct{}, in *fuse.MknodIn, name string, out *fuse.EntryOut) fuse.Status {
	if r.stale(cMknod) {
		return estale
	}
	return r.RawFileSystem.Mknod(cancel, in, name, out)
}

func (r *rawFS) Mkdir(cancel <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	if r.stale(cMkdir) {
		return estale
	}
	return r.RawFileSystem.Mkdir(cancel, in, name, out)
}

func (r *rawFS) Unlink(cancel <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	if r.stale(cUnlink) {
		return estale
	}
	return r.RawFileSystem.Unlink(cancel, h, name)
}

func (r *rawFS) Rmdir(cancel <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	if r.stale(cRmdir) {
		return estale
	}
	return r.RawFileSystem.Rmdir(cancel, h, name)
}

func (r *rawFS) Rename(cancel <-chan struct{}, in *fuse.RenameIn, oldName, newName string) fuse.Status {
	if r.stale(cRename) {
		return estale
	}
	return r.RawFileSystem.Rename(cancel, in, oldName, newName)
}

func (r *rawFS) Link(cancel <-chan struct{}, in *fuse.LinkIn, name string, out *fuse.EntryOut) fuse.Status {
	if r.stale(cLink) {
		return estale
	}
	return r.RawFileSystem.Link(cancel, in, name, out)
}

func (r *rawFS) Symlink(cancel <-chan struct{}, h *fuse.InHeader, target, name string, out *fuse.EntryOut) fuse.Status {
	if r.stale(cSymlink) {
		return estale
	}
	return r.RawFileSystem.Symlink(cancel, h, target, name, out)
}

func (r *rawFS) Readlink(cancel <-chan struct{}, h *fuse.InHeader) ([]byte, fuse.Status) {
	r.count(cReadlink)
	return r.RawFileSystem.Readlink(cancel, h)
}

func (r *rawFS) Access(cancel <-chan struct{}, in *fuse.AccessIn) fuse.Status {
	r.count(cAccess)
	return r.RawFileSystem.Access(cancel, in)
}

func (r *rawFS) GetXAttr(cancel <-chan struct{}, h *fuse.InHeader, attr string, dest []byte) (uint32, fuse.Status) {
	r.count(cXattr)
	return r.RawFileSystem.GetXAttr(cancel, h, attr, dest)
}

func (r *rawFS) ListXAttr(cancel <-chan struct{}, h *fuse.InHeader, dest []byte) (uint32, fuse.Status) {
	r.count(cXattr)
	return r.RawFileSystem.ListXAttr(cancel, h, dest)
}

func (r *rawFS) SetXAttr(cancel <-chan struct{}, in *fuse.SetXAttrIn, attr string, data []byte) fuse.Status {
	r.count(cXattr)
	return r.RawFileSystem.SetXAttr(cancel, in, attr, data)
}

func (r *rawFS) RemoveXAttr(cancel <-chan struct{}, h *fuse.InHeader, attr string) fuse.Status {
	r.count(cXattr)
	return r.RawFileSystem.RemoveXAttr(cancel, h, attr)
}

func (r *rawFS) Create(cancel <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	if r.stale(cCreate) {
		return estale
	}
	return r.RawFileSystem.Create(cancel, in, name, out)
}

func (r *rawFS) Tmpfile(cancel <-chan struct{}, in *fuse.CreateIn, out *fuse.CreateOut) fuse.Status {
	r.count(cCreate)
	return r.RawFileSystem.Tmpfile(cancel, in, out)
}

func (r *rawFS) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	if r.stale(cOpen) {
		return estale
	}
	return r.RawFileSystem.Open(cancel, in, out)
}

func (r *rawFS) Read(cancel <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	r.count(cRead)
	res, st := r.RawFileSystem.Read(cancel, in, buf)
	if st.Ok() && res != nil {
		r.m.count.add(cReadBytes, int64(res.Size()))
	}
	return res, st
}

func (r *rawFS) Lseek(cancel <-chan struct{}, in *fuse.LseekIn, out *fuse.LseekOut) fuse.Status {
	r.count(cOther)
	return r.RawFileSystem.Lseek(cancel, in, out)
}

func (r *rawFS) Release(cancel <-chan struct{}, in *fuse.ReleaseIn) {
	r.count(cRelease)
	r.RawFileSystem.Release(cancel, in)
}

func (r *rawFS) Write(cancel <-chan struct{}, in *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	r.count(cWrite)
	n, st := r.RawFileSystem.Write(cancel, in, data)
	if st.Ok() {
		r.m.count.add(cWriteBytes, int64(n))
	}
	return n, st
}

func (r *rawFS) Writev(cancel <-chan struct{}, in *fuse.WriteIn, data [][]byte) (uint32, fuse.Status) {
	n, st := r.RawFileSystem.Writev(cancel, in, data)
	if st == fuse.ENOSYS {
		// The server falls back to Write, which counts.
		return n, st
	}
	r.count(cWrite)
	if st.Ok() {
		r.m.count.add(cWriteBytes, int64(n))
	}
	return n, st
}

func (r *rawFS) CopyFileRange(cancel <-chan struct{}, in *fuse.CopyFileRangeIn) (uint32, fuse.Status) {
	r.count(cOther)
	return r.RawFileSystem.CopyFileRange(cancel, in)
}

func (r *rawFS) Ioctl(cancel <-chan struct{}, in *fuse.IoctlIn, inbuf []byte, out *fuse.IoctlOut, outbuf []byte) fuse.Status {
	r.count(cOther)
	return r.RawFileSystem.Ioctl(cancel, in, inbuf, out, outbuf)
}

func (r *rawFS) Flush(cancel <-chan struct{}, in *fuse.FlushIn) fuse.Status {
	r.count(cFlush)
	return r.RawFileSystem.Flush(cancel, in)
}

func (r *rawFS) Fsync(cancel <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	r.count(cFsync)
	return r.RawFileSystem.Fsync(cancel, in)
}

func (r *rawFS) Fallocate(cancel <-chan struct{}, in *fuse.FallocateIn) fuse.Status {
	r.count(cOther)
	return r.RawFileSystem.Fallocate(cancel, in)
}

func (r *rawFS) OpenDir(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	if r.stale(cOpendir) {
		return estale
	}
	return r.RawFileSystem.OpenDir(cancel, in, out)
}

func (r *rawFS) ReadDir(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	if r.stale(cReaddir) {
		return estale
	}
	return r.RawFileSystem.ReadDir(cancel, in, out)
}

func (r *rawFS) ReadDirPlus(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	if r.stale(cReaddir) {
		return estale
	}
	return r.RawFileSystem.ReadDirPlus(cancel, in, out)
}

func (r *rawFS) ReleaseDir(in *fuse.ReleaseIn) {
	r.count(cRelease)
	r.RawFileSystem.ReleaseDir(in)
}

func (r *rawFS) FsyncDir(cancel <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	r.count(cFsyncDir)
	return r.RawFileSystem.FsyncDir(cancel, in)
}

func (r *rawFS) StatFs(cancel <-chan struct{}, h *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	r.count(cStatfs)
	return r.RawFileSystem.StatFs(cancel, h, out)
}

func (r *rawFS) GetLk(cancel <-chan struct{}, in *fuse.LkIn, out *fuse.LkOut) fuse.Status {
	r.count(cOther)
	return r.RawFileSystem.GetLk(cancel, in, out)
}

func (r *rawFS) SetLk(cancel <-chan struct{}, in *fuse.LkIn) fuse.Status {
	r.count(cOther)
	return r.RawFileSystem.SetLk(cancel, in)
}

func (r *rawFS) SetLkw(cancel <-chan struct{}, in *fuse.LkIn) fuse.Status {
	r.count(cOther)
	return r.RawFileSystem.SetLkw(cancel, in)
}
