// Package auth authenticates IMAP users against a Dovecot passwd-file.
//
// The file is Dovecot's passwd-file format (see ParsePasswdFile) with
// Dovecot's password schemes (see Schemes): {PLAIN}, {CRYPT} (bcrypt,
// SHA-crypt, MD5-crypt and DES crypt strings), {SHA512-CRYPT},
// {SHA256-CRYPT}, {BLF-CRYPT}, {SSHA}, {SSHA256}, {SSHA512}, {ARGON2I},
// {ARGON2ID}, the plain digests {SHA}, {SHA256}, {SHA512}, {PLAIN-MD5}
// and the weak ones Dovecot knows. A password without a {SCHEME} prefix is
// in Config.DefaultScheme (CRYPT, Dovecot's default). Hash makes a stored
// password the way `doveadm pw` does.
//
// PasswdFile re-reads the file when it changes: on access, at most once per
// Config.CheckInterval, it compares the file's inode, size, mtime and ctime
// with those of the copy in memory, and on a change parses the file into a
// new immutable table that replaces the old one atomically. Lookups never
// wait for a reload. A file on NFS is seen to change only once the
// client's attribute cache expires (acregmin..acregmax, seconds).
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// User is an account found in the passwd-file.
type User struct {
	Name string
	// UID and GID from the file; -1 when the field is empty.
	UID, GID int
	// Home from the file; "" when the field is empty.
	Home string
	// Mail is the mail location from the extra fields (userdb_mail=, else
	// mail=), "" = use the template. It is returned as written: any %
	// variables in it are for the caller to expand like the template.
	Mail string
	// Extra holds all extra fields as written (keys keep any "userdb_"
	// prefix); a bare key has the value "". Nil when there are none. The
	// caller must not modify it.
	Extra map[string]string
}

// Authenticator checks users' passwords.
type Authenticator interface {
	// Authenticate checks a password. Safe for concurrent use. Wrong user
	// or password: ErrBadCredentials.
	Authenticate(ctx context.Context, user, password string) (*User, error)
	// Lookup finds a user without a password (used for the cluster
	// credential / proxied logins).
	Lookup(ctx context.Context, user string) (*User, error)
}

var (
	// ErrBadCredentials is returned for an unknown user, a wrong password,
	// or a user whose stored password cannot be used (it is then wrapped
	// together with the reason, e.g. ErrWeakScheme, and the reason is
	// logged).
	ErrBadCredentials = errors.New("auth: bad credentials")
	// ErrUnknownUser is returned by Lookup for a user not in the file.
	ErrUnknownUser = errors.New("auth: unknown user")
)

// DovecotUsernameChars is Dovecot's default auth_username_chars.
const DovecotUsernameChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01234567890.-_@"

// Config configures a PasswdFile.
type Config struct {
	// Path of the passwd-file. Required.
	Path string
	// DefaultScheme is the scheme of passwords written without a {SCHEME}
	// prefix. "" means CRYPT, Dovecot's default for passwd-files.
	DefaultScheme string
	// CheckInterval is how often, at most, an access checks whether the
	// file changed. 0 means 1s. Negative means never re-read.
	CheckInterval time.Duration
	// AllowWeakSchemes allows the schemes Dovecot calls weak (DES-CRYPT,
	// MD5-CRYPT, MD5, SMD5, PLAIN-MD5, LDAP-MD5), like Dovecot's
	// auth_allow_weak_schemes. false (Dovecot's default) refuses them: such
	// users cannot log in, and each attempt is logged.
	AllowWeakSchemes bool
	// KeepCase, when false (the default), lower-cases the login name
	// before looking it up, as Dovecot's default auth_username_format
	// (%Lu) does. Names in the file are always matched exactly.
	KeepCase bool
	// UsernameChars lists the characters allowed in login names; others
	// fail the login. "" means DovecotUsernameChars. "*" allows any.
	UsernameChars string
	// MaxPasswordLength bounds the length of a password given at login; a
	// longer one fails. 0 means 4096 bytes.
	MaxPasswordLength int
	// MaxConcurrentVerify bounds how many password checks run at once
	// (bcrypt and Argon2 cost CPU and memory); others wait, honouring
	// their context. 0 means 2 × GOMAXPROCS.
	MaxConcurrentVerify int
	// Limits bound the cost of stored hashes; zero fields take
	// DefaultLimits.
	Limits Limits
	// CacheTTL, when positive, remembers a successful login for that long
	// so that the same user and password are accepted again without
	// re-computing the hash (useful with BLF-CRYPT and ARGON2ID, whose
	// checks cost milliseconds to a second). The cache holds keyed HMACs
	// of passwords, never passwords; a change of the user's entry in the
	// file invalidates it. 0 (the default, like Dovecot's auth_cache_size)
	// disables it.
	CacheTTL time.Duration
	// CacheSize bounds the number of users in the cache. 0 means 100,000.
	CacheSize int
}

