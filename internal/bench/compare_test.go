package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nfsimap/nfsimap/internal/dovecot"
	"github.com/nfsimap/nfsimap/internal/e2e"
)

const benchPassword = "password"

// TestCompare runs the same measurements against Dovecot and nfsimap and
// prints the side-by-side report. See the package documentation.
func TestCompare(t *testing.T) {
	mode := os.Getenv("NFSIMAP_BENCH")
	if mode == "" {
		t.Skip("set NFSIMAP_BENCH=quick or NFSIMAP_BENCH=full to compare nfsimap with Dovecot")
	}
	cfg, err := ConfigFor(mode)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		t.Fatal("the bench needs root: Dovecot runs its mail processes as their own user and strace attaches to the servers")
	}
	for _, bin := range []string{dovecot.Binary, "strace", "cp"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s missing (bash .ci/deps installs it): %v", bin, err)
		}
	}
	// Idle connections: this process holds one end of each, nfsimap the
	// other; the servers inherit the limit.
	need := uint64(cfg.IdleConns + 2000)
	limit, err := RaiseFileLimit(max(need, uint64(4*cfg.IdleConns+10000)))
	if limit < need {
		t.Fatalf("file limit: %v; %d idle connections need %d", err, cfg.IdleConns, need)
	}
	t.Logf("RLIMIT_NOFILE now %d", limit)

	ctx := context.Background()
	if dl, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-30*time.Second))
		defer cancel()
	}
	started := time.Now()
	work := t.TempDir()

	rep := &Report{
		Mode: cfg.Mode, Started: started, Host: hostInfo(),
		Settings: map[string]string{
			"loadtest":  fmt.Sprintf("%d users, -mix %s, %s per server, seed %d", cfg.Users, cfg.LoadMix, cfg.LoadDuration, cfg.Seed),
			"logins":    fmt.Sprintf("%d parallel clients for %s", cfg.LoginWorkers, cfg.LoginDuration),
			"idle":      fmt.Sprintf("%d connections over %d users from %d source addresses", cfg.IdleConns, cfg.Users, cfg.SourceAddrs),
			"spool_ops": fmt.Sprintf("each command %d times on the probe user's %d messages", cfg.SpoolRepeat, cfg.ProbeMessages),
			"nfsimap":   fmt.Sprintf("poll_interval %s, log level info, no race detector", cfg.PollInterval),
			"dovecot":   "internal/dovecot's config (maildir, local index, dotlock, mmap off, fsync always) plus process and client limits for the idle connections",
		},
		Notes: []string{
			"Dovecot forks one imap process per connection (its default config): its memory is the sum over all its processes, the imap ones listed separately. RSS counts shared pages once per process; PSS divides them among sharers and is the fairer sum.",
			"Dovecot runs its default high-security login mode: a fresh imap-login process per connection, then an imap process; its performance mode (service imap-login { service_count = 0 }) would log in faster.",
			"The machine is shared: compare the ratios of one run rather than absolute numbers across runs.",
		},
	}

	t0 := time.Now()
	loadBin, err := BuildLoadtest(ctx, work)
	if err != nil {
		t.Fatal(err)
	}
	e2e.Binary(t) // build nfsimap before anything is timed
	t.Logf("built loadtest and nfsimap in %v", time.Since(t0).Round(time.Millisecond))

	master := filepath.Join(work, "nfsimap-spool")
	rep.Spool, err = GenerateSpool(ctx, master, SpoolSpec{
		Seed: cfg.Seed, Users: cfg.Users, Messages: cfg.Messages, Folders: cfg.Folders,
		ProbeMessages: cfg.ProbeMessages, BigMessages: cfg.BigMessages,
		MaxAttachment: cfg.MaxAttachment, Workers: runtime.NumCPU(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("spool: %d users, %d messages, %.1f MiB in %v", len(rep.Spool.Users), rep.Spool.Messages,
		float64(rep.Spool.Bytes)/(1<<20), rep.Spool.Took.Round(time.Millisecond))
	users := map[string]string{}
	for _, u := range rep.Spool.Users {
		users[u] = benchPassword
	}
	// Dovecot gets a copy made now; nfsimap, which runs second, gets the
	// generated spool itself (one copy fewer to write and delete).
	dovecotSpool := filepath.Join(work, "dovecot-spool")
	t0 = time.Now()
	if err := CopySpool(ctx, master, dovecotSpool); err != nil {
		t.Fatal(err)
	}
	t.Logf("copied the spool for dovecot in %v", time.Since(t0).Round(time.Millisecond))

	dv := &ServerReport{Name: "dovecot"}
	nf := &ServerReport{Name: "nfsimap"}
	rep.Servers = []*ServerReport{dv, nf}

	t.Run("dovecot", func(t *testing.T) {
		spool := dovecotSpool
		t.Cleanup(func() {
			t0 := time.Now()
			if err := os.RemoveAll(spool); err != nil {
				t.Log(err)
			}
			t.Logf("removed dovecot's spool in %v", time.Since(t0).Round(time.Millisecond))
		})
		s := dovecot.Start(t, spool, users)
		if err := raiseDovecotLimits(ctx, s, cfg.IdleConns); err != nil {
			dv.Failf("raising Dovecot's process limits: %v (idle connections beyond 1024 will fail)", err)
		}
		masterPID, err := DovecotMasterPID(s.ConfigPath())
		if err != nil {
			t.Fatal(err)
		}
		tg := Target{Name: "dovecot", Addr: s.Addr(), Spool: spool,
			Processes: func() ([]Stat, error) { return Proc{}.Tree(masterPID) }}
		settle := func(ctx context.Context) error {
			return waitFor(ctx, 2*time.Minute, func() (bool, error) {
				n, err := Proc{}.CountComm(masterPID, "imap")
				return n == 0, err
			})
		}
		runAll(ctx, t, cfg, tg, dv, loadBin, work, settle)
		if len(dv.Errors) > 0 {
			t.Logf("dovecot log tail:\n%s", tail(s.Log(), 4000))
		}
	})

	t.Run("nfsimap", func(t *testing.T) {
		spool := master
		t.Cleanup(func() {
			t0 := time.Now()
			if err := os.RemoveAll(spool); err != nil {
				t.Log(err)
			}
			t.Logf("removed nfsimap's spool in %v", time.Since(t0).Round(time.Millisecond))
		})
		n := e2e.Start(t, e2e.Options{
			Spool: spool, Users: users, PollInterval: cfg.PollInterval,
			Env: []string{"NFSIMAP_LOG_LEVEL=info"},
		})
		st, err := Proc{}.ListenerProcess(n.Addr)
		if err != nil {
			t.Fatal(err)
		}
		tg := Target{Name: "nfsimap", Addr: n.Addr, Spool: spool,
			Processes: func() ([]Stat, error) { return Proc{}.Tree(st.PID) }}
		settle := func(ctx context.Context) error { return nil }
		runAll(ctx, t, cfg, tg, nf, loadBin, work, settle)
		if len(nf.Errors) > 0 {
			t.Logf("nfsimap log tail:\n%s", tail(n.LogText(), 4000))
		}
	})

	if dv.Sort != nil && nf.Sort != nil {
		if d := SameOrder(dv.Sort.Keys, nf.Sort.Keys); d != "" {
			rep.Notes = append(rep.Notes, fmt.Sprintf("The servers number the big INBOX's messages differently (%s, messages by internal date): SORT and THREAD answers are compared by internal date, SORT's with ARRIVAL as the last key so that ties do not depend on the numbering.", d))
		}
		if d := DiffIDs(dv.Sort.Keys, dv.Sort.IDs, nf.Sort.Keys, nf.Sort.IDs); d != "" {
			rep.Notes = append(rep.Notes, fmt.Sprintf("FETCH BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)] differs on the big INBOX (dovecot vs nfsimap): %s.", d))
		}
		for i := range dv.Sort.Commands {
			if i >= len(nf.Sort.Commands) {
				break
			}
			a, b := dv.Sort.Commands[i], nf.Sort.Commands[i]
			if a.Error == "" && b.Error == "" {
				if d := DiffAnswers(a.Answer, b.Answer); d != "" {
					cmd := a.Command
					if a.Compared != "" {
						cmd = a.Compared
					}
					rep.Notes = append(rep.Notes, fmt.Sprintf("%s answers differ (dovecot vs nfsimap, messages as tUNIXTIME of their internal date): %s.", cmd, d))
				}
			}
			for _, x := range []struct{ name, answer string }{{"dovecot", a.Answer}, {"nfsimap", b.Answer}} {
				path := filepath.Join(work, fmt.Sprintf("%s-%d.answer", x.name, i))
				if err := os.WriteFile(path, []byte(x.answer+"\n"), 0o644); err != nil {
					t.Log(err)
				}
			}
		}
	}
	if dv.Load != nil && len(dv.Load.Violations) > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("loadtest reported %d violations against Dovecot, the reference: they point at the checker (or at a reading of the RFC where Dovecot differs), not at lost mail.", len(dv.Load.Violations)))
	}
	rep.Notes = append(rep.Notes, "loadtest clients pause between steps (think time), so ops/s are set mostly by the clients; the latencies are the servers'.")
	rep.Took = time.Since(started).Seconds()
	rep.Host["load average after"] = loadAvg()
	var md strings.Builder
	rep.Markdown(&md)
	fmt.Println()
	fmt.Print(md.String())
	if out := os.Getenv("NFSIMAP_BENCH_OUT"); out != "" {
		if err := writeReport(rep, md.String(), out); err != nil {
			t.Error(err)
		} else {
			t.Logf("report written to %s", out)
		}
	}
	if nf.Load != nil && len(nf.Load.Violations) > 0 {
		t.Errorf("nfsimap: loadtest found %d violations (printed above)", len(nf.Load.Violations))
	}
	for _, s := range rep.Servers {
		for _, e := range s.Errors {
			t.Errorf("%s: %s", s.Name, firstLine(e))
		}
	}
}

