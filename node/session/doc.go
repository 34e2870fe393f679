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
//     and a cache of sizes and dates. Each session keeps its own view (the
//     messages its client knows, by sequence number) and brings it up to the
//     shared snapshot in Poll and Idle, sending EXPUNGE, EXISTS, RECENT,
//     FLAGS and FETCH FLAGS. Changes made by one session are seen by the
//     others at once; IDLE is woken by a coalescing channel.
//   - Changes made by other nodes and by MTAs are found by a poller
//     goroutine per selected mailbox (Config.PollInterval) and by the
//     update check after commands (Config.MinSyncInterval). The check
//     flushes the NFS client's cached attributes with chown(path, -1, -1)
//     before it trusts an unchanged stamp (DESIGN rule 5) and then costs
//     four GETATTRs and three SETATTRs, no listing and no read.
//   - STATUS of a mailbox no session of the node has selected is answered
//     from a per-node cache while the maildir's stamp (taken after the same
//     attribute flush) is unchanged; else from a Sync.
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
