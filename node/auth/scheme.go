package auth

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sort"
	"strings"
)

// Errors about stored password hashes. They are wrapped with details; test
// them with errors.Is.
var (
	// ErrUnknownScheme: the {SCHEME} prefix names a scheme this server
	// does not implement.
	ErrUnknownScheme = errors.New("auth: unknown password scheme")
	// ErrBadHash: the stored hash is malformed for its scheme.
	ErrBadHash = errors.New("auth: malformed password hash")
	// ErrHashLimit: the stored hash asks for more work (rounds, memory)
	// than Limits allow; it is refused rather than computed.
	ErrHashLimit = errors.New("auth: password hash exceeds the cost limits")
	// ErrWeakScheme: the scheme is one Dovecot calls weak (DES-CRYPT,
	// MD5-CRYPT, PLAIN-MD5, ...) and weak schemes are not allowed.
	ErrWeakScheme = errors.New("auth: weak password scheme refused")
)

// Limits bound the cost of checking one stored hash, so that a hostile or
// mistaken entry cannot make a login burn minutes of CPU or gigabytes of
// memory. A hash above a limit is refused with ErrHashLimit.
type Limits struct {
	// MaxCryptRounds caps rounds= of SHA256-CRYPT / SHA512-CRYPT.
	// 0 means the default, 2,000,000 (glibc allows 999,999,999; 5,000 is
	// the default and passlib uses 656,000).
	MaxCryptRounds int
	// MaxBcryptCost caps the cost of BLF-CRYPT ($2y$NN$). 0 means the
	// default, 16 (doveadm uses 5; 31 would take days).
	MaxBcryptCost int
	// MaxArgon2MemoryKiB caps m= of ARGON2I / ARGON2ID. 0 means the
	// default, 1 GiB (what `doveadm pw -s ARGON2ID -r 4` produces).
	MaxArgon2MemoryKiB uint32
	// MaxArgon2Time caps t= of ARGON2I / ARGON2ID. 0 means the default, 16.
	MaxArgon2Time uint32
	// MaxArgon2Threads caps p= of ARGON2I / ARGON2ID. 0 means the
	// default, 16.
	MaxArgon2Threads uint32
}

// DefaultLimits returns the limits used for zero fields.
func DefaultLimits() Limits {
	return Limits{
		MaxCryptRounds:     2_000_000,
		MaxBcryptCost:      16,
		MaxArgon2MemoryKiB: 1 << 20,
		MaxArgon2Time:      16,
		MaxArgon2Threads:   16,
	}
}

// withDefaults fills zero fields from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxCryptRounds == 0 {
		l.MaxCryptRounds = d.MaxCryptRounds
	}
	if l.MaxBcryptCost == 0 {
		l.MaxBcryptCost = d.MaxBcryptCost
	}
	if l.MaxArgon2MemoryKiB == 0 {
		l.MaxArgon2MemoryKiB = d.MaxArgon2MemoryKiB
	}
	if l.MaxArgon2Time == 0 {
		l.MaxArgon2Time = d.MaxArgon2Time
	}
	if l.MaxArgon2Threads == 0 {
		l.MaxArgon2Threads = d.MaxArgon2Threads
	}
	return l
}

// Validate reports limits that are out of range.
func (l Limits) Validate() error {
	switch {
	case l.MaxCryptRounds < 0 || l.MaxCryptRounds > 999_999_999:
		return fmt.Errorf("auth: MaxCryptRounds %d out of range 0..999999999", l.MaxCryptRounds)
	case l.MaxBcryptCost < 0 || l.MaxBcryptCost > 31:
		return fmt.Errorf("auth: MaxBcryptCost %d out of range 0..31", l.MaxBcryptCost)
	case l.MaxArgon2Threads > 255:
		return fmt.Errorf("auth: MaxArgon2Threads %d out of range 0..255", l.MaxArgon2Threads)
	}
	return nil
}

// encoding is how a scheme's raw bytes are written in the file.
type encoding int

const (
	encNone encoding = iota
	encBase64
	encHex
)

// schemeKind says which verification a scheme uses.
type schemeKind int

