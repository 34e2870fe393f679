package auth

import (
	"encoding/base64"
	"fmt"
	"strconv"

	"golang.org/x/crypto/bcrypt"
	//lint:ignore SA1019 bcrypt is built on Blowfish; nothing here encrypts data
	"golang.org/x/crypto/blowfish"
)

// BLF-CRYPT: bcrypt ($2a$, $2b$, $2y$). Verification uses
// golang.org/x/crypto/bcrypt; generation is done here on top of
// golang.org/x/crypto/blowfish so the salt can come from the caller's
// random source (bcrypt.GenerateFromPassword always uses crypto/rand).

// bcryptEncoding is bcrypt's base64 alphabet, without padding.
var bcryptEncoding = base64.NewEncoding("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789").WithPadding(base64.NoPadding)

// bcryptHash computes "$2<minor>$<cost>$<salt><hash>" (Provos and
// Mazières' eksblowfish, 64 encryptions of "OrpheanBeholderScryDoubt").
// Passwords longer than 72 bytes are truncated, as every bcrypt does.
func bcryptHash(pw, salt []byte, cost int, minor byte) string {
	saltText := bcryptEncoding.EncodeToString(salt[:16])
	// The salt goes through its text form: the last character carries
	// only 2 of its 6 bits, so decode what was encoded.
	rawSalt, _ := bcryptEncoding.DecodeString(saltText)
	key := make([]byte, 0, len(pw)+1)
	key = append(key, pw...)
	key = append(key, 0)
	if len(key) > 72 {
		key = key[:72]
	}
	c, err := blowfish.NewSaltedCipher(key, rawSalt)
	if err != nil {
		panic(fmt.Sprintf("auth: bcrypt key setup: %v", err)) // key length is 1..72, always valid
	}
	for range uint64(1) << uint(cost) {
		blowfish.ExpandKey(key, c)
		blowfish.ExpandKey(rawSalt, c)
	}
	text := []byte("OrpheanBeholderScryDoubt")
	for range 64 {
		for j := 0; j < len(text); j += 8 {
			c.Encrypt(text[j:j+8], text[j:j+8])
		}
	}
	return "$2" + string(minor) + "$" + fmt.Sprintf("%02d", cost) + "$" + saltText + bcryptEncoding.EncodeToString(text[:23])
}

// parseBcrypt checks the shape and cost of a "$2?$NN$..." string.
func parseBcrypt(v string, lim Limits) (*Password, error) {
	// $2y$05$ + 22 salt + 31 hash = 60 characters.
	if len(v) != 60 || v[0] != '$' || v[1] != '2' || v[2] < 'a' || v[2] > 'z' || v[3] != '$' || v[6] != '$' {
		return nil, fmt.Errorf("%w: BLF-CRYPT malformed", ErrBadHash)
	}
	cost, err := strconv.Atoi(v[4:6])
	if err != nil || cost < 4 || cost > 31 {
		return nil, fmt.Errorf("%w: BLF-CRYPT bad cost %q", ErrBadHash, v[4:6])
	}
	if cost > lim.MaxBcryptCost {
		return nil, fmt.Errorf("%w: BLF-CRYPT cost %d above %d", ErrHashLimit, cost, lim.MaxBcryptCost)
	}
	if !isBcryptText(v[7:]) {
		return nil, fmt.Errorf("%w: BLF-CRYPT malformed", ErrBadHash)
	}
	stored := []byte(v)
	return &Password{scheme: "BLF-CRYPT", check: func(pw []byte) bool {
		// CompareHashAndPassword compares in constant time.
		return bcrypt.CompareHashAndPassword(stored, pw) == nil
	}}, nil
}

func isBcryptText(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '.' || c == '/' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
