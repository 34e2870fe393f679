package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nfsimap/nfsimap/internal/corpus"
)

// Names of the special users in the bench spool (besides user1..userN).
const (
	// ProbeUser's mailboxes serve the spool-operation count; nothing else
	// touches them.
	ProbeUser = "probe"
	// BigUser's INBOX is the large mailbox for SORT and THREAD.
	BigUser = "big"
)

// SpoolSpec says what GenerateSpool writes.
type SpoolSpec struct {
	Seed int64
	// Users user1..userN, each with Messages messages spread over INBOX
	// and Folders.
	Users    int
	Messages int
	Folders  []string
	// ProbeMessages go to ProbeUser (INBOX and Folders).
	ProbeMessages int
	// BigMessages go to BigUser's INBOX only.
	BigMessages int
	// MaxAttachment is corpus.Options.MaxAttachment.
	MaxAttachment int
	// Workers generate users in parallel; 0 = 2.
	Workers int
}

// SpoolStats is what was generated.
type SpoolStats struct {
	Users    []string      `json:"users"` // every user, special ones included
	Messages int           `json:"messages"`
	Bytes    int64         `json:"bytes"`
	Took     time.Duration `json:"took_ns"`
}

// GenerateSpool writes the bench spool into dir: dir/USER is each user's
// INBOX with Maildir++ folders inside. The same spec gives the same spool.
func GenerateSpool(ctx context.Context, dir string, spec SpoolSpec) (SpoolStats, error) {
	start := time.Now()
	type job struct {
		user string
		opt  corpus.Options
	}
	var jobs []job
	for i := 1; i <= spec.Users; i++ {
		jobs = append(jobs, job{"user" + strconv.Itoa(i), corpus.Options{
			Seed: spec.Seed*1_000_003 + int64(i), Messages: spec.Messages,
			Folders: spec.Folders, MaxAttachment: spec.MaxAttachment,
		}})
	}
	if spec.ProbeMessages > 0 {
		jobs = append(jobs, job{ProbeUser, corpus.Options{
			Seed: spec.Seed*1_000_003 - 1, Messages: spec.ProbeMessages,
			Folders: spec.Folders, MaxAttachment: spec.MaxAttachment,
		}})
	}
	if spec.BigMessages > 0 {
		jobs = append(jobs, job{BigUser, corpus.Options{
			Seed: spec.Seed*1_000_003 - 2, Messages: spec.BigMessages,
			MaxAttachment: spec.MaxAttachment,
		}})
	}
	workers := spec.Workers
	if workers <= 0 {
		workers = 2
	}
	var (
		next     atomic.Int64
		messages atomic.Int64
		bytes    atomic.Int64
		errOnce  sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(jobs) || ctx.Err() != nil {
					return
				}
				m, err := corpus.Generate(filepath.Join(dir, jobs[i].user), jobs[i].opt)
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("spool of %s: %w", jobs[i].user, err) })
					return
				}
				messages.Add(int64(len(m.Messages)))
				for _, msg := range m.Messages {
					bytes.Add(msg.Size)
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return SpoolStats{}, firstErr
	}
	if err := ctx.Err(); err != nil {
		return SpoolStats{}, err
	}
	st := SpoolStats{Messages: int(messages.Load()), Bytes: bytes.Load(), Took: time.Since(start)}
	for _, j := range jobs {
		st.Users = append(st.Users, j.user)
	}
	return st, nil
}

// CopySpool copies src to dst with cp -a (modes, owners and mtimes kept;
// dst must not exist).
func CopySpool(ctx context.Context, src, dst string) error {
	if _, err := os.Stat(dst); err == nil {
		return fmt.Errorf("copy spool: %s exists", dst)
	}
	out, err := exec.CommandContext(ctx, "cp", "-a", src, dst).CombinedOutput()
	if err != nil {
		return fmt.Errorf("cp -a %s %s: %w: %s", src, dst, err, out)
	}
	return nil
}

// DeliverNew writes a small message into maildir/new the way an MTA does
// (tmp, then rename), owned like the maildir, and returns its path. n
// makes the name unique.
func DeliverNew(maildir string, n int) (string, error) {
	now := time.Now()
	body := fmt.Sprintf("From: Bench <bench@example.org>\r\nTo: <probe@example.org>\r\n"+
		"Subject: bench delivery %d\r\nDate: %s\r\nMessage-ID: <bench-%d-%d@example.org>\r\n\r\n"+
		"Delivered by the bench to count the server's spool operations.\r\n",
		n, now.UTC().Format(time.RFC1123Z), now.UnixNano(), n)
	name := fmt.Sprintf("%d.M%dP%d.bench,S=%d", now.Unix(), now.Nanosecond()/1000, os.Getpid()*1000+n%1000, len(body))
	tmp := filepath.Join(maildir, "tmp", name)
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		return "", fmt.Errorf("deliver: %w", err)
	}
	fi, err := os.Stat(maildir)
	if err != nil {
		return "", fmt.Errorf("deliver: %w", err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if err := os.Lchown(tmp, int(st.Uid), int(st.Gid)); err != nil {
			return "", fmt.Errorf("deliver: %w", err)
		}
	}
	dst := filepath.Join(maildir, "new", name)
	if err := os.Rename(tmp, dst); err != nil {
		return "", fmt.Errorf("deliver: %w", err)
	}
	return dst, nil
}
