// Package maildir reads and changes one user's mail on the shared spool:
// maildirs with Maildir++ folders, Dovecot's dovecot-uidlist (version 3),
// dovecot-keywords and subscriptions files, and the layout templates that
// say where a user's INBOX and folders live.
//
// The spool is the only truth and several nodes change it at once. Every
// operation here follows the project's NFS rules:
//
//   - Mutual exclusion is by dot-lock files only (package nfslock), never
//     fcntl, flock or mmap. The uidlist, keywords and subscriptions files
//     are changed only under their dot-lock and replaced atomically (write
//     a temp file, fsync, rename, fsync the directory).
//   - Whatever is read under a lock is opened again under that lock, so the
//     NFS client revalidates it (close-to-open).
//   - Messages are written to tmp/, fsynced and renamed (or linked) into
//     new/ or cur/. Flags live in file names and change by rename.
//   - ENOENT on a message file means another node renamed or removed it:
//     the operation rescans the maildir and tries again, and never shows the
//     error to the user. ESTALE gets a bounded retry.
//   - The unique part of a file name (before ':') never changes; it is the
//     key of the uidlist, so a UID stays with a message across renames and
//     across nodes, and the same unique part seen in new/ and in cur/ is one
//     message.
//
// What NFS clients cache, and how this package copes (each was reproduced
// with internal/nfstest mounts, see TestNFSMounts):
//
//   - A name another node created or removed a moment ago may look missing
//     or present here. A file that must be created only if absent (a new
//     uidlist, keywords or subscriptions file) is linked into place, which
//     fails with EEXIST if the filer has it, and the read is retried.
//     Directories made by another node a moment ago are waited for (a few
//     seconds at most) rather than reported missing.
//   - A file read under its dot-lock is first revalidated with
//     chown(path, -1, -1) (a SETATTR that returns fresh attributes and so
//     drops stale cached data, also on "nocto" mounts), then opened anew.
//   - A cached listing may still show an expunged file, or miss a renamed
//     one. UIDs are therefore kept in dovecot-uidlist for
//     Options.ExpungeGrace after a file was last seen, so a late listing
//     never gives an old message a new UID.
//   - A listing is read in several readdir calls (NFS: READDIR requests),
//     so a file renamed meanwhile (a flag change elsewhere) can be missed
//     under both names. A message with a UID that a listing misses for
//     the first time makes the maildir be listed again (more times while
//     new/ or cur/ keep changing): a snapshot never lacks a message that
//     is on disk below its highest UID, which a session could only show
//     again at the next SELECT (TestSnapshotHasEveryLowerUID).
//   - Two names of one inode are one message; nothing is unlinked to tidy
//     them up except on expunge, because either name may be a stale cache
//     entry.
//   - After ENOENT the rescans back off (up to a second apart): a cached
//     listing needs its attribute timeout to expire.
//   - On filers with whole-second mtimes, a change made by another node in
//     the same second as our listing leaves the mtime as it was, and the
//     client keeps serving the stale listing. ListingGuard finds such
//     listings and makes the client drop them (a dot-file marker created
//     and removed in the directory), then lists once that is safe: the
//     change shows within about 3 s (TestCoarseMtimeListingFlush).
//
// Concurrency: a *Store and a *Mailbox are safe for concurrent use by
// several goroutines; each keeps only a cache of what it last read from the
// spool. Any number of Stores and Mailboxes, in this process or on other
// nodes, may work on the same maildir at once.
package maildir
