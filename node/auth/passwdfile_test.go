package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParsePasswdFile(t *testing.T) {
	const file = `# comment
alice:{PLAIN}secret:1000:1000::/home/alice::userdb_mail=maildir:/var/mail/alice quota_rule=*:storage=1G

:nouser:1:1
bob:{SHA256-CRYPT}$5$abc$bBHLwRRW2Li0XKaX13kz/g2fkDil4Jx46aNvd.48MS8:1001:1001:Bob B:/home/bob:/bin/sh:mail=maildir:~/Maildir nologin
carol:$1$nfs$AS9T9LA4SN1yTwTlDS.cY1
dave
erin::
badid:{PLAIN}x:12ab:100
rootid:{PLAIN}x:0:100
alice:{PLAIN}duplicate:1:1
tabs	in name:{PLAIN}x
both:{PLAIN}x:::::: mail=a userdb_mail=b
pam:abJnggxhB/yWI[13]
pam5:5ebe2294ecd0e0f08eab7690d2a6ee69[34]
crlf:{PLAIN}x:5:6::/h` + "\r\n" + `last:{PLAIN}nonl`
	entries, bad, err := ParsePasswdFile(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Entry{}
	for _, e := range entries {
		byName[e.User.Name] = e
	}
	want := map[string]Entry{
		"alice": {Line: 2, Password: "{PLAIN}secret", HasPassword: true, User: User{Name: "alice", UID: 1000, GID: 1000, Home: "/home/alice",
			Mail: "maildir:/var/mail/alice", Extra: map[string]string{"userdb_mail": "maildir:/var/mail/alice", "quota_rule": "*:storage=1G"}}},
		"bob": {Line: 5, Password: "{SHA256-CRYPT}$5$abc$bBHLwRRW2Li0XKaX13kz/g2fkDil4Jx46aNvd.48MS8", HasPassword: true,
			User: User{Name: "bob", UID: 1001, GID: 1001, Home: "/home/bob", Mail: "maildir:~/Maildir", Extra: map[string]string{"mail": "maildir:~/Maildir", "nologin": ""}}},
		"carol": {Line: 6, Password: "$1$nfs$AS9T9LA4SN1yTwTlDS.cY1", HasPassword: true, User: User{Name: "carol", UID: -1, GID: -1}},
		"dave":  {Line: 7, User: User{Name: "dave", UID: -1, GID: -1}},
		"erin":  {Line: 8, HasPassword: true, User: User{Name: "erin", UID: -1, GID: -1}},
		"both": {Line: 13, Password: "{PLAIN}x", HasPassword: true, User: User{Name: "both", UID: -1, GID: -1, Mail: "b",
			Extra: map[string]string{"mail": "a", "userdb_mail": "b"}}},
		"pam":  {Line: 14, Password: "{CRYPT}abJnggxhB/yWI", HasPassword: true, User: User{Name: "pam", UID: -1, GID: -1}},
		"pam5": {Line: 15, Password: "{PLAIN-MD5}5ebe2294ecd0e0f08eab7690d2a6ee69", HasPassword: true, User: User{Name: "pam5", UID: -1, GID: -1}},
		"crlf": {Line: 16, Password: "{PLAIN}x", HasPassword: true, User: User{Name: "crlf", UID: 5, GID: 6, Home: "/h"}},
		"last": {Line: 17, Password: "{PLAIN}nonl", HasPassword: true, User: User{Name: "last", UID: -1, GID: -1}},
	}
	if !reflect.DeepEqual(byName, want) {
		for k, w := range want {
			if !reflect.DeepEqual(byName[k], w) {
				t.Errorf("%s:\n got %+v\nwant %+v", k, byName[k], w)
			}
		}
		for k := range byName {
			if _, ok := want[k]; !ok {
				t.Errorf("unexpected user %q", k)
			}
		}
	}
	var badLines []int
	for _, le := range bad {
		badLines = append(badLines, le.Line)
		if !errors.Is(le, ErrBadLine) {
			t.Errorf("line %d: %v does not wrap ErrBadLine", le.Line, le)
		}
	}
	if !reflect.DeepEqual(badLines, []int{9, 10, 11, 12}) {
		t.Errorf("bad lines %v, want [9 10 11 12]: %v", badLines, bad)
	}
}

func TestParsePasswdFileLongLine(t *testing.T) {
	file := "a:{PLAIN}a\nlong:{PLAIN}" + strings.Repeat("x", maxLineLen+10) + "\nb:{PLAIN}b\n"
	entries, bad, err := ParsePasswdFile(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[1].User.Name != "b" || entries[1].Line != 3 {
		t.Errorf("entries %+v", entries)
	}
	if len(bad) != 1 || bad[0].Line != 2 {
		t.Errorf("bad %v", bad)
	}
}

func FuzzParsePasswdFile(f *testing.F) {
	f.Add("alice:{PLAIN}secret:1000:1000::/home/alice::userdb_mail=maildir:/var/mail/alice\n")
	f.Add("# c\n\n:x\nbob:x:1:2:g:h:s:a=b c d=\r\nbob\n")
	f.Add("x:y[34]\nz:abc[13]\n\xff\xfe:\n")
	f.Add("root:x:root:root\n")
	f.Fuzz(func(t *testing.T, data string) {
		entries, bad, err := ParsePasswdFile(strings.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, e := range entries {
			if seen[e.User.Name] {
				t.Fatalf("duplicate %q", e.User.Name)
			}
			seen[e.User.Name] = true
			if e.User.Name == "" || strings.ContainsAny(e.User.Name, ":\n") {
				t.Fatalf("bad name %q", e.User.Name)
			}
		}
		for _, le := range bad {
			if le.Line < 1 {
				t.Fatalf("line %d", le.Line)
			}
		}
	})
}

// writeAtomic replaces path's content the way an admin tool should: a
// temporary file renamed over it.
func writeAtomic(t testing.TB, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newTestFile(t *testing.T, content string, cfg Config) (*PasswdFile, string, *syncBuffer) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "passwd")
	writeAtomic(t, path, content)
	cfg.Path = path
	logs := &syncBuffer{}
	p, err := NewPasswdFile(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	return p, path, logs
}

func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	const file = `alice:{PLAIN}secret:1000:1000::/home/alice::userdb_mail=maildir:/m/alice
bob:{SHA512-CRYPT}$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1
carol:$1$nfs$AS9T9LA4SN1yTwTlDS.cY1
dave
erin:{NOPE}x
Frank:{PLAIN}f
gina:$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1
hank:{BLF-CRYPT}$2y$20$......................LAtw7/ohmmBAhnXqmkuIz83Rl5Qdjhm
ivan::
`
	p, _, logs := newTestFile(t, file, Config{})
	u, err := p.Authenticate(ctx, "alice", "secret")
	if err != nil {
		t.Fatal(err)
	}
	if u.Name != "alice" || u.Home != "/home/alice" || u.Mail != "maildir:/m/alice" || u.UID != 1000 {
		t.Errorf("alice: %+v", u)
	}
	for _, tc := range []struct {
		user, pw string
		also     error
	}{
		{"alice", "Secret", nil},
		{"alice", "", nil},
		{"nobody", "secret", nil},
		{"bob", "Hello world", nil},
		{"carol", "secret", ErrWeakScheme}, // weak schemes refused by default
		{"dave", "", nil},
		{"erin", "x", ErrUnknownScheme},
		{"frank", "f", nil}, // login names are lower-cased; the file has Frank
		{"Frank", "f", nil},
		{"hank", "password", ErrHashLimit},
		{"ivan", "", nil}, // an empty CRYPT never matches
		{"al ice", "secret", nil},
		{"alice", strings.Repeat("x", 5000), nil},
	} {
		_, err := p.Authenticate(ctx, tc.user, tc.pw)
		if !errors.Is(err, ErrBadCredentials) {
			t.Errorf("Authenticate(%q, %q) = %v, want ErrBadCredentials", tc.user, tc.pw, err)
		}
		if tc.also != nil && !errors.Is(err, tc.also) {
			t.Errorf("Authenticate(%q, %q) = %v, want also %v", tc.user, tc.pw, err, tc.also)
		}
	}
	for _, tc := range []struct{ user, pw string }{
		{"bob", "Hello world!"},
		{"BOB", "Hello world!"},
		{"gina", "Hello world!"}, // no prefix: CRYPT
	} {
		if _, err := p.Authenticate(ctx, tc.user, tc.pw); err != nil {
			t.Errorf("Authenticate(%q, %q): %v", tc.user, tc.pw, err)
		}
	}
	if u, err := p.Lookup(ctx, "Dave"); err != nil || u.Name != "dave" {
		t.Errorf("Lookup(Dave) = %+v, %v", u, err)
	}
	if _, err := p.Lookup(ctx, "nobody"); !errors.Is(err, ErrUnknownUser) {
		t.Errorf("Lookup(nobody) = %v", err)
	}
	for _, want := range []string{"line=5", "line=8", "Frank", "weak"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}

	// Weak schemes allowed, case kept.
	p2, _, _ := newTestFile(t, file, Config{AllowWeakSchemes: true, KeepCase: true})
	if _, err := p2.Authenticate(ctx, "carol", "secret"); err != nil {
		t.Errorf("carol with weak schemes allowed: %v", err)
	}
	if _, err := p2.Authenticate(ctx, "Frank", "f"); err != nil {
		t.Errorf("Frank with KeepCase: %v", err)
	}
}

func TestNewPasswdFileErrors(t *testing.T) {
	if _, err := NewPasswdFile(Config{}, nil); err == nil {
		t.Error("empty path accepted")
	}
	if _, err := NewPasswdFile(Config{Path: filepath.Join(t.TempDir(), "missing")}, nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	path := filepath.Join(t.TempDir(), "passwd")
	writeAtomic(t, path, "x:{PLAIN}x:bad\n")
	if _, err := NewPasswdFile(Config{Path: path}, nil); !errors.Is(err, errNoGoodLines) {
		t.Errorf("only bad lines: %v", err)
	}
	if err := (Config{Path: "x", DefaultScheme: "NOPE"}).Validate(); err == nil {
		t.Error("bad default scheme accepted")
	}
	writeAtomic(t, path, "")
	p, err := NewPasswdFile(Config{Path: path}, nil)
	if err != nil || p.Users() != 0 {
		t.Errorf("empty file: %v", err)
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not a wait for the event
	}
}

func TestReload(t *testing.T) {
	ctx := context.Background()
	p, path, logs := newTestFile(t, "alice:{PLAIN}one\nbob:{PLAIN}b\n", Config{CheckInterval: 10 * time.Millisecond})
	if _, err := p.Authenticate(ctx, "alice", "one"); err != nil {
		t.Fatal(err)
	}
	writeAtomic(t, path, "alice:{PLAIN}two\ncarol:{PLAIN}c\n")
	eventually(t, "new password", func() bool {
		_, err := p.Authenticate(ctx, "alice", "two")
		return err == nil
	})
	if _, err := p.Authenticate(ctx, "alice", "one"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("old password still works: %v", err)
	}
	if _, err := p.Lookup(ctx, "bob"); !errors.Is(err, ErrUnknownUser) {
		t.Errorf("removed user still there: %v", err)
	}

	// Same size, rewritten in place: the ctime/mtime change is seen.
	if err := os.WriteFile(path, []byte("alice:{PLAIN}xyz\ncarol:{PLAIN}c\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "in-place rewrite", func() bool {
		_, err := p.Authenticate(ctx, "alice", "xyz")
		return err == nil
	})

	// A file with only bad lines keeps the previous users.
	writeAtomic(t, path, "alice:{PLAIN}three:notanumber\n")
	eventually(t, "the failed reload to be logged", func() bool {
		p.Users()
		return strings.Contains(logs.String(), "keeping the previous users")
	})
	if _, err := p.Authenticate(ctx, "alice", "xyz"); err != nil {
		t.Errorf("previous users lost: %v", err)
	}
	// A removed file too.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the missing file to be logged", func() bool {
		p.Users()
		return strings.Contains(logs.String(), "no such file")
	})
	if _, err := p.Authenticate(ctx, "carol", "c"); err != nil {
		t.Errorf("previous users lost: %v", err)
	}
	// And a good file again.
	writeAtomic(t, path, "alice:{PLAIN}four\n")
	eventually(t, "recovery", func() bool {
		_, err := p.Authenticate(ctx, "alice", "four")
		return err == nil
	})
}

func TestConcurrentAuthenticateAndReload(t *testing.T) {
	ctx := context.Background()
	p, path, _ := newTestFile(t, "u0:{PLAIN}p0\n", Config{CheckInterval: time.Millisecond, MaxConcurrentVerify: 2})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// Any generation's users must be complete: uN has pN.
				name := fmt.Sprintf("u%d", (g+i)%4)
				u, err := p.Authenticate(ctx, name, "p"+name[1:])
				if err == nil && u.Name != name {
					t.Errorf("got %q for %q", u.Name, name)
				}
				if err != nil && !errors.Is(err, ErrBadCredentials) {
					t.Errorf("Authenticate: %v", err)
				}
			}
		}()
	}
	for gen := 1; gen <= 30; gen++ {
		var b strings.Builder
		for i := range gen%4 + 1 {
			fmt.Fprintf(&b, "u%d:{PLAIN}p%d\n", i, i)
		}
		writeAtomic(t, path, b.String())
		want := gen%4 + 1
		eventually(t, "generation", func() bool { return p.Users() == want })
	}
	close(stop)
	wg.Wait()
}