// runAll measures one server, in an order that keeps the parts apart:
// warm-up, idle memory, spool operations, SORT/THREAD, logins, then
// loadtest (the only part that changes users' mailboxes). A failed part
// is recorded in sr and the rest goes on.
func runAll(ctx context.Context, t *testing.T, cfg Config, tg Target, sr *ServerReport, loadBin, work string, settle func(context.Context) error) {
	p := Proc{}
	users := make([]string, cfg.Users)
	for i := range users {
		users[i] = "user" + strconv.Itoa(i+1)
	}
	src := SourceAddrs(cfg.SourceAddrs)
	step := func(name string, f func() error) {
		if ctx.Err() != nil {
			sr.Failf("%s: skipped: %v", name, ctx.Err())
			return
		}
		t0 := time.Now()
		err := f()
		t.Logf("%s: %s took %v", tg.Name, name, time.Since(t0).Round(time.Millisecond))
		if err != nil {
			sr.Failf("%s: %v", name, err)
			t.Logf("%s: %s failed: %v", tg.Name, name, err)
		}
	}

	step("warm-up (SELECT every user's INBOX once)", func() error {
		return warmUp(ctx, tg.Addr, users, cfg.IdleWorkers)
	})
	if cfg.IdleConns > 0 {
		step("idle memory", func() error {
			res, err := MeasureIdle(ctx, tg, p, IdlePlan{
				Users: users, Password: benchPassword, Conns: cfg.IdleConns, Workers: cfg.IdleWorkers,
				Src: src, MinAvailableKiB: cfg.MinAvailableMiB << 10, Settle: 2 * time.Second,
			})
			sr.Idle = &res
			if err != nil {
				return err
			}
			t.Logf("%s: %d idle connections: RSS %d -> %d KiB (%.1f KiB each), PSS %.1f KiB each",
				tg.Name, res.Reached, res.Before.Total.RSS, res.After.Total.RSS, res.PerConnRSS, res.PerConnPSS)
			if res.Reached < res.Target {
				return fmt.Errorf("reached %d of %d idle connections: %s %s", res.Reached, res.Target, res.Stopped, res.FirstError)
			}
			return nil
		})
		step("settle after closing the idle connections", func() error { return settle(ctx) })
	}
	step("spool operations", func() error {
		calls, err := MeasureSpoolOps(ctx, tg, p, SpoolOpsPlan{
			User: ProbeUser, Password: benchPassword, Folder: cfg.Folders[0],
			Repeat: cfg.SpoolRepeat, TraceFile: filepath.Join(work, tg.Name+".strace"),
			Settle: DefaultSpoolSettle,
		})
		sr.SpoolOps = calls
		return err
	})
	if cfg.BigMessages > 0 {
		step("SORT and THREAD", func() error {
			res, err := MeasureSortThread(ctx, tg.Addr, BigUser, benchPassword, cfg.SortRuns)
			sr.Sort = &res
			if err == nil {
				for _, c := range res.Commands {
					if c.Error != "" {
						return fmt.Errorf("%s: %s", c.Command, c.Error)
					}
				}
			}
			return err
		})
	}
	step("logins", func() error {
		res := MeasureLogins(ctx, tg.Addr, users, benchPassword, cfg.LoginWorkers, cfg.LoginDuration, src)
		sr.Logins = &res
		if res.Logins == 0 {
			return fmt.Errorf("no login succeeded: %s", res.FirstError)
		}
		return nil
	})
	step("settle after the logins", func() error { return settle(ctx) })
	step("loadtest", func() error {
		res, err := RunLoadtest(ctx, LoadRun{
			Binary: loadBin, Addr: tg.Addr, Users: cfg.Users, Password: benchPassword,
			Mix: cfg.LoadMix, Duration: cfg.LoadDuration, Seed: cfg.Seed,
			JSON: filepath.Join(work, tg.Name+"-loadtest.json"),
		})
		if res.Report != nil {
			sr.Load = &LoadSummary{ExitCode: res.ExitCode, Elapsed: res.Report.Elapsed,
				Commands: res.Report.Commands, Violations: res.Report.Violations}
			if res.ExitCode != 0 {
				sr.Load.Output = tail(res.Output, 20000)
			}
		}
		if err != nil {
			return fmt.Errorf("%w\n%s", err, tail(res.Output, 4000))
		}
		if res.ExitCode == 1 && res.Report != nil {
			t.Logf("%s: loadtest found %d violations (in the report)", tg.Name, len(res.Report.Violations))
		}
		return nil
	})
}