// DefaultConfig returns a Config with every default filled in except Path.
func DefaultConfig() Config {
	return Config{
		DefaultScheme:       "CRYPT",
		CheckInterval:       time.Second,
		UsernameChars:       DovecotUsernameChars,
		MaxPasswordLength:   4096,
		MaxConcurrentVerify: 2 * runtime.GOMAXPROCS(0),
		Limits:              DefaultLimits(),
		CacheSize:           100_000,
	}
}

// Validate reports configuration errors.
func (c Config) Validate() error {
	if c.Path == "" {
		return errors.New("auth: Config.Path is empty")
	}
	if c.DefaultScheme != "" {
		if _, _, _, err := lookupScheme(c.DefaultScheme); err != nil {
			return fmt.Errorf("auth: Config.DefaultScheme: %w", err)
		}
	}
	if c.MaxPasswordLength < 0 {
		return fmt.Errorf("auth: Config.MaxPasswordLength %d is negative", c.MaxPasswordLength)
	}
	if c.MaxConcurrentVerify < 0 {
		return fmt.Errorf("auth: Config.MaxConcurrentVerify %d is negative", c.MaxConcurrentVerify)
	}
	if c.CacheTTL < 0 || c.CacheSize < 0 {
		return fmt.Errorf("auth: Config.CacheTTL %v / CacheSize %d is negative", c.CacheTTL, c.CacheSize)
	}
	if err := c.Limits.Validate(); err != nil {
		return fmt.Errorf("auth: Config.Limits: %w", err)
	}
	return nil
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.DefaultScheme == "" {
		c.DefaultScheme = d.DefaultScheme
	}
	if c.CheckInterval == 0 {
		c.CheckInterval = d.CheckInterval
	}
	if c.UsernameChars == "" {
		c.UsernameChars = d.UsernameChars
	}
	if c.MaxPasswordLength == 0 {
		c.MaxPasswordLength = d.MaxPasswordLength
	}
	if c.MaxConcurrentVerify == 0 {
		c.MaxConcurrentVerify = d.MaxConcurrentVerify
	}
	if c.CacheSize == 0 {
		c.CacheSize = d.CacheSize
	}
	c.Limits = c.Limits.withDefaults()
	return c
}

// account is a user with the parsed stored password.
type account struct {
	user User
	line int
	pw   *Password // nil: no usable password (pwErr says why)
	// pwErr is why pw is nil: no password field, or a hash that did not
	// parse (logged at load time with its line number).
	pwErr error
}

// table is one immutable snapshot of the file.
type table struct {
	users map[string]*account
	stamp fileStamp
}

// fileStamp identifies a version of the file.
type fileStamp struct {
	dev, ino    uint64
	size        int64
	mtime       time.Time
	ctimeSec    int64
	ctimeNsec   int64
	statSuccess bool
}

func stampOf(fi os.FileInfo) fileStamp {
	s := fileStamp{size: fi.Size(), mtime: fi.ModTime(), statSuccess: true}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.dev, s.ino = uint64(st.Dev), st.Ino
		s.ctimeSec, s.ctimeNsec = st.Ctim.Sec, st.Ctim.Nsec
	}
	return s
}