const (
	kindPlain schemeKind = iota
	kindPlainTrunc
	kindDigest     // raw = H(password)
	kindSaltedTail // raw = H(password || salt) || salt
	kindCrypt      // a crypt(3) string: DES, $1$, $5$, $6$, $2?$
	kindBlowfish   // a $2?$ string only
	kindMD5        // MD5: a $1$ string or a PLAIN-MD5 digest
	kindMD5Crypt   // a $1$ string only
	kindArgon2     // a $argon2i$ / $argon2id$ string
)

// scheme describes one of Dovecot's password schemes.
type scheme struct {
	name   string
	kind   schemeKind
	enc    encoding // default encoding of the stored value
	rawLen int      // fixed raw length (digests), 0 = any
	weak   bool     // Dovecot refuses it unless auth_allow_weak_schemes=yes
	newH   func() hash.Hash
}

// schemes lists the schemes this package implements, under Dovecot's names.
var schemes = func() map[string]*scheme {
	list := []*scheme{
		{name: "PLAIN", kind: kindPlain},
		{name: "CLEAR", kind: kindPlain},
		{name: "CLEARTEXT", kind: kindPlain},
		{name: "PLAIN-TRUNC", kind: kindPlainTrunc},
		{name: "CRYPT", kind: kindCrypt},
		{name: "DES-CRYPT", kind: kindCrypt, weak: true},
		{name: "SHA256-CRYPT", kind: kindCrypt},
		{name: "SHA512-CRYPT", kind: kindCrypt},
		{name: "BLF-CRYPT", kind: kindBlowfish},
		{name: "MD5", kind: kindMD5, weak: true},
		{name: "MD5-CRYPT", kind: kindMD5Crypt, weak: true},
		{name: "SHA", kind: kindDigest, enc: encBase64, rawLen: sha1.Size, newH: sha1.New},
		{name: "SHA1", kind: kindDigest, enc: encBase64, rawLen: sha1.Size, newH: sha1.New},
		{name: "SHA256", kind: kindDigest, enc: encBase64, rawLen: sha256.Size, newH: sha256.New},
		{name: "SHA512", kind: kindDigest, enc: encBase64, rawLen: sha512.Size, newH: sha512.New},
		{name: "PLAIN-MD5", kind: kindDigest, enc: encHex, rawLen: md5.Size, weak: true, newH: md5.New},
		{name: "LDAP-MD5", kind: kindDigest, enc: encBase64, rawLen: md5.Size, weak: true, newH: md5.New},
		{name: "SMD5", kind: kindSaltedTail, enc: encBase64, weak: true, newH: md5.New},
		{name: "SSHA", kind: kindSaltedTail, enc: encBase64, newH: sha1.New},
		{name: "SSHA256", kind: kindSaltedTail, enc: encBase64, newH: sha256.New},
		{name: "SSHA512", kind: kindSaltedTail, enc: encBase64, newH: sha512.New},
		{name: "ARGON2I", kind: kindArgon2},
		{name: "ARGON2ID", kind: kindArgon2},
		{name: "ARGON2", kind: kindArgon2},
	}
	m := make(map[string]*scheme, len(list))
	for _, s := range list {
		m[s.name] = s
	}
	return m
}()

