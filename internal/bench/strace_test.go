package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const sampleTrace = `100 1700000000.100000 openat(AT_FDCWD</>, "/spool/u/cur", O_RDONLY|O_DIRECTORY) = 5</spool/u/cur>
100 1700000000.100100 getdents64(5</spool/u/cur>, 0xc000 /* 3 entries */, 8192) = 80
100 1700000000.100200 newfstatat(AT_FDCWD</>, "/spool/u/dovecot-uidlist",  <unfinished ...>
101 1700000000.100250 read(7<socket:[123]>, "a STATUS", 4096) = 8
100 1700000000.100300 <... newfstatat resumed>{st_mode=S_IFREG|0644, st_size=10, ...}, 0) = 0
100 1700000000.100400 close(5</spool/u/cur>) = 0
100 1700000000.100500 fcntl(5</spool/u/cur/1.M2P3.h,S=3:2,S>, F_GETFL) = 0x8000 (flags O_RDONLY|O_LARGEFILE)
100 1700000000.100600 fcntl(6</spool/u/dovecot-uidlist>, F_SETLKW, {l_type=F_WRLCK, l_whence=SEEK_SET, l_start=0, l_len=0}) = 0
100 1700000000.200000 openat(AT_FDCWD</>, "/spoolish/x", O_RDONLY) = 5</spoolish/x>
100 1700000000.200100 stat("/spool", {st_mode=S_IFDIR|0755, ...}) = 0
100 1700000000.300000 openat(AT_FDCWD</>, "/spool/u/new", O_RDONLY) = 5</spool/u/new>
100 1700000000.300100 +++ exited with 0 +++
`

func TestCountSpoolCalls(t *testing.T) {
	at := func(s float64) time.Time { return time.Unix(1700000000, int64(s*1e9)) }
	windows := []Window{
		{Name: "b", Start: at(0.15), End: at(0.25), Commands: 1},
		{Name: "a", Start: at(0.05), End: at(0.15), Commands: 2},
	}
	got, err := CountSpoolCalls(strings.NewReader(sampleTrace), "/spool/", windows)
	if err != nil {
		t.Fatal(err)
	}
	if got[1].Phase != "a" || got[1].Total != 6 || got[1].Local != 1 || got[1].BySyscall["getdents64"] != 1 || got[1].BySyscall["newfstatat"] != 1 {
		t.Errorf("window a: %+v", got[1])
	}
	if got[1].PerCommand() != 3 || got[1].FilerPerCommand() != 2.5 {
		t.Errorf("window a per command %v, filer %v", got[1].PerCommand(), got[1].FilerPerCommand())
	}
	// "/spoolish" is not under the spool; "/spool" itself is.
	if got[0].Total != 1 || got[0].BySyscall["stat"] != 1 {
		t.Errorf("window b: %+v", got[0])
	}
	if _, err := CountSpoolCalls(strings.NewReader("garbage\n"), "/spool", windows); err == nil {
		t.Error("garbage accepted")
	}
	if s := TopSyscalls(got[1].BySyscall, 2); s != "fcntl 2, close 1" {
		t.Errorf("top: %q", s)
	}
}

func TestLocalOnly(t *testing.T) {
	for line, want := range map[string]bool{
		`lseek(3</s/a>, 0, SEEK_SET)`:                                      true,
		`fcntl(3</s/a,S=1:2,S>, F_GETFL)`:                                  true,
		`fcntl(3</s/a>, F_SETFD, FD_CLOEXEC)`:                              true,
		`fcntl(3</s/a>, F_DUPFD_CLOEXEC, 0)`:                               true,
		`fcntl(3</s/a, b>, F_SETLK, {l_type=F_WRLCK})`:                     false,
		`fcntl(3, F_GETFL)`:                                                true,
		`read(3</s/a>, "x", 1)`:                                            false,
		`epoll_ctl(4<anon_inode:[eventpoll]>, EPOLL_CTL_ADD, 3</s/a>, {})`: true,
		`fcntl(3</s/a>`:                                                    false,
		`fcntl(3</s/a>, F_OFD_SETLKW, {l_type=F_WRLCK, ...})`:              false,
	} {
		name, _, _ := strings.Cut(line, "(")
		if got := localOnly(name, []byte(line)); got != want {
			t.Errorf("localOnly(%q) = %v", line, got)
		}
	}
}

func FuzzParseTraceLine(f *testing.F) {
	for _, l := range strings.Split(sampleTrace, "\n") {
		f.Add([]byte(l))
	}
	f.Add([]byte("1 2.3 x("))
	f.Add([]byte("1 2.9999999999 x("))
	f.Fuzz(func(t *testing.T, line []byte) {
		c, err := parseTraceLine(line)
		if err == nil && c.name != "" {
			if !strings.HasPrefix(string(c.rest), c.name+"(") {
				t.Fatalf("name %q does not start %q", c.name, c.rest)
			}
			_ = localOnly(c.name, c.rest)
		}
	})
}

func TestExtendWindowsAndAggregate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ws := []Window{
		{Name: "x", Start: t0.Add(2 * time.Second), End: t0.Add(3 * time.Second), Commands: 1},
		{Name: "x", Start: t0.Add(4 * time.Second), End: t0.Add(5 * time.Second), Commands: 1},
	}
	extendWindows(ws, t0.Add(6*time.Second))
	if !ws[0].End.Equal(ws[1].Start) || !ws[1].End.Equal(t0.Add(6*time.Second)) {
		t.Fatalf("windows %+v", ws)
	}
	agg := aggregate([]SpoolCalls{
		{Phase: "x", Commands: 1, Total: 3, Local: 2, BySyscall: map[string]int{"stat": 1, "lseek": 2}},
		{Phase: "other", Total: 1, BySyscall: map[string]int{"stat": 1}},
		{Phase: "x", Commands: 1, Total: 5, BySyscall: map[string]int{"stat": 4, "open": 1}},
	}, []string{"x"})
	if len(agg) != 1 || agg[0].Total != 8 || agg[0].Local != 2 || agg[0].Commands != 2 || agg[0].BySyscall["stat"] != 5 {
		t.Errorf("aggregate %+v", agg)
	}
}

// StartTrace against a real process: a shell that opens files in a
// directory standing in for the spool every few milliseconds.
func TestStartTraceRealProcess(t *testing.T) {
	if _, err := exec.LookPath("strace"); err != nil {
		t.Skip("strace not installed")
	}
	if os.Geteuid() != 0 {
		t.Skip("attaching strace to a process needs root here")
	}
	dir := t.TempDir()
	spool := filepath.Join(dir, "spool")
	if err := os.MkdirAll(spool, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(spool, "msg"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", `while :; do cat "$1/msg" >/dev/null; sleep 0.01; done`, "sh", spool)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	out := filepath.Join(dir, "trace")
	tr, err := StartTrace(context.Background(), []int{cmd.Process.Pid}, out)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// Wait until the trace shows a few reads of the file.
	deadline := time.Now().Add(20 * time.Second)
	for {
		data, _ := os.ReadFile(out)
		opens := 0
		for _, l := range strings.Split(string(data), "\n") {
			if strings.Contains(l, "openat(") && strings.Contains(l, spool+"/msg") {
				opens++
			}
		}
		if opens >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no spool calls traced:\n%s", data)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
	end := time.Now()
	if err := tr.Stop(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(tr.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	calls, err := CountSpoolCalls(f, spool, []Window{{Name: "all", Start: start.Add(-time.Second), End: end.Add(time.Second), Commands: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if calls[0].BySyscall["openat"] < 3 {
		t.Errorf("calls %+v, want at least 3 openat of the file", calls[0])
	}
}
