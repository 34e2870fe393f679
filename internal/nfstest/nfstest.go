// Package nfstest mounts a directory through FUSE so that it behaves like an
// NFS client mount, for tests only.
//
// Every simulated node gets its own mount of one shared backing directory.
// Each mount is a separate FUSE connection with its own kernel caches, so two
// mounts disagree exactly the way two NFS clients of one filer do: a name one
// mount looked up and missed stays missing through the other for the negative
// entry timeout, directory listings and attributes are cached for the
// attribute timeout, and flock/fcntl locks are local to a mount (like NFS
// without lockd).
//
// Faults that real NFS installations show can be switched on at any time
// (see Faults); each fault counts how often it changed the outcome of an
// operation. Counters counts the requests that reached the FUSE server, that
// is, what a filer would have seen, so tests can measure spool operations per
// IMAP command.
//
// Mounting needs root and /dev/fuse; Available tells why not. The mounts are
// made with mount(2) directly (no fusermount), with passthrough I/O and the
// kernel writeback cache off.
package nfstest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// fsType is the "fuse.<name>" file system type of our mounts, used to find
// stale ones in /proc/self/mountinfo.
const fsType = "nfstest"

// defaultTimeout is the kernel cache timeout used when an Options field is 0.
const defaultTimeout = time.Second

// Options configures one mount.
type Options struct {
	// AttrTimeout is how long the kernel caches attributes (including
	// directory mtimes and cached directory listings). 0 means 1s; a
	// negative value means no caching.
	AttrTimeout time.Duration
	// EntryTimeout is how long the kernel trusts a name it looked up. 0
	// means 1s; negative means no caching.
	EntryTimeout time.Duration
	// NegativeTimeout is how long the kernel remembers that a name did not
	// exist. 0 means 1s; negative means no caching.
	NegativeTimeout time.Duration
	// CacheDir makes the kernel keep directory listings between opendir
	// calls (FOPEN_CACHE_DIR|FOPEN_KEEP_CACHE), until the directory's
	// cached attributes expire and its mtime is seen to change. Off: every
	// opendir+readdir reaches the server.
	CacheDir bool
	// Seed seeds the fault injection. 0 means a seed from the clock, which
	// is logged through Logf.
	Seed int64
	// Logf, if set, receives diagnostic messages (the seed, failed
	// clean-ups). MountT sets it to t.Logf when nil.
	Logf func(format string, args ...any)
	// Trace, if set, is called after every successful change made through
	// the mount (create, mkdir, link, rename, unlink, rmdir, silly rename)
	// with the operation, the calling process and the backing paths; for
	// post-mortems of torture runs. It must be safe for concurrent use.
	Trace func(op string, pid uint32, paths ...string)
}

// DefaultOptions returns the options the zero value stands for: 1-second
// attribute, entry and negative-entry timeouts, no directory cache, a seed
// from the clock.
func DefaultOptions() Options {
	return Options{AttrTimeout: defaultTimeout, EntryTimeout: defaultTimeout, NegativeTimeout: defaultTimeout}
}

// Validate reports options that cannot work.
func (o Options) Validate() error {
	if o.AttrTimeout > time.Hour || o.EntryTimeout > time.Hour || o.NegativeTimeout > time.Hour {
		return errors.New("nfstest: cache timeouts over an hour make no sense in a test")
	}
	return nil
}