// Schemes returns the names of the implemented schemes, sorted (what
// `doveadm pw -l` lists, restricted to this server).
func Schemes() []string {
	names := make([]string, 0, len(schemes))
	for n := range schemes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// lookupScheme splits "NAME[.ENC]" and finds the scheme and encoding.
// Names are case-insensitive, as in Dovecot.
func lookupScheme(name string) (*scheme, encoding, bool, error) {
	name = strings.ToUpper(name)
	base, enc, hasEnc := strings.Cut(name, ".")
	s, ok := schemes[base]
	if !ok {
		return nil, 0, false, fmt.Errorf("%w: %q", ErrUnknownScheme, name)
	}
	if !hasEnc {
		return s, s.enc, false, nil
	}
	switch enc {
	case "B64", "BASE64":
		return s, encBase64, true, nil
	case "HEX":
		return s, encHex, true, nil
	}
	return nil, 0, false, fmt.Errorf("%w: unknown encoding in %q", ErrUnknownScheme, name)
}

// SplitScheme separates a "{SCHEME}value" stored password into its scheme
// and value, as Dovecot does: a value without braces that starts with
// "$1$" is MD5-CRYPT, anything else without braces has no scheme ("").
func SplitScheme(stored string) (schemeName, value string) {
	if strings.HasPrefix(stored, "{") {
		if i := strings.IndexByte(stored, '}'); i > 0 {
			return stored[1:i], stored[i+1:]
		}
	}
	if strings.HasPrefix(stored, "$1$") && strings.Count(stored, "$") >= 3 {
		return "MD5-CRYPT", stored
	}
	return "", stored
}

// Password is a stored password hash parsed once and ready to be checked
// many times. It is immutable and safe for concurrent use.
type Password struct {
	scheme string // canonical scheme name
	weak   bool
	check  func(password []byte) bool
}

// Scheme returns the scheme's canonical name; for CRYPT it names the
// actual algorithm found in the value (e.g. "SHA512-CRYPT", "DES-CRYPT").
func (p *Password) Scheme() string { return p.scheme }

// Weak reports whether Dovecot counts this hash's algorithm as weak.
func (p *Password) Weak() bool { return p.weak }

// Verify reports whether password matches. It takes time proportional to
// the hash's cost and compares in constant time.
func (p *Password) Verify(password string) bool {
	return p.check([]byte(password))
}

// ParsePassword parses a stored password: "{SCHEME}value", a bare "$1$..."
// (MD5-CRYPT), or a bare value in defaultScheme ("" means CRYPT, Dovecot's
// default for passwd-files). Hashes above lim are refused with
// ErrHashLimit; zero fields of lim take DefaultLimits.
func ParsePassword(stored, defaultScheme string, lim Limits) (*Password, error) {
	lim = lim.withDefaults()
	name, value := SplitScheme(stored)
	if name == "" {
		name = defaultScheme
		if name == "" {
			name = "CRYPT"
		}
	}
	s, enc, explicitEnc, err := lookupScheme(name)
	if err != nil {
		return nil, err
	}
	raw, err := decodeValue(s, enc, explicitEnc, value)
	if err != nil {
		return nil, err
	}
	switch s.kind {
	case kindPlain:
		return &Password{scheme: s.name, check: func(pw []byte) bool {
			return subtle.ConstantTimeCompare(pw, raw) == 1
		}}, nil
	case kindPlainTrunc:
		return parsePlainTrunc(raw)
	case kindDigest:
		newH := s.newH
		return &Password{scheme: s.name, weak: s.weak, check: func(pw []byte) bool {
			h := newH()
			h.Write(pw)
			return subtle.ConstantTimeCompare(h.Sum(nil), raw) == 1
		}}, nil
	case kindSaltedTail:
		newH := s.newH
		size := newH().Size()
		if len(raw) <= size {
			return nil, fmt.Errorf("%w: %s value too short", ErrBadHash, s.name)
		}
		sum, salt := raw[:size], raw[size:]
		return &Password{scheme: s.name, weak: s.weak, check: func(pw []byte) bool {
			h := newH()
			h.Write(pw)
			h.Write(salt)
			return subtle.ConstantTimeCompare(h.Sum(nil), sum) == 1
		}}, nil
	case kindCrypt:
		return parseCrypt(string(raw), lim)
	case kindBlowfish:
		return parseBcrypt(string(raw), lim)
	case kindMD5:
		if strings.HasPrefix(string(raw), "$1$") {
			return parseMD5Crypt(string(raw))
		}
		digest, err := decodeValue(schemes["PLAIN-MD5"], encHex, false, string(raw))
		if err != nil {
			return nil, fmt.Errorf("%w: MD5 value is neither $1$ nor an MD5 digest", ErrBadHash)
		}
		return &Password{scheme: "PLAIN-MD5", weak: true, check: func(pw []byte) bool {
			sum := md5.Sum(pw)
			return subtle.ConstantTimeCompare(sum[:], digest) == 1
		}}, nil
	case kindMD5Crypt:
		return parseMD5Crypt(string(raw))
	case kindArgon2:
		return parseArgon2(string(raw), lim)
	}
	return nil, fmt.Errorf("%w: %s", ErrUnknownScheme, s.name)
}

// Verify parses stored (see ParsePassword) and checks password against it.
// A malformed or refused hash returns an error and false.
func Verify(stored, password, defaultScheme string, lim Limits) (bool, error) {
	p, err := ParsePassword(stored, defaultScheme, lim)
	if err != nil {
		return false, err
	}
	return p.Verify(password), nil
}

// decodeValue turns the stored text into the scheme's raw bytes. Like
// Dovecot, a scheme with a fixed raw length and no explicit encoding
// suffix takes hex when the text is exactly twice that length.
func decodeValue(s *scheme, enc encoding, explicitEnc bool, value string) ([]byte, error) {
	if !explicitEnc && s.rawLen != 0 && enc != encNone && len(value) == 2*s.rawLen {
		if b, err := hex.DecodeString(value); err == nil {
			return b, nil
		}
		enc = encBase64
	}
	var raw []byte
	switch enc {
	case encNone:
		raw = []byte(value)
	case encHex:
		b, err := hex.DecodeString(value)
		if err != nil {
			return nil, fmt.Errorf("%w: %s value is not hex: %w", ErrBadHash, s.name, err)
		}
		raw = b
	case encBase64:
		b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(value, "="))
		if err != nil {
			return nil, fmt.Errorf("%w: %s value is not base64: %w", ErrBadHash, s.name, err)
		}
		raw = b
	}
	if s.rawLen != 0 && len(raw) != s.rawLen {
		return nil, fmt.Errorf("%w: %s value has %d bytes, want %d", ErrBadHash, s.name, len(raw), s.rawLen)
	}
	return raw, nil
}

