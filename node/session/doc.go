// Package session is nfsimap's IMAP backend: it implements go-imap v2's
// imapserver.Session (with NAMESPACE, MOVE, APPENDLIMIT, and SORT/THREAD
// for the front's command layer) on the maildir spool of package maildir.
//
// What it does, and how:
//
//   - One Factory per node makes the sessions of authenticated users (the
//     front logs them in and hands the connection over with PREAUTH).
//   - All sessions of a node that select one maildir share one in-memory
//     state (a registry entry, reference counted): an immutable snapshot of
//     the messages (UID, file, flags, keywords), the \Recent bookkeeping
//     and the mailbox's local index. Each session keeps its own view (the
//     messages its client knows, by sequence number) and brings it up to the
//     shared snapshot in Poll and Idle, sending EXPUNGE, EXISTS, RECENT,
//     FLAGS and FETCH FLAGS. Changes made by one session are seen by the
//     others at once; IDLE is woken by a coalescing channel.
//   - Changes made by other nodes and by MTAs are found by a poller
//     goroutine per selected mailbox (Config.PollInterval) and by the
//     update check after commands (Config.MinSyncInterval). The check
//     stats new/, cur/ and dovecot-uidlist with statx(AT_STATX_FORCE_SYNC),
//     which makes the NFS client revalidate them with the filer (DESIGN
//     rule 5): three GETATTRs, no listing and no read (spool.go explains
//     the choice and what the alternatives cost).
//   - The local index (Config.Index, package localindex) keeps per mailbox
//     a summary for STATUS and the message records (file, flags, sizes,
//     dates, ENVELOPE, BODYSTRUCTURE, the header fields of SORT and
//     THREAD), saved with the spool state they equal. STATUS of an
//     unchanged mailbox costs two GETATTRs (new/ and cur/), SELECT three
//     and no listing, FETCH of those items nothing after the first time
//     (index.go). The selected mailbox's index lives in its registry
//     entry, loaded at the first SELECT on the node and saved and dropped
//     when the last session leaves it; a node reads nothing of users it
//     does not serve. Every index error means "serve from the spool".
//   - STATUS of a mailbox no session of the node has selected is answered
//     from its summary in the local index (or, without one, a bounded
//     in-memory cache) while new/ and cur/ are unchanged; else from a
//     Sync, which does not move new/ to cur/.
//   - The shared state's mutex is never held during spool I/O. Spool
//     operations on one maildir go through one maildir.Mailbox handle per
//     node (which serializes them); message bodies are read directly by
//     file name without waiting for that handle.
//   - SEARCH runs a matcher (Matcher) over go-imap's SearchCriteria, shared
//     with SORT and THREAD. FETCH serves CRLF: bare LFs of the stored files
//     are converted before any extraction, and RFC822.SIZE counts the CRLF
//     form.
//
// \Recent (IMAP4rev1) is kept per node: a message is recent in the first
// read-write session of this node that sees it (EXAMINE shows it without
// taking it). A session of the same user on another node has its own
// count, so in a cluster a message can be \Recent once per node, and the
// count is forgotten when the last session of a node leaves the mailbox
// (messages still in new/ are recent again then).
package session
