package nfstest

import "sync/atomic"

// Indexes of the live counters; the order matches Counters.fields.
const (
	cLookup = iota
	cGetattr
	cReaddir
	cOpen
	cRead
	cReadBytes
	cWrite
	cWriteBytes
	cCreate
	cMkdir
	cRename
	cLink
	cUnlink
	cRmdir
	cSetattr
	cFsync
	cEStale
	cOpendir
	cFsyncDir
	cRelease
	cFlush
	cAccess
	cSymlink
	cReadlink
	cMknod
	cStatfs
	cXattr
	cOther
	cKeptCache
	cHidden
	cExclNonAtomic
	cExclRace
	cCoarseMtime
	cSillyRename
	numCounters
)

// counters is the live, atomically updated form of Counters.
type counters [numCounters]atomic.Int64

func (c *counters) add(i int, n int64) { c[i].Add(n) }

// fields returns pointers to the fields of c in the order of the c*
// constants.
func (c *Counters) fields() [numCounters]*int64 {
	return [numCounters]*int64{
		&c.Lookup, &c.Getattr, &c.Readdir, &c.Open, &c.Read, &c.ReadBytes,
		&c.Write, &c.WriteBytes, &c.Create, &c.Mkdir, &c.Rename, &c.Link,
		&c.Unlink, &c.Rmdir, &c.Setattr, &c.Fsync, &c.EStale,
		&c.Opendir, &c.FsyncDir, &c.Release, &c.Flush, &c.Access, &c.Symlink,
		&c.Readlink, &c.Mknod, &c.Statfs, &c.Xattr, &c.Other,
		&c.KeptCache, &c.Hidden, &c.ExclNonAtomic, &c.ExclRace, &c.CoarseMtime, &c.SillyRename,
	}
}

func (c *counters) snapshot() Counters {
	var out Counters
	for i, p := range out.fields() {
		*p = c[i].Load()
	}
	return out
}

func (c *counters) reset() {
	for i := range c {
		c[i].Store(0)
	}
}

// Sub returns c - old field by field: what happened between two snapshots.
func (c Counters) Sub(old Counters) Counters {
	var out Counters
	cf, of := c.fields(), old.fields()
	for i, p := range out.fields() {
		*p = *cf[i] - *of[i]
	}
	return out
}
