// Package nfslock is the dot-lock nfsimap uses for mutual exclusion on a
// mail spool shared over NFS (DESIGN.md, rule 2). It never uses flock,
// fcntl locks or mmap: those are broken or absent on many NFS setups.
//
// The lock for a file F is the file "F.lock", the name Dovecot uses, so
// Dovecot and nfsimap can share a spool during a migration.
//
// # Taking the lock
//
// Acquire writes a temp file with a unique name in the lock's directory
// (".temp.HOST.PID.NONCE"), containing "PID:HOST:NONCE\n", and link(2)s it
// to "F.lock". link fails when "F.lock" exists, which makes it exclusive
// even where O_EXCL is not (old NFS). Over NFS a link reply can be lost and
// the retransmitted request then fails although the first one worked, so on
// any link error the temp file is stat'ed: a link count of 2 means the link
// was made and the lock is ours. The temp file is always removed.
//
// # Stale locks
//
// A lock that was not changed for Options.StaleAge is broken: its mtime (by
// our clock), or the time we last saw it change while waiting, whichever is
// later, is older than StaleAge. A lock written by this host (same host
// name) whose process is gone (kill(pid, 0) fails with ESRCH) is broken at
// once. Content that cannot be parsed (empty, garbage) makes the lock
// foreign: only its age can break it.
//
// Breaking is careful about a race between two waiters: the lock file is
// first renamed to a private name, then checked to be the very file that was
// judged stale (same inode, size, mtime and content). Only then is it
// removed; otherwise it is linked back into place.
//
// # Holding the lock
//
// The holder refreshes the lock's mtime (Refresh), by default from a
// goroutine every StaleAge/4. Refresh first checks that the file at the
// lock path still holds the holder's content (its nonce makes it unique)
// and returns ErrStolen when it does not. A Refresh within StaleAge/8 of
// the last touch does nothing: nobody may break a lock that young, so a
// lock held for milliseconds costs no refresh. Release renames the lock to
// a private name, checks that the moved file holds our content, and
// removes it; a stolen lock is linked back and ErrStolen returned.
//
// # System calls
//
// Lock files are handled with plain open, read, write and close (not
// os.File, which registers each file with Go's poller at the cost of
// fcntl and epoll_ctl calls). An uncontended Acquire is open, write,
// close, link and unlink of the temp file; Release is rename, open, read,
// close and unlink; a Refresh that is not skipped is open, read,
// utimensat, fstat and close. Each of them is retried on ESTALE.
//
// # Limits
//
// Host names must be unique among the machines (and pid namespaces) sharing
// the spool: a lock from the same host name whose pid does not exist here is
// taken over at once. Clocks of the machines and the file server should
// agree to well within StaleAge. Dovecot reads "PID:HOST:NONCE" as host
// "HOST:NONCE", so it treats nfsimap's locks as foreign and breaks them only
// by age, which is safe.
package nfslock
