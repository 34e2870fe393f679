package session

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nfsimap/nfsimap/localindex"
	"github.com/nfsimap/nfsimap/node/maildir"
)

// How the session decides that a maildir has not changed, and what it
// costs on the filer (counted on the NFS-like test mount, one request that
// reaches the filer = one spool operation):
//
// Every change that matters shows in the mtime of a directory: mail
// delivered into new/ changes new/; a flag change (a rename inside cur/),
// an expunge and an APPEND change cur/; moving new/ to cur/ changes both;
// giving UIDs rewrites dovecot-uidlist (a rename in the maildir, which gives
// the file a new inode, size and mtime). A UID is only ever given to a file
// that appeared in new/ or cur/ after the last listing, so for the numbers
// STATUS shows (MESSAGES, UNSEEN, RECENT, UIDNEXT) new/ and cur/ suffice:
// STATUS checks those two. SELECT, NOOP and the poller also check the
// uidlist, which catches what new/ and cur/ cannot: a uidlist rewritten on
// its own (another server rebuilt it with a new UIDVALIDITY).
//
// The NFS client caches attributes (DESIGN rule 5), so each check forces
// revalidation: statx(2) with AT_STATX_FORCE_SYNC, one GETATTR at the filer
// that also refreshes the client's cache and drops a cached directory
// listing whose mtime changed. We measured the alternatives on the test
// mount: chown(path, -1, -1) followed by stat costs a SETATTR and a GETATTR
// per path (twice as much), a plain stat trusts the cache (stale for the
// attribute timeout), and opening a directory does not revalidate it.
// So STATUS of an unchanged mailbox is 2 GETATTRs, SELECT and NOOP 3, as
// long as the client still trusts its cached names of the directories
// above (as an NFS client does while their attributes are fresh; otherwise
// the kernel adds a LOOKUP or GETATTR per expired path level).
//
// Change times can be coarse (whole seconds on some filers; a kernel tick
// on others): a file added within the same tick as the last listing leaves
// the mtime as it was. A state whose newest mtime is less than
// settleTime older than the moment it was taken is therefore never stored
// as a "nothing changed" reference (it is kept as the zero, unknown state),
// so the next check reads the spool again; the first check after the
// change has settled stores it. STATUS's summary applies the rule to new/
// and cur/ alone, the parts it compares (see statusState): the uidlist
// its own Sync has just rewritten must not keep it listing. Reading again
// is not enough on its own where the NFS client caches listings while the
// mtime looks unchanged: maildir's ListingGuard makes the client drop
// such a listing (a marker created and removed in the directory, which
// also moves the mtime, so the next check here reads again) and lists
// once that is safe, about 3 s after the change.

// settleTime is how much older than the moment of the stat an mtime must
// be before an unchanged mtime can be trusted.
const settleTime = 2 * time.Second

// statSpool returns the spool state of the maildir dir: mtime, size and
// inode of new/ and cur/ and, with uidlist, of dovecot-uidlist, each
// revalidated with the filer. A missing new/ or cur/ is an error wrapping
// fs.ErrNotExist; a missing uidlist leaves its fields zero.
func statSpool(dir string, uidlist bool) (localindex.SpoolState, error) {
	var s localindex.SpoolState
	var err error
	if s.NewMtime, s.NewSize, s.NewIno, err = statFresh(filepath.Join(dir, "new")); err != nil {
		return localindex.SpoolState{}, err
	}
	if s.CurMtime, s.CurSize, s.CurIno, err = statFresh(filepath.Join(dir, "cur")); err != nil {
		return localindex.SpoolState{}, err
	}
	if uidlist {
		s.UidlistMtime, s.UidlistSize, s.UidlistIno, err = statFresh(filepath.Join(dir, maildir.UidlistName))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return localindex.SpoolState{}, err
		}
	}
	return s, nil
}

// statFresh stats path with forced revalidation (one GETATTR on NFS),
// retrying ESTALE a few times.
func statFresh(path string) (mtime, size int64, ino uint64, err error) {
	var stx unix.Statx_t
	for range 4 {
		err = unix.Statx(unix.AT_FDCWD, path, unix.AT_STATX_FORCE_SYNC, unix.STATX_TYPE|unix.STATX_MTIME|unix.STATX_SIZE|unix.STATX_INO, &stx)
		if !errors.Is(err, syscall.ESTALE) && !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		return 0, 0, 0, &fs.PathError{Op: "statx", Path: path, Err: err}
	}
	mtime = stx.Mtime.Sec*int64(time.Second) + int64(stx.Mtime.Nsec)
	if mtime == 0 {
		mtime = 1 // 0 means "absent"
	}
	return mtime, int64(stx.Size), stx.Ino, nil
}

