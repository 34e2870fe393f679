package auth

import (
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

// SHA-crypt ($5$ SHA256-CRYPT and $6$ SHA512-CRYPT), implemented from
// Ulrich Drepper's published specification "Unix crypt using SHA-256 and
// SHA-512".

const (
	shaCryptDefaultRounds = 5000
	shaCryptMinRounds     = 1000
	shaCryptMaxRounds     = 999_999_999
	shaCryptMaxSalt       = 16
)

// shaCrypt computes the crypt string for password and salt (at most 16
// characters are used). showRounds adds "rounds=N$" as the spec requires
// when rounds were given explicitly.
func shaCrypt(pw, salt []byte, rounds int, showRounds, is512 bool) string {
	if len(salt) > shaCryptMaxSalt {
		salt = salt[:shaCryptMaxSalt]
	}
	newH := sha256.New
	prefix := "$5$"
	if is512 {
		newH = sha512.New
		prefix = "$6$"
	}
	sum := func(h hash.Hash) []byte { return h.Sum(nil) }

	// Digest B: password, salt, password.
	b := newH()
	b.Write(pw)
	b.Write(salt)
	b.Write(pw)
	bSum := sum(b)
	size := len(bSum)

	// Digest A.
	a := newH()
	a.Write(pw)
	a.Write(salt)
	n := len(pw)
	for ; n > size; n -= size {
		a.Write(bSum)
	}
	a.Write(bSum[:n])
	for n = len(pw); n > 0; n >>= 1 {
		if n&1 != 0 {
			a.Write(bSum)
		} else {
			a.Write(pw)
		}
	}
	aSum := sum(a)

	// Byte sequence P: digest DP of the password repeated len(pw) times.
	dp := newH()
	for range len(pw) {
		dp.Write(pw)
	}
	p := repeatTo(sum(dp), len(pw))

	// Byte sequence S: digest DS of the salt repeated 16+A[0] times.
	ds := newH()
	for range 16 + int(aSum[0]) {
		ds.Write(salt)
	}
	s := repeatTo(sum(ds), len(salt))

	c := aSum
	h := newH()
	for i := range rounds {
		h.Reset()
		if i&1 != 0 {
			h.Write(p)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(s)
		}
		if i%7 != 0 {
			h.Write(p)
		}
		if i&1 != 0 {
			h.Write(c)
		} else {
			h.Write(p)
		}
		c = h.Sum(c[:0])
	}

	var out strings.Builder
	out.WriteString(prefix)
	if showRounds {
		out.WriteString("rounds=")
		out.WriteString(strconv.Itoa(rounds))
		out.WriteByte('$')
	}
	out.Write(salt)
	out.WriteByte('$')
	if is512 {
		for i := range 21 {
			switch i % 3 {
			case 0:
				b64From24(&out, c[i], c[i+21], c[i+42], 4)
			case 1:
				b64From24(&out, c[i+21], c[i+42], c[i], 4)
			case 2:
				b64From24(&out, c[i+42], c[i], c[i+21], 4)
			}
		}
		b64From24(&out, 0, 0, c[63], 2)
	} else {
		for i := range 10 {
			switch i % 3 {
			case 0:
				b64From24(&out, c[i], c[i+10], c[i+20], 4)
			case 1:
				b64From24(&out, c[i+20], c[i], c[i+10], 4)
			case 2:
				b64From24(&out, c[i+10], c[i+20], c[i], 4)
			}
		}
		b64From24(&out, 0, c[31], c[30], 3)
	}
	return out.String()
}

// repeatTo returns n bytes made of d repeated.
func repeatTo(d []byte, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, d[:min(len(d), n-len(out))]...)
	}
	return out
}

// b64From24 writes n characters encoding the 24-bit group b2 b1 b0, least
// significant six bits first (crypt's b64_from_24bit).
func b64From24(out *strings.Builder, b2, b1, b0 byte, n int) {
	w := uint32(b2)<<16 | uint32(b1)<<8 | uint32(b0)
	for range n {
		out.WriteByte(cryptAlphabet[w&63])
		w >>= 6
	}
}

// parseSHACrypt parses "$5$[rounds=N$]salt$hash" or the $6$ form.
func parseSHACrypt(v string, is512 bool, lim Limits) (*Password, error) {
	name, hashLen := "SHA256-CRYPT", 43
	if is512 {
		name, hashLen = "SHA512-CRYPT", 86
	}
	rest := v[3:]
	rounds, showRounds := shaCryptDefaultRounds, false
	if r, ok := strings.CutPrefix(rest, "rounds="); ok {
		num, after, found := strings.Cut(r, "$")
		if !found || num == "" || len(num) > 9 || num[0] == '0' {
			return nil, fmt.Errorf("%w: %s bad rounds=", ErrBadHash, name)
		}
		n, err := strconv.Atoi(num)
		if err != nil || n < shaCryptMinRounds {
			return nil, fmt.Errorf("%w: %s bad rounds=%q", ErrBadHash, name, num)
		}
		if n > lim.MaxCryptRounds {
			return nil, fmt.Errorf("%w: %s rounds=%d above %d", ErrHashLimit, name, n, lim.MaxCryptRounds)
		}
		rounds, showRounds, rest = n, true, after
	}
	salt, sum, found := strings.Cut(rest, "$")
	if !found || len(salt) > shaCryptMaxSalt || len(sum) != hashLen || !isCryptText(sum) {
		return nil, fmt.Errorf("%w: %s malformed", ErrBadHash, name)
	}
	saltB := []byte(salt)
	return &Password{scheme: name, check: func(pw []byte) bool {
		return constantTimeEqualString(shaCrypt(pw, saltB, rounds, showRounds, is512), v)
	}}, nil
}

// isCryptText reports whether s uses only cryptAlphabet characters.
func isCryptText(s string) bool {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(cryptAlphabet, s[i]) < 0 {
			return false
		}
	}
	return true
}
