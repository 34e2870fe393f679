package nfstest

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
)

// UnmountStale detaches mounts of this package whose server is gone (a test
// binary that crashed or was killed left them behind; any access fails with
// ENOTCONN). Mounts of running tests are left alone. It returns the mount
// points it detached.
func UnmountStale(logf func(format string, args ...any)) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("nfstest: %w", err)
	}
	defer f.Close()
	var stale []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		mp, ok := parseMountinfo(sc.Text())
		if !ok {
			continue
		}
		var st syscall.Stat_t
		if err := syscall.Stat(mp, &st); !errors.Is(err, syscall.ENOTCONN) {
			continue
		}
		stale = append(stale, mp)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("nfstest: reading mountinfo: %w", err)
	}
	var done []string
	var errs []error
	for _, mp := range stale {
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("nfstest: detaching stale %s: %w", mp, err))
			continue
		}
		if logf != nil {
			logf("nfstest: detached stale mount %s", mp)
		}
		done = append(done, mp)
	}
	return done, errors.Join(errs...)
}

// parseMountinfo returns the mount point of a /proc/self/mountinfo line
// when the line is one of our mounts.
func parseMountinfo(line string) (string, bool) {
	// "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - fuse.nfstest src rw"
	pre, post, ok := strings.Cut(line, " - ")
	if !ok {
		return "", false
	}
	pf := strings.Fields(pre)
	qf := strings.Fields(post)
	if len(pf) < 5 || len(qf) < 1 || qf[0] != "fuse."+fsType {
		return "", false
	}
	return unescapeMountinfo(pf[4]), true
}

// unescapeMountinfo undoes the octal escapes (\040 for space) of mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) &&
			s[i+1] >= '0' && s[i+1] <= '3' && s[i+2] >= '0' && s[i+2] <= '7' && s[i+3] >= '0' && s[i+3] <= '7' {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