// Faults are NFS misbehaviours that can be switched on. All are off in the
// zero value. SetFaults may be called at any time, also while operations are
// running; each operation sees either the old or the new set.
type Faults struct {
	// NoCloseToOpen: open() keeps the kernel's cached data and attributes
	// (FOPEN_KEEP_CACHE, no revalidation), like an NFS mount with nocto.
	// Data read through the mount may be stale until the attribute timeout
	// expires. Off (the default, close-to-open consistency): every open
	// drops cached data and attributes, so the newest data is read.
	// Hit counter: KeptCache (opens that kept the cache).
	NoCloseToOpen bool
	// EStaleRate is the fraction (0..1; 1 and more: all, 0 and less:
	// none) of requests that fail with ESTALE
	// before doing anything: LOOKUP, GETATTR, SETATTR, OPEN, OPENDIR,
	// READDIR, CREATE, MKDIR, MKNOD, SYMLINK, LINK, UNLINK, RMDIR and
	// RENAME. READ, WRITE, FSYNC, FLUSH and RELEASE never fail (the kernel
	// would turn a failed page read into EIO). Note that the kernel retries
	// a path-based system call once on ESTALE, so a program sees ESTALE at
	// about the square of this rate. Hit counter: EStale.
	EStaleRate float64
	// DelayNewEntries hides directory entries that appeared less than
	// this long ago (files: inode change time, which rename and link
	// set; directories: birth time) from LOOKUP and READDIR, unless this mount
	// made them or has shown that name before, or they changed before the
	// delay was switched on. So new names made by other mounts stay
	// invisible for a while (like NFS negative lookups and cached
	// listings), while a name replaced by rename stays visible. It models an NFS client whose
	// cached directory does not yet show other clients' new files.
	// Hit counter: Hidden.
	DelayNewEntries time.Duration
	// NonAtomicExcl performs O_CREAT|O_EXCL as stat-then-create with a
	// small window between, like NFSv2 clients: two mounts racing for one
	// name can both succeed. Hit counters: ExclNonAtomic (creates done this
	// way), ExclRace (creates that found the file created by someone else
	// and still succeeded).
	NonAtomicExcl bool
	// CoarseMtime truncates mtime, ctime and atime in every attribute
	// reply to whole seconds, like a filer with 1-second timestamps.
	// Hit counter: CoarseMtime (attribute replies that had a fraction).
	CoarseMtime bool
	// SillyRename: unlinking (or renaming over) a file that is open through
	// this mount renames it to ".nfsXXXXXXXXXXXXXXXX" in the same
	// directory instead; it is removed on the last close. Every mount sees
	// the .nfs file meanwhile. Hit counter: SillyRename.
	SillyRename bool
}

// Counters counts requests that reached the FUSE server of one mount (what
// a filer would see), and how often each fault fired. Kernel-internal
// traffic without a filer equivalent (FORGET, INTERRUPT, INIT) is not
// counted.
type Counters struct {
	Lookup     int64 // LOOKUP
	Getattr    int64 // GETATTR and STATX (with close-to-open, the first use of a file after each open asks again)
	Readdir    int64 // READDIR and READDIRPLUS requests (one per batch of entries)
	Open       int64 // OPEN of files (CREATE is counted as Create only)
	Read       int64 // READ requests
	ReadBytes  int64 // bytes returned by READ
	Write      int64 // WRITE requests
	WriteBytes int64 // bytes written by WRITE
	Create     int64 // CREATE (open with O_CREAT of a missing name)
	Mkdir      int64
	Rename     int64
	Link       int64
	Unlink     int64
	Rmdir      int64
	Setattr    int64 // SETATTR (chmod, chown, truncate, utimes)
	Fsync      int64 // FSYNC of files
	EStale     int64 // requests failed with an injected ESTALE (hit counter of EStaleRate)

	Opendir  int64 // OPENDIR
	FsyncDir int64 // FSYNCDIR
	Release  int64 // RELEASE and RELEASEDIR (last close of a handle)
	Flush    int64 // FLUSH (every close(2) of a file)
	Access   int64 // ACCESS
	Symlink  int64
	Readlink int64
	Mknod    int64
	Statfs   int64
	Xattr    int64 // GETXATTR, LISTXATTR, SETXATTR, REMOVEXATTR
	Other    int64 // anything else that reached the server (LSEEK, FALLOCATE, ...)

	// Fault hit counters.
	KeptCache     int64 // opens that kept the page cache (NoCloseToOpen)
	Hidden        int64 // directory entries hidden from LOOKUP or READDIR (DelayNewEntries)
	ExclNonAtomic int64 // O_EXCL creates done as stat-then-create (NonAtomicExcl)
	ExclRace      int64 // of those, creates that lost the race and still succeeded
	CoarseMtime   int64 // attribute replies whose times were truncated (CoarseMtime)
	SillyRename   int64 // files renamed to .nfsXXXX instead of removed (SillyRename)
}

