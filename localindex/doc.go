// Package localindex is the per-node, disposable index of mailboxes on local
// disk. Per user it keeps a directory; per mailbox a small summary file
// (MESSAGES, UNSEEN, RECENT, UIDNEXT, UIDVALIDITY, SIZE and the spool state it
// was taken from) that answers STATUS, and an index file with one record per
// message: UID, file name, flags, keywords, sizes, internal date, the cached
// ENVELOPE and BODYSTRUCTURE (opaque bytes the caller serialises) and the
// header fields SEARCH, SORT and THREAD need. Changes after a full index file
// go to an append-only log beside it, compacted into a new index file when it
// grows.
//
// Nothing here is ever trusted over the spool. Every file carries a magic, a
// format version, a length and a CRC32C; a missing, partial, corrupt or
// foreign file is reported as ErrNotFound or ErrCorrupt (and removed), and the
// caller rebuilds it from the spool. Writes go to a temporary file that is
// renamed into place, so a crash leaves the old file or the new one, and a
// torn log entry is detected by its checksum.
//
// Callers must treat every write error as "serve from the spool": an index on
// a full or failing disk is logged and counted (Stats, Degraded) and never
// fails an IMAP command.
//
// The Index is safe for concurrent use. A Mailbox (one mailbox's index in
// memory) belongs to one session and is not.
package localindex