// warmUp selects every user's INBOX once, so both servers have built
// their indexes before anything is measured.
func warmUp(ctx context.Context, addr string, users []string, workers int) error {
	var (
		mu    sync.Mutex
		errs  []error
		wg    sync.WaitGroup
		queue = make(chan string)
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range queue {
				err := func() error {
					c, err := Dial(addr, nil, 5*time.Minute)
					if err != nil {
						return err
					}
					if err := c.Login(u, benchPassword); err != nil {
						c.Close()
						return err
					}
					if _, err := c.Command("SELECT INBOX"); err != nil {
						c.Close()
						return err
					}
					return c.Logout()
				}()
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s: %w", u, err))
					mu.Unlock()
				}
			}
		}()
	}
	for _, u := range users {
		if ctx.Err() != nil {
			break
		}
		queue <- u
	}
	close(queue)
	wg.Wait()
	if len(errs) > 3 {
		errs = append(errs[:3], fmt.Errorf("and %d more", len(errs)-3))
	}
	return errors.Join(errs...)
}

// raiseDovecotLimits appends process and client limits for conns idle
// connections to the running Dovecot's config and reloads it (SIGHUP to
// the master), waiting for the reload to be logged.
func raiseDovecotLimits(ctx context.Context, s *dovecot.Server, conns int) error {
	if conns < 900 {
		return nil
	}
	extra := fmt.Sprintf(`
# Added by internal/bench: room for %d idle connections (one imap process each).
default_client_limit = %d
service imap {
  process_limit = %d
}
`, conns, 2*conns+1000, conns+1000)
	f, err := os.OpenFile(s.ConfigPath(), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(extra); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	pid, err := DovecotMasterPID(s.ConfigPath())
	if err != nil {
		return err
	}
	before := strings.Count(s.Log(), "reloading configuration")
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		return fmt.Errorf("SIGHUP dovecot %d: %w", pid, err)
	}
	return waitFor(ctx, 30*time.Second, func() (bool, error) {
		log := s.Log()
		if strings.Contains(log, "Fatal") || strings.Contains(log, "Error: ") && strings.Contains(log, "config") {
			return false, fmt.Errorf("dovecot reload: %s", tail(log, 1000))
		}
		return strings.Count(log, "reloading configuration") > before, nil
	})
}