// Mount is one FUSE mount of a backing directory.
type Mount struct {
	// Dir is the mount point: use paths under it.
	Dir string
	// Backing is the directory the mount shows.
	Backing string

	opt    Options
	server *fuse.Server
	root   *node

	faultsMu sync.Mutex // serializes SetFaults
	faults   atomic.Pointer[Faults]
	delayOn  atomic.Int64 // UnixNano when DelayNewEntries was switched on
	count    counters

	rngMu sync.Mutex // guards rng
	rng   *rand.Rand

	seenMu sync.Mutex          // guards seen
	seen   map[string]struct{} // backing paths of entries shown or made (DelayNewEntries)

	sillySeq atomic.Uint64

	unmountOnce sync.Once
	unmountErr  error
}

// Available returns nil when FUSE mounts can be made here (root and a
// usable /dev/fuse), else the reason why not.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("nfstest: FUSE mounts need root (mount(2) without fusermount)")
	}
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("nfstest: /dev/fuse not usable: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("nfstest: closing /dev/fuse: %w", err)
	}
	return nil
}

func timeout(d time.Duration) *time.Duration {
	switch {
	case d == 0:
		d = defaultTimeout
	case d < 0:
		d = 0
	}
	return &d
}

// New mounts backing on mountpoint (an existing, empty directory). The
// caller must call Unmount.
func New(backing, mountpoint string, opt Options) (*Mount, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	if err := Available(); err != nil {
		return nil, err
	}
	backing, err := filepath.Abs(backing)
	if err != nil {
		return nil, fmt.Errorf("nfstest: backing path: %w", err)
	}
	mountpoint, err = filepath.Abs(mountpoint)
	if err != nil {
		return nil, fmt.Errorf("nfstest: mount point: %w", err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(backing, &st); err != nil {
		return nil, fmt.Errorf("nfstest: backing directory %s: %w", backing, err)
	}
	if opt.Seed == 0 {
		opt.Seed = time.Now().UnixNano()
		if opt.Logf != nil {
			opt.Logf("nfstest: fault seed %d for mount of %s", opt.Seed, backing)
		}
	}
	m := &Mount{
		Dir:     mountpoint,
		Backing: backing,
		opt:     opt,
		rng:     rand.New(rand.NewPCG(uint64(opt.Seed), uint64(opt.Seed)^0x9e3779b97f4a7c15)),
		seen:    make(map[string]struct{}),
	}
	m.faults.Store(&Faults{})

	lr := &fs.LoopbackRoot{Path: backing, Dev: uint64(st.Dev)}
	m.root = &node{LoopbackNode: &fs.LoopbackNode{RootData: lr}, m: m}
	lr.RootNode = m.root

	fopt := &fs.Options{
		AttrTimeout:     timeout(opt.AttrTimeout),
		EntryTimeout:    timeout(opt.EntryTimeout),
		NegativeTimeout: timeout(opt.NegativeTimeout),
		MountOptions: fuse.MountOptions{
			DirectMountStrict: true,
			// Like an NFS mount: everybody may use it (tests drop
			// privileges for mail processes).
			AllowOther: true,
			FsName:     fmt.Sprintf("nfstest-%d:%s", os.Getpid(), backing),
			Name:       fsType,
			// Passthrough I/O bypasses the page cache and our
			// counters; never let the kernel use it.
			DisabledCapabilities: fuse.CAP_PASSTHROUGH,
			// EnableLocks stays off: flock and fcntl locks stay
			// inside one mount, like NFS without lockd.
			// ExplicitDataCacheControl stays off: the kernel
			// drops cached pages when it sees the mtime change.
		},
	}
	raw := &rawFS{RawFileSystem: fs.NewNodeFS(m.root, fopt), m: m}
	server, err := fuse.NewServer(raw, mountpoint, &fopt.MountOptions)
	if err != nil {
		return nil, fmt.Errorf("nfstest: mounting %s on %s: %w", backing, mountpoint, err)
	}
	go server.Serve()
	if err := server.WaitMount(); err != nil {
		_ = server.Unmount()
		return nil, fmt.Errorf("nfstest: waiting for mount on %s: %w", mountpoint, err)
	}
	m.server = server
	return m, nil
}

// MountT mounts backing on a fresh t.TempDir() and unmounts it in
// t.Cleanup, also when the test failed. It skips the test when FUSE mounts
// cannot be made here, and fails it when mounting fails.
func MountT(t testing.TB, backing string, opt Options) *Mount {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("no NFS-like test mount: %v", err)
	}
	if opt.Logf == nil {
		opt.Logf = t.Logf
	}
	mnt := t.TempDir()
	m, err := New(backing, mnt, opt)
	if err != nil {
		t.Fatalf("nfstest mount: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Unmount(); err != nil {
			t.Errorf("nfstest unmount of %s: %v", m.Dir, err)
		}
	})
	return m
}

