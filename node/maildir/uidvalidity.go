package maildir

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// UIDValidityName is the UIDVALIDITY counter in the folder root, in
// Dovecot's scheme: "dovecot-uidvalidity" holds the last value given out
// (8 hex digits, a hint only) and an empty file "dovecot-uidvalidity.<hex>"
// holds the real one. A new value is taken by renaming that file to the
// next number: rename(2) is atomic by name on NFS too, so two nodes never
// get the same value and no lock is needed.
const UIDValidityName = "dovecot-uidvalidity"

// nextUIDValidity returns a UIDVALIDITY never given out before in this
// store (for a mailbox that has no uidlist yet). On any trouble with the
// counter files it falls back to the time, like Dovecot.
func (s *Store) nextUIDValidity(now time.Time) uint32 {
	fallback := uint32(now.Unix())
	if fallback == 0 {
		fallback = 1
	}
	root := s.paths.Root
	if err := s.mkdirTolerant(root); err != nil {
		return fallback
	}
	main := filepath.Join(root, UIDValidityName)
	cur, ok := uint32(0), false
	if data, _, err := s.readFile(main); err == nil {
		if v, err := strconv.ParseUint(strings.TrimSpace(string(data)), 16, 32); err == nil && v > 0 {
			cur, ok = uint32(v), true
		}
	}
	if ok {
		if v, ok := s.bumpUIDValidity(main, cur); ok {
			return v
		}
	}
	// Rescan the directory for the counter file.
	names, err := s.readDirNames(root)
	if err != nil {
		return fallback
	}
	var maxv uint32
	for _, n := range names {
		hexs, found := strings.CutPrefix(n, UIDValidityName+".")
		if !found || len(hexs) != 8 {
			continue
		}
		if v, err := strconv.ParseUint(hexs, 16, 32); err == nil && uint32(v) > maxv {
			maxv = uint32(v)
		}
	}
	if maxv == 0 {
		for i := uint32(0); i < 10; i++ {
			v := fallback + i
			f, err := os.OpenFile(main+"."+hex8(v), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o444)
			if err == nil {
				_ = f.Close()
				s.writeUIDValidityHint(main, v)
				return v
			}
			if !os.IsExist(err) {
				break
			}
		}
		return fallback
	}
	if v, ok := s.bumpUIDValidity(main, maxv); ok {
		return v
	}
	return fallback
}

// bumpUIDValidity renames the counter file from cur to cur+1, trying a few
// following values when another node moved it on first.
func (s *Store) bumpUIDValidity(main string, cur uint32) (uint32, bool) {
	for i := 0; i < 10; i++ {
		next := cur + 1
		if next == 0 {
			return 0, false
		}
		err := s.retryStale(func() error { return os.Rename(main+"."+hex8(cur), main+"."+hex8(next)) })
		if err == nil {
			s.writeUIDValidityHint(main, next)
			return next, true
		}
		if !isNotExist(err) {
			return 0, false
		}
		cur = next
	}
	return 0, false
}

func (s *Store) writeUIDValidityHint(main string, v uint32) {
	if err := s.replaceFile(main, []byte(hex8(v)), nil, false); err != nil {
		s.opt.Logger.Warn("writing the UIDVALIDITY hint failed", "path", main, "err", err)
	}
}

func hex8(v uint32) string {
	h := strconv.FormatUint(uint64(v), 16)
	return strings.Repeat("0", 8-len(h)) + h
}