func (s fileStamp) equal(o fileStamp) bool {
	return s.dev == o.dev && s.ino == o.ino && s.size == o.size && s.mtime.Equal(o.mtime) &&
		s.ctimeSec == o.ctimeSec && s.ctimeNsec == o.ctimeNsec && s.statSuccess == o.statSuccess
}

// PasswdFile is an Authenticator over a Dovecot passwd-file. It is safe
// for concurrent use; its methods may block on a re-read of the file by the
// calling goroutine (at most once per CheckInterval, by one caller; the
// others use the previous table meanwhile) and on MaxConcurrentVerify.
type PasswdFile struct {
	cfg    Config
	logger *slog.Logger
	tab    atomic.Pointer[table]
	// nextCheck is the UnixNano time before which the file is not stat'ed.
	nextCheck atomic.Int64
	// reloadMu guards reloading, so that one goroutine re-reads at a time.
	reloadMu sync.Mutex
	// lastErr is the last reload error message, so that a persistent
	// problem is logged once rather than on every check; guarded by
	// reloadMu.
	lastErr string
	verify  chan struct{} // semaphore of MaxConcurrentVerify
	cache   *verifyCache  // nil when CacheTTL is 0
	now     func() time.Time
}

var _ Authenticator = (*PasswdFile)(nil)

// NewPasswdFile reads the passwd-file. It fails when the file cannot be
// read or when it has bad lines only; bad lines among good ones are logged
// with their line numbers and skipped. logger may be nil.
func NewPasswdFile(cfg Config, logger *slog.Logger) (*PasswdFile, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	p := &PasswdFile{
		cfg:    cfg,
		logger: logger.With("passwd_file", cfg.Path),
		verify: make(chan struct{}, cfg.MaxConcurrentVerify),
		now:    time.Now,
	}
	if cfg.CacheTTL > 0 {
		p.cache = newVerifyCache(cfg.CacheTTL, cfg.CacheSize)
	}
	t, err := p.load()
	if err != nil {
		return nil, err
	}
	p.tab.Store(t)
	p.nextCheck.Store(p.now().Add(cfg.CheckInterval).UnixNano())
	return p, nil
}

// errNoGoodLines is returned when a non-empty file yields no user.
var errNoGoodLines = errors.New("auth: passwd-file has no valid line")