// SetFaults switches the fault set of this mount.
func (m *Mount) SetFaults(f Faults) {
	m.faultsMu.Lock()
	defer m.faultsMu.Unlock()
	if f.DelayNewEntries > 0 && m.faults.Load().DelayNewEntries <= 0 {
		// Entries that existed before the delay was switched on are
		// old news: only later changes are hidden.
		m.delayOn.Store(time.Now().UnixNano())
	}
	m.faults.Store(&f)
}

// delaySince is when DelayNewEntries was last switched on.
func (m *Mount) delaySince() time.Time {
	return time.Unix(0, m.delayOn.Load())
}

// Faults returns the fault set in effect.
func (m *Mount) Faults() Faults {
	return *m.faults.Load()
}

// Counters returns a snapshot of the counters since the mount or the last
// ResetCounters. Requests still in flight may be counted or not.
func (m *Mount) Counters() Counters {
	return m.count.snapshot()
}

// ResetCounters sets all counters to zero.
func (m *Mount) ResetCounters() {
	m.count.reset()
}

// Unmount unmounts the file system and stops its server. Files still open
// through the mount do not block it: after a few tries the mount is
// detached and the FUSE connection aborted. Calling it again returns the
// first result.
func (m *Mount) Unmount() error {
	m.unmountOnce.Do(func() {
		m.unmountErr = m.unmount()
	})
	return m.unmountErr
}

func (m *Mount) unmount() error {
	var st syscall.Stat_t
	statErr := syscall.Stat(m.Dir, &st)
	done := make(chan error, 1)
	go func() { done <- m.server.Unmount() }()
	select {
	case err := <-done:
		if err == nil {
			return nil
		}
	case <-time.After(5 * time.Second):
	}
	// Busy (open files, a cwd inside) or hung: detach it and abort the
	// connection so the server loop ends.
	detachErr := syscall.Unmount(m.Dir, syscall.MNT_DETACH)
	if statErr == nil {
		abortConnection(uint64(st.Dev))
	}
	if detachErr != nil && !errors.Is(detachErr, syscall.EINVAL) {
		return fmt.Errorf("nfstest: detaching %s: %w", m.Dir, detachErr)
	}
	stopped := make(chan struct{})
	go func() { m.server.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(2 * time.Second):
		// Without fusectl the connection cannot be aborted: the
		// kernel ends it, and with it the server, when the last
		// file open through the detached mount is closed.
		if m.opt.Logf != nil {
			m.opt.Logf("nfstest: %s detached while busy; its server stops at the last close", m.Dir)
		}
	}
	return nil
}

// abortConnection aborts the FUSE connection of the file system on device
// dev through /sys/fs/fuse/connections.
func abortConnection(dev uint64) {
	minor := dev & 0xff
	minor |= (dev >> 12) & 0xfffff00
	major := (dev >> 8) & 0xfff
	if major != 0 {
		return
	}
	p := fmt.Sprintf("/sys/fs/fuse/connections/%d/abort", minor)
	_ = os.WriteFile(p, []byte("1"), 0)
}