func parsePlainTrunc(raw []byte) (*Password, error) {
	// Format: <length>-<password>; a password longer than length is
	// accepted when its prefix matches (it was truncated when stored).
	i := 0
	n := 0
	for i < len(raw) && raw[i] >= '0' && raw[i] <= '9' {
		if n > 1<<20 {
			return nil, fmt.Errorf("%w: PLAIN-TRUNC length too large", ErrBadHash)
		}
		n = n*10 + int(raw[i]-'0')
		i++
	}
	if i == 0 || i == len(raw) || raw[i] != '-' {
		return nil, fmt.Errorf("%w: PLAIN-TRUNC missing length prefix", ErrBadHash)
	}
	stored := raw[i+1:]
	return &Password{scheme: "PLAIN-TRUNC", check: func(pw []byte) bool {
		if len(stored) == n && len(pw) >= n {
			return subtle.ConstantTimeCompare(pw[:n], stored) == 1
		}
		return subtle.ConstantTimeCompare(pw, stored) == 1
	}}, nil
}

// parseCrypt dispatches a crypt(3) string on its prefix, as Dovecot's
// CRYPT scheme does through libc.
func parseCrypt(v string, lim Limits) (*Password, error) {
	switch {
	case v == "":
		// crypt("", "") would match an empty password; Dovecot refuses.
		return &Password{scheme: "CRYPT", check: func([]byte) bool { return false }}, nil
	case len(v) > 4 && v[0] == '$' && v[1] == '2' && v[3] == '$':
		return parseBcrypt(v, lim)
	case strings.HasPrefix(v, "$5$"):
		return parseSHACrypt(v, false, lim)
	case strings.HasPrefix(v, "$6$"):
		return parseSHACrypt(v, true, lim)
	case strings.HasPrefix(v, "$1$"):
		return parseMD5Crypt(v)
	case v[0] == '$' || v[0] == '_':
		return nil, fmt.Errorf("%w: crypt algorithm %q not supported", ErrUnknownScheme, cryptPrefix(v))
	}
	return parseDESCrypt(v)
}

// cryptPrefix returns the "$id$" part of a crypt string for messages.
func cryptPrefix(v string) string {
	if len(v) > 1 && v[0] == '$' {
		if i := strings.IndexByte(v[1:], '$'); i >= 0 && i < 16 {
			return v[:i+2]
		}
	}
	if len(v) > 4 {
		return v[:4]
	}
	return v
}

// Hash makes a stored password the way `doveadm pw -s SCHEME` does: the
// result starts with "{SCHEME}" (as given, upper-cased, with any .HEX/.B64
// suffix). An empty scheme means CRYPT, doveadm's default, which like
// Dovecot 2.3+ produces a bcrypt "$2y$05$" hash. Salts are read from rnd
// (nil means crypto/rand).
func Hash(scheme, password string, rnd io.Reader) (string, error) {
	return HashRounds(scheme, password, 0, rnd)
}