func TestAuthenticateContext(t *testing.T) {
	p, _, _ := newTestFile(t, "a:{PLAIN}a\n", Config{MaxConcurrentVerify: 1})
	p.verify <- struct{}{} // hold the only slot
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Authenticate(ctx, "a", "a"); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
	<-p.verify
	if _, err := p.Authenticate(context.Background(), "a", "a"); err != nil {
		t.Error(err)
	}
}

func TestVerifyCache(t *testing.T) {
	ctx := context.Background()
	p, path, _ := newTestFile(t, "bob:{BLF-CRYPT}$2y$04$......................LAtw7/ohmmBAhnXqmkuIz83Rl5Qdjhm\n",
		Config{CacheTTL: time.Minute, CacheSize: 1, CheckInterval: 5 * time.Millisecond})
	var mu sync.Mutex
	now := time.Now()
	p.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	if _, err := p.Authenticate(ctx, "bob", "password"); err != nil {
		t.Fatal(err)
	}
	a := p.current().users["bob"]
	if !p.cache.hit("bob", "password", a.pw, p.now()) {
		t.Fatal("successful login not cached")
	}
	if p.cache.hit("bob", "Password", a.pw, p.now()) {
		t.Fatal("cache accepts a wrong password")
	}
	if _, err := p.Authenticate(ctx, "bob", "wrong"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("wrong password with a cached entry: %v", err)
	}
	advance(2 * time.Minute)
	if p.cache.hit("bob", "password", a.pw, p.now()) {
		t.Fatal("expired entry used")
	}
	if _, err := p.Authenticate(ctx, "bob", "password"); err != nil {
		t.Fatal(err)
	}
	// A changed entry in the file invalidates the cached login.
	writeAtomic(t, path, "bob:{PLAIN}new\n")
	eventually(t, "reload", func() bool {
		advance(10 * time.Millisecond)
		_, err := p.Authenticate(ctx, "bob", "new")
		return err == nil
	})
	if _, err := p.Authenticate(ctx, "bob", "password"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("old password accepted from the cache: %v", err)
	}
	// Size bound.
	p.cache.add("x", "y", a.pw, p.now())
	p.cache.add("z", "y", a.pw, p.now())
	if n := len(p.cache.entries); n > 1 {
		t.Errorf("cache holds %d entries, size 1", n)
	}
}
