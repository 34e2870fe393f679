package nfslock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tests re-run the test binary as helper processes: the environment
// variable helperEnv selects what the helper does.
const (
	helperEnv      = "NFSLOCK_TEST_HELPER"
	helperFileEnv  = "NFSLOCK_TEST_FILE"  // the locked file
	helperCountEnv = "NFSLOCK_TEST_COUNT" // increments for "counter"
	helperHostEnv  = "NFSLOCK_TEST_HOST"  // Options.Host
	helperStaleEnv = "NFSLOCK_TEST_STALE" // Options.StaleAge
	// helperMarkEnv names a file on a local file system that a counter
	// helper creates with O_EXCL while it holds the lock: a second holder
	// finds it there, which proves a broken mutual exclusion directly.
	helperMarkEnv = "NFSLOCK_TEST_MARK"
)

func TestMain(m *testing.M) {
	switch mode := os.Getenv(helperEnv); mode {
	case "":
		os.Exit(m.Run())
	case "counter":
		os.Exit(runHelper(helperCounter))
	case "hold":
		os.Exit(runHelper(helperHold))
	default:
		fmt.Fprintf(os.Stderr, "unknown helper mode %q\n", mode)
		os.Exit(2)
	}
}

func runHelper(f func(Options, string) error) int {
	opt := Options{Host: os.Getenv(helperHostEnv), Timeout: time.Minute}
	if s := os.Getenv(helperStaleEnv); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		opt.StaleAge = d
	}
	if err := f(opt, os.Getenv(helperFileEnv)); err != nil {
		fmt.Fprintf(os.Stderr, "helper %d: %v\n", os.Getpid(), err)
		return 1
	}
	return 0
}

// helperCounter increments the counter in file, under the lock, the number
// of times given in helperCountEnv.
func helperCounter(opt Options, file string) error {
	n, err := strconv.Atoi(os.Getenv(helperCountEnv))
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		l, err := Acquire(context.Background(), file, opt)
		if err != nil {
			return fmt.Errorf("increment %d: %w", i, err)
		}
		if err := markHeld(os.Getenv(helperMarkEnv), i); err != nil {
			return err
		}
		ierr := retryStale(func() error { return incrementFile(file) })
		merr := unmarkHeld(os.Getenv(helperMarkEnv))
		if err := errors.Join(ierr, merr, l.Release()); err != nil {
			return fmt.Errorf("increment %d: %w", i, err)
		}
	}
	return nil
}

// markHeld creates the marker file, failing if another holder has it.
func markHeld(mark string, i int) error {
	if mark == "" {
		return nil
	}
	f, err := os.OpenFile(mark, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		other, _ := os.ReadFile(mark)
		return fmt.Errorf("increment %d: two holders at once: %w (marker says %q)", i, err, other)
	}
	_, werr := fmt.Fprintf(f, "pid %d increment %d", os.Getpid(), i)
	return errors.Join(werr, f.Close())
}

func unmarkHeld(mark string) error {
	if mark == "" {
		return nil
	}
	return os.Remove(mark)
}

// incrementFile adds one to the number in file the way spool files are
// updated: read through a fresh open (close-to-open revalidation on NFS),
// write a temp file, fsync, rename into place.
func incrementFile(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	if _, err := f.Stat(); err != nil {
		f.Close()
		return err
	}
	data, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return err
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return fmt.Errorf("counter content %q: %w", data, err)
	}
	tmp := fmt.Sprintf("%s.tmp.%d", file, os.Getpid())
	t, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, werr := fmt.Fprintf(t, "%d\n", v+1)
	serr := t.Sync()
	cerr := t.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

// helperHold takes the lock, says "locked" on stdout and holds it (with
// the refresh goroutine running) until stdin closes.
func helperHold(opt Options, file string) error {
	l, err := Acquire(context.Background(), file, opt)
	if err != nil {
		return err
	}
	fmt.Println("locked")
	_, _ = io.Copy(io.Discard, os.Stdin)
	return l.Release()
}

func helperCmd(t testing.TB, mode, file string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperFileEnv+"="+file)
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// holder is a helper process that holds a lock.
type holder struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// startHolder starts a "hold" helper and waits until it holds the lock.
func startHolder(t *testing.T, file string, env ...string) *holder {
	t.Helper()
	cmd := helperCmd(t, "hold", file, env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &holder{cmd: cmd, stdin: stdin}
	t.Cleanup(func() {
		stdin.Close()
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		if s != "locked\n" {
			t.Fatalf("holder said %q", s)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("holder did not take the lock in 20s")
	}
	return h
}

// kill SIGKILLs the holder and reaps it (a zombie still answers kill(pid, 0)).
func (h *holder) kill(t *testing.T) {
	t.Helper()
	if err := h.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = h.cmd.Wait()
}

// runCounter runs procs counter helpers, each doing n increments on the
// file in dirs[i%len(dirs)], and checks the final count.
func runCounter(t *testing.T, dirs []string, procs, n int, env ...string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dirs[0], "counter"), []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cmds := make([]*exec.Cmd, procs)
	outs := make([]*strings.Builder, procs)
	for i := range cmds {
		file := filepath.Join(dirs[i%len(dirs)], "counter")
		cmds[i] = helperCmd(t, "counter", file, append(env, helperCountEnv+"="+strconv.Itoa(n))...)
		outs[i] = new(strings.Builder)
		cmds[i].Stdout, cmds[i].Stderr = outs[i], outs[i]
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("helper %d: %v\n%s", i, err, outs[i])
		}
	}
	data, err := os.ReadFile(filepath.Join(dirs[0], "counter"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	if want := procs * n; got != want {
		t.Errorf("counter = %d, want %d", got, want)
	}
	t.Logf("%d processes x %d increments in %v", procs, n, time.Since(start).Round(time.Millisecond))
}
