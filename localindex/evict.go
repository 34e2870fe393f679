package localindex

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// tmpMaxAge is the age after which eviction removes a temporary file left
// by a crash.
const tmpMaxAge = 10 * time.Minute

// EvictResult says what one Evict did.
type EvictResult struct {
	// Usage is the bytes found on disk before eviction, Users the user
	// directories found.
	Usage int64
	Users int
	// EvictedUsers and EvictedBytes are what was removed.
	EvictedUsers int
	EvictedBytes int64
}

type userUsage struct {
	dir     string // "xx/hash"
	bytes   int64
	lastUse time.Time
	active  bool
}

// Evict measures the disk usage of the index and, when it is above
// Config.Budget, removes whole user directories, users without an open
// Mailbox and least recently used first, until the usage is at most
// Budget*EvictTarget. It also removes temporary files left by a crash.
// Removing a directory of a user being served is harmless: the session
// goes on from memory and the spool and writes its files again.
func (x *Index) Evict() (EvictResult, error) {
	x.st.evictRuns.Add(1)
	x.pruneUsers()
	var res EvictResult
	if x.cfg.Budget == 0 {
		return res, nil
	}
	users, err := x.scanUsage()
	if err != nil {
		return res, err
	}
	res.Users = len(users)
	for _, u := range users {
		res.Usage += u.bytes
	}
	if res.Usage <= x.cfg.Budget {
		return res, nil
	}
	x.usersMu.Lock()
	for i := range users {
		if s := x.users[users[i].dir]; s != nil {
			users[i].active = s.active > 0
			if s.lastUse.After(users[i].lastUse) {
				users[i].lastUse = s.lastUse
			}
		}
	}
	x.usersMu.Unlock()
	slices.SortFunc(users, func(a, b userUsage) int {
		if a.active != b.active {
			if a.active {
				return 1
			}
			return -1
		}
		return a.lastUse.Compare(b.lastUse)
	})
	target := int64(float64(x.cfg.Budget) * x.cfg.EvictTarget)
	usage := res.Usage
	var errs []error
	for _, u := range users {
		if usage <= target {
			break
		}
		if err := os.RemoveAll(filepath.Join(x.cfg.Dir, u.dir)); err != nil {
			errs = append(errs, err)
			continue
		}
		usage -= u.bytes
		res.EvictedUsers++
		res.EvictedBytes += u.bytes
		x.usersMu.Lock()
		if s := x.users[u.dir]; s != nil {
			if s.active == 0 {
				delete(x.users, u.dir)
			} else {
				s.stampWrites = time.Time{}
			}
		}
		x.usersMu.Unlock()
	}
	x.st.evictedUsers.Add(int64(res.EvictedUsers))
	x.st.evictedBytes.Add(res.EvictedBytes)
	if res.EvictedUsers > 0 {
		x.logger.Info("evicted cold users from the local index", "users", res.EvictedUsers, "bytes", res.EvictedBytes, "usage", res.Usage, "budget", x.cfg.Budget)
	}
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("localindex: evict: %w", err)
	}
	return res, nil
}

// scanUsage lists the user directories with their size and last use (from
// the stamp file's mtime, else the directory's).
func (x *Index) scanUsage() ([]userUsage, error) {
	fans, err := os.ReadDir(x.cfg.Dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("localindex: scan: %w", err)
	}
	now := x.cfg.Now()
	var users []userUsage
	for _, fan := range fans {
		if !fan.IsDir() {
			continue
		}
		ents, err := os.ReadDir(filepath.Join(x.cfg.Dir, fan.Name()))
		if err != nil {
			continue // removed meanwhile
		}
		for _, e := range ents {
			if !e.IsDir() {
				continue
			}
			u := userUsage{dir: fan.Name() + "/" + e.Name()}
			full := filepath.Join(x.cfg.Dir, fan.Name(), e.Name())
			if fi, err := e.Info(); err == nil {
				u.lastUse = fi.ModTime()
				u.bytes += diskBytes(fi)
			}
			files, err := os.ReadDir(full)
			if err != nil {
				continue
			}
			for _, f := range files {
				fi, err := f.Info()
				if err != nil {
					continue
				}
				if strings.HasPrefix(f.Name(), ".tmp-") && now.Sub(fi.ModTime()) > tmpMaxAge {
					_ = os.Remove(filepath.Join(full, f.Name()))
					continue
				}
				if f.Name() == stampFile {
					u.lastUse = fi.ModTime()
				}
				u.bytes += diskBytes(fi)
			}
			users = append(users, u)
		}
	}
	return users, nil
}

// diskBytes is the space a file takes: its allocated blocks, or its size
// when the file system does not say.
func diskBytes(fi os.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Blocks > 0 {
		return max(st.Blocks*512, fi.Size())
	}
	return fi.Size()
}

// Run calls Evict every Config.EvictInterval, and soon after a write failed
// for lack of space, until ctx is done. Errors are logged. The caller owns
// the goroutine that runs it.
func (x *Index) Run(ctx context.Context) {
	t := time.NewTicker(x.cfg.EvictInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-x.evictKick:
		}
		if _, err := x.Evict(); err != nil {
			x.logger.Warn("local index eviction", "err", err)
		}
	}
}

// pruneUsers forgets, in memory, the users without an open Mailbox whose
// last use is already in their stamp file, so that the map does not grow
// with every user the node ever served.
func (x *Index) pruneUsers() {
	now := x.cfg.Now()
	x.usersMu.Lock()
	defer x.usersMu.Unlock()
	for dir, u := range x.users {
		if u.active == 0 && !u.stampWrites.IsZero() && !u.stampWrites.Before(u.lastUse.Add(-x.cfg.TouchInterval)) &&
			now.Sub(u.lastUse) > 2*x.cfg.TouchInterval {
			delete(x.users, dir)
		}
	}
}