// load reads and parses the file into a new table.
func (p *PasswdFile) load() (*table, error) {
	f, err := os.Open(p.cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	entries, bad, err := ParsePasswdFile(f)
	if err != nil {
		return nil, fmt.Errorf("auth: %s: %w", p.cfg.Path, err)
	}
	for _, le := range bad {
		p.logger.Error("passwd-file line skipped", "line", le.Line, "err", le.Err)
	}
	if len(entries) == 0 && len(bad) > 0 {
		return nil, fmt.Errorf("%w: %s (%d bad lines)", errNoGoodLines, p.cfg.Path, len(bad))
	}
	t := &table{users: make(map[string]*account, len(entries)), stamp: stampOf(fi)}
	for i := range entries {
		e := &entries[i]
		a := &account{user: e.User, line: e.Line}
		if !p.cfg.KeepCase && e.User.Name != strings.ToLower(e.User.Name) {
			p.logger.Warn("passwd-file user name has upper-case letters and login names are lower-cased: the user cannot log in",
				"line", e.Line, "user", e.User.Name)
		}
		switch {
		case !e.HasPassword:
			a.pwErr = errors.New("no password field")
		default:
			pw, err := ParsePassword(e.Password, p.cfg.DefaultScheme, p.cfg.Limits)
			if err != nil {
				a.pwErr = err
				p.logger.Error("passwd-file password unusable", "line", e.Line, "user", e.User.Name, "err", err)
			} else {
				a.pw = pw
				if pw.Weak() && !p.cfg.AllowWeakSchemes {
					p.logger.Warn("passwd-file password uses a weak scheme, refused unless weak schemes are allowed",
						"line", e.Line, "user", e.User.Name, "scheme", pw.Scheme())
				}
			}
		}
		t.users[e.User.Name] = a
	}
	p.logger.Info("passwd-file read", "users", len(t.users), "bad_lines", len(bad))
	return t, nil
}

// current returns the table, re-reading the file first when it is time to
// check and the file changed.
func (p *PasswdFile) current() *table {
	t := p.tab.Load()
	if p.cfg.CheckInterval < 0 {
		return t
	}
	now := p.now()
	if now.UnixNano() < p.nextCheck.Load() {
		return t
	}
	if !p.reloadMu.TryLock() {
		return t // another goroutine is checking; use what we have
	}
	defer p.reloadMu.Unlock()
	p.nextCheck.Store(now.Add(p.cfg.CheckInterval).UnixNano())
	fi, err := os.Stat(p.cfg.Path)
	if err != nil {
		p.reloadFailedLocked(fmt.Errorf("auth: %w", err))
		return t
	}
	if stampOf(fi).equal(t.stamp) {
		return t
	}
	nt, err := p.load()
	if err != nil {
		p.reloadFailedLocked(err)
		// Do not retry until the file changes again.
		t2 := *t
		t2.stamp = stampOf(fi)
		p.tab.Store(&t2)
		return &t2
	}
	p.lastErr = ""
	p.tab.Store(nt)
	return nt
}

// reloadFailedLocked logs a reload failure once per distinct error; the
// previous users stay in use.
func (p *PasswdFile) reloadFailedLocked(err error) {
	if msg := err.Error(); msg != p.lastErr {
		p.lastErr = msg
		p.logger.Error("passwd-file not re-read, keeping the previous users", "err", err)
	}
}

// normalize applies the login name rules; ok is false for a name that
// cannot be valid.
func (p *PasswdFile) normalize(name string) (string, bool) {
	if name == "" {
		return "", false
	}
	if p.cfg.UsernameChars != "*" {
		for i := 0; i < len(name); i++ {
			if strings.IndexByte(p.cfg.UsernameChars, name[i]) < 0 {
				return "", false
			}
		}
	}
	if !p.cfg.KeepCase {
		name = strings.ToLower(name)
	}
	return name, true
}

// Lookup finds a user by login name (the same normalisation as
// Authenticate). It returns ErrUnknownUser when there is none. The User is
// the caller's copy except for Extra, which must not be modified.
func (p *PasswdFile) Lookup(ctx context.Context, name string) (*User, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n, ok := p.normalize(name)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownUser, name)
	}
	a := p.current().users[n]
	if a == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownUser, name)
	}
	u := a.user
	return &u, nil
}

// Authenticate checks the password of a user. A wrong user or password
// returns an error wrapping ErrBadCredentials; so does a user whose stored
// hash cannot be used, together with the reason (ErrWeakScheme,
// ErrHashLimit, ErrBadHash, ErrUnknownScheme), which is also logged. A
// context error is returned when ctx ends while waiting for a free
// verification slot.
func (p *PasswdFile) Authenticate(ctx context.Context, name, password string) (*User, error) {
	n, ok := p.normalize(name)
	if !ok || len(password) > p.cfg.MaxPasswordLength {
		return nil, ErrBadCredentials
	}
	a := p.current().users[n]
	if a == nil {
		return nil, ErrBadCredentials
	}
	if a.pw == nil {
		return nil, fmt.Errorf("%w: user %q has no usable password: %w", ErrBadCredentials, n, a.pwErr)
	}
	if a.pw.Weak() && !p.cfg.AllowWeakSchemes {
		p.logger.Warn("login refused: weak password scheme", "user", n, "line", a.line, "scheme", a.pw.Scheme())
		return nil, fmt.Errorf("%w: %w: %s", ErrBadCredentials, ErrWeakScheme, a.pw.Scheme())
	}
	if p.cache != nil && p.cache.hit(n, password, a.pw, p.now()) {
		u := a.user
		return &u, nil
	}
	select {
	case p.verify <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	match := a.pw.Verify(password)
	<-p.verify
	if !match {
		return nil, ErrBadCredentials
	}
	if p.cache != nil {
		p.cache.add(n, password, a.pw, p.now())
	}
	u := a.user
	return &u, nil
}

// Users returns the number of users in the current table (after a check
// for changes, like any access).
func (p *PasswdFile) Users() int {
	return len(p.current().users)
}