// settled returns s when every mtime in it is at least settleTime older
// than takenAt, else the zero (unknown) state.
func settled(s localindex.SpoolState, takenAt time.Time) localindex.SpoolState {
	limit := takenAt.Add(-settleTime).UnixNano()
	if s.NewMtime > limit || s.CurMtime > limit || s.UidlistMtime > limit {
		return localindex.SpoolState{}
	}
	return s
}

// statusState returns the state a STATUS summary is stored with, after
// a Sync (which does not move new/ to cur/) listed the maildir: pre, the
// state of new/ and cur/ taken before it, when both are settled, else the
// zero (unknown) state. The uidlist is left out: STATUS never compares it
// (see sameDirs), and the Sync that gave UIDs to new files has just
// rewritten it, so its fresh mtime would keep a mailbox whose new/ and
// cur/ have long settled from ever being trusted while the uidlist is
// younger than settleTime (every STATUS would list the maildir again).
func statusState(pre localindex.SpoolState, snap *maildir.Snapshot, takenAt time.Time) localindex.SpoolState {
	if len(snap.MovedFromNew) > 0 {
		return localindex.SpoolState{}
	}
	pre.UidlistMtime, pre.UidlistSize, pre.UidlistIno = 0, 0, 0
	return settled(pre, takenAt)
}

// sameDirs compares the new/ and cur/ parts of two known states (what
// STATUS checks).
func sameDirs(a, b localindex.SpoolState) bool {
	if a.IsZero() || b.IsZero() {
		return false
	}
	return a.NewMtime == b.NewMtime && a.CurMtime == b.CurMtime &&
		a.NewSize == b.NewSize && a.CurSize == b.CurSize &&
		a.NewIno == b.NewIno && a.CurIno == b.CurIno
}

// afterSync returns the state a snapshot equals: pre was taken (with
// revalidation) before the Sync listed the maildir. When the Sync gave
// UIDs it rewrote the uidlist under its lock and its stamp holds the
// uidlist as written; that is adopted when new/ and cur/ did not change
// between pre and the Sync's own stamp (else the state stays pre and the
// next check reads the spool once more). A Sync that moved mail from new/
// to cur/ changed the spool itself: the state is unknown.
func afterSync(pre localindex.SpoolState, snap *maildir.Snapshot, takenAt time.Time) localindex.SpoolState {
	if len(snap.MovedFromNew) > 0 {
		return localindex.SpoolState{}
	}
	st := snap.Stamp
	if localindex.TimeNano(st.NewMtime) == pre.NewMtime && localindex.TimeNano(st.CurMtime) == pre.CurMtime && !st.UidlistMtime.IsZero() {
		pre.UidlistMtime = localindex.TimeNano(st.UidlistMtime)
		pre.UidlistSize = st.UidlistSize
		pre.UidlistIno = st.UidlistIno
	}
	return settled(pre, takenAt)
}

// indexFlags maps maildir flags to the index's bits (FlagUser holds
// maildir's P, which IMAP cannot show).
func indexFlags(f maildir.Flags) localindex.Flags {
	var out localindex.Flags
	if f&maildir.FlagSeen != 0 {
		out |= localindex.FlagSeen
	}
	if f&maildir.FlagReplied != 0 {
		out |= localindex.FlagAnswered
	}
	if f&maildir.FlagFlagged != 0 {
		out |= localindex.FlagFlagged
	}
	if f&maildir.FlagTrashed != 0 {
		out |= localindex.FlagDeleted
	}
	if f&maildir.FlagDraft != 0 {
		out |= localindex.FlagDraft
	}
	if f&maildir.FlagPassed != 0 {
		out |= localindex.FlagUser
	}
	return out
}

// messageFromRecord rebuilds a snapshot message from an index record.
func messageFromRecord(r *localindex.Record) (maildir.Message, error) {
	n, err := maildir.ParseName(r.File)
	if err != nil {
		return maildir.Message{}, fmt.Errorf("index record %d: %w", r.UID, err)
	}
	return maildir.Message{UID: r.UID, File: r.File, InNew: r.InNew, Name: n, Flags: n.Flags, Keywords: r.Keywords}, nil
}