// HashRounds is Hash with `doveadm pw -r ROUNDS`: the rounds of
// SHA256-CRYPT/SHA512-CRYPT (clamped to 1000..999999999), the cost of
// BLF-CRYPT/CRYPT (clamped to 4..31), or the ops limit of ARGON2I/ARGON2ID
// (which also picks libsodium's memory limit). 0 means the default.
func HashRounds(scheme, password string, rounds int, rnd io.Reader) (string, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	if scheme == "" {
		scheme = "CRYPT"
	}
	scheme = strings.ToUpper(scheme)
	if rounds < 0 {
		return "", fmt.Errorf("auth: negative rounds %d", rounds)
	}
	s, enc, _, err := lookupScheme(scheme)
	if err != nil {
		return "", err
	}
	raw, err := generate(s, []byte(password), rounds, rnd)
	if err != nil {
		return "", err
	}
	var text string
	switch enc {
	case encNone:
		text = string(raw)
	case encBase64:
		text = base64.StdEncoding.EncodeToString(raw)
	case encHex:
		text = hex.EncodeToString(raw)
	}
	return "{" + scheme + "}" + text, nil
}

// generate produces a scheme's raw value, as Dovecot's generate functions.
func generate(s *scheme, pw []byte, rounds int, rnd io.Reader) ([]byte, error) {
	switch s.kind {
	case kindPlain, kindPlainTrunc:
		return pw, nil
	case kindDigest:
		h := s.newH()
		h.Write(pw)
		return h.Sum(nil), nil
	case kindSaltedTail:
		salt := make([]byte, 4)
		if _, err := io.ReadFull(rnd, salt); err != nil {
			return nil, fmt.Errorf("auth: reading salt: %w", err)
		}
		h := s.newH()
		h.Write(pw)
		h.Write(salt)
		return append(h.Sum(nil), salt...), nil
	case kindCrypt, kindBlowfish:
		switch s.name {
		case "DES-CRYPT":
			salt, err := cryptSalt(rnd, 2)
			if err != nil {
				return nil, err
			}
			return []byte(desCrypt(pw, salt)), nil
		case "SHA256-CRYPT", "SHA512-CRYPT":
			salt, err := cryptSalt(rnd, 16)
			if err != nil {
				return nil, err
			}
			r := rounds
			if r == 0 {
				r = shaCryptDefaultRounds
			}
			r = min(max(r, shaCryptMinRounds), shaCryptMaxRounds)
			return []byte(shaCrypt(pw, salt, r, r != shaCryptDefaultRounds, s.name == "SHA512-CRYPT")), nil
		}
		// CRYPT and BLF-CRYPT: bcrypt, $2y$, cost 5 by default.
		cost := rounds
		if cost == 0 {
			cost = 5
		}
		cost = min(max(cost, 4), 31)
		salt := make([]byte, 16)
		if _, err := io.ReadFull(rnd, salt); err != nil {
			return nil, fmt.Errorf("auth: reading salt: %w", err)
		}
		return []byte(bcryptHash(pw, salt, cost, 'y')), nil
	case kindMD5, kindMD5Crypt:
		salt, err := cryptSalt(rnd, 8)
		if err != nil {
			return nil, err
		}
		return []byte(md5Crypt(pw, salt)), nil
	case kindArgon2:
		return argon2Generate(s.name, pw, rounds, rnd)
	}
	return nil, fmt.Errorf("%w: cannot generate %s", ErrUnknownScheme, s.name)
}

// cryptAlphabet is the alphabet of crypt(3) salts and hashes; Dovecot
// draws salts from it too.
const cryptAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// cryptSalt draws n salt characters uniformly from cryptAlphabet.
func cryptSalt(rnd io.Reader, n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(rnd, b); err != nil {
		return nil, fmt.Errorf("auth: reading salt: %w", err)
	}
	for i := range b {
		b[i] = cryptAlphabet[b[i]&63]
	}
	return b, nil
}

// constantTimeEqualString compares two strings in time that depends only
// on their lengths.
func constantTimeEqualString(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
