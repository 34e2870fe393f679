package auth

import (
	"crypto/md5"
	"fmt"
	"strings"
)

// MD5-crypt ($1$), the FreeBSD/glibc algorithm by Poul-Henning Kamp, as
// Dovecot's MD5-CRYPT scheme and crypt(3) compute it.

const md5CryptMaxSalt = 8

// md5Crypt computes "$1$salt$hash" for password and salt (at most 8
// characters are used).
func md5Crypt(pw, salt []byte) string {
	if len(salt) > md5CryptMaxSalt {
		salt = salt[:md5CryptMaxSalt]
	}
	const magic = "$1$"
	alt := md5.New()
	alt.Write(pw)
	alt.Write(salt)
	alt.Write(pw)
	altSum := alt.Sum(nil)

	ctx := md5.New()
	ctx.Write(pw)
	ctx.Write([]byte(magic))
	ctx.Write(salt)
	for n := len(pw); n > 0; n -= 16 {
		ctx.Write(altSum[:min(n, 16)])
	}
	for n := len(pw); n > 0; n >>= 1 {
		if n&1 != 0 {
			ctx.Write([]byte{0})
		} else {
			ctx.Write(pw[:1])
		}
	}
	final := ctx.Sum(nil)

	for i := range 1000 {
		h := md5.New()
		if i&1 != 0 {
			h.Write(pw)
		} else {
			h.Write(final)
		}
		if i%3 != 0 {
			h.Write(salt)
		}
		if i%7 != 0 {
			h.Write(pw)
		}
		if i&1 != 0 {
			h.Write(final)
		} else {
			h.Write(pw)
		}
		final = h.Sum(final[:0])
	}

	var out strings.Builder
	out.WriteString(magic)
	out.Write(salt)
	out.WriteByte('$')
	for i := range 5 {
		j := i + 6
		k := i + 12
		if i == 4 {
			k = 5
		}
		b64From24(&out, final[i], final[j], final[k], 4)
	}
	b64From24(&out, 0, 0, final[11], 2)
	return out.String()
}

// parseMD5Crypt parses "$1$salt$hash". Like Dovecot, anything after a
// further '$' following the hash is ignored.
func parseMD5Crypt(v string) (*Password, error) {
	rest, ok := strings.CutPrefix(v, "$1$")
	if !ok {
		return nil, fmt.Errorf("%w: MD5-CRYPT value does not start with $1$", ErrBadHash)
	}
	salt, sum, found := strings.Cut(rest, "$")
	if i := strings.IndexByte(sum, '$'); i >= 0 {
		sum = sum[:i]
	}
	if !found || len(salt) > md5CryptMaxSalt || len(sum) != 22 || !isCryptText(sum) {
		return nil, fmt.Errorf("%w: MD5-CRYPT malformed", ErrBadHash)
	}
	want := "$1$" + salt + "$" + sum
	saltB := []byte(salt)
	return &Password{scheme: "MD5-CRYPT", weak: true, check: func(pw []byte) bool {
		return constantTimeEqualString(md5Crypt(pw, saltB), want)
	}}, nil
}