// waitFor polls cond every 50ms until it holds, fails or timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("condition not met within %v", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond): // polling with a deadline
		}
	}
}

func hostInfo() map[string]string {
	h := map[string]string{
		"cpus": strconv.Itoa(runtime.NumCPU()),
		"go":   runtime.Version(),
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h["kernel"] = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command(dovecot.Binary, "--version").Output(); err == nil {
		h["dovecot"] = strings.TrimSpace(string(out))
	}
	if avail, err := (Proc{}).MemAvailable(); err == nil {
		h["memory available"] = fmt.Sprintf("%d MiB", avail>>10)
	}
	h["load average before"] = loadAvg()
	return h
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// writeReport writes the markdown and the JSON: out itself gets the
// format its extension names (.json or anything else for markdown), and
// the other format goes next to it.
func writeReport(rep *Report, md, out string) error {
	js, err := rep.JSON()
	if err != nil {
		return err
	}
	base := strings.TrimSuffix(strings.TrimSuffix(out, ".json"), ".md")
	mdPath, jsonPath := base+".md", base+".json"
	if strings.HasSuffix(out, ".json") {
		jsonPath = out
	} else {
		mdPath = out
	}
	if err := os.WriteFile(mdPath, []byte(md), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := os.WriteFile(jsonPath, js, 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
