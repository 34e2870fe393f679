// Package torture is the spool torture test: several writer processes, each
// on its own NFS-like mount (internal/nfstest) of one spool, deliver, flag,
// move new/ to cur/, copy and expunge in the same mailboxes for a bounded
// time, while an "MTA" process delivers straight into new/ with
// procmail-style names. Afterwards, also after a writer was killed with
// SIGKILL mid-run, a checker proves from the writers' journals and the
// spool itself that every delivered and not expunged message is there
// exactly once, UIDs are unique and never reused, UIDVALIDITY is unchanged,
// the last flags set are the flags on disk and every uidlist parses.
//
// The writers are re-executions of the test binary (see RunChild), so a
// SIGKILL is real. Each writer session appends every operation to its own
// journal file on local disk: a "begin" line before the spool operation and
// a "done" line after it returned, each fsynced. A message whose operation
// was begun but not done may be absent or present once, never twice.
//
// Writer sessions also take over ("adopt") the MTA's messages that fall to
// them by number, so mail delivered into new/ is flagged and expunged too,
// racing with other nodes moving it to cur/.
//
// Each variant runs every NFS fault of internal/nfstest on all mounts (one
// variant per fault, two with a SIGKILL, one with everything at once).
// Environment:
//
//	NFSIMAP_TORTURE_DURATION  run time of each variant (default 8s; ten
//	                          variants, about 100 s in all with -race)
//	NFSIMAP_TORTURE_WRITERS   writer processes (default 3)
//	NFSIMAP_TORTURE_SEED      repeat a run's randomness (the seed is logged)
//	NFSIMAP_TORTURE_KEEP      keep each variant's spool, journals, per-mount
//	                          change traces and every uidlist version there
//
// A long run: NFSIMAP_TORTURE_DURATION=10m go test -race -timeout 3h
// -run TestTorture ./internal/torture/ (the test refuses to start when
// -timeout is too short for all variants; one variant:
// -run TestTorture/kill).
package torture
