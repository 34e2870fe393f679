package auth

import (
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// ARGON2I / ARGON2ID in libsodium's string format, which Dovecot uses:
// "$argon2id$v=19$m=65536,t=3,p=1$<salt>$<hash>" with unpadded standard
// base64 for salt and hash.

// libsodium's limits for Dovecot's generation (crypto_pwhash_*_OPSLIMIT_*
// and *_MEMLIMIT_*, memory in KiB).
const (
	argon2idOpsInteractive = 2
	argon2idOpsModerate    = 3
	argon2idOpsSensitive   = 4
	argon2idMemInteractive = 64 << 10
	argon2idMemModerate    = 256 << 10
	argon2idMemSensitive   = 1 << 20

	argon2iOpsInteractive = 4
	argon2iOpsModerate    = 6
	argon2iOpsSensitive   = 8
	argon2iMemInteractive = 32 << 10
	argon2iMemModerate    = 128 << 10
	argon2iMemSensitive   = 512 << 10

	argon2SaltLen = 16
	argon2HashLen = 32
)

// argon2Generate makes the libsodium string the way Dovecot's
// generate_argon2i / generate_argon2id do: rounds pick the ops limit
// (default "interactive") and with it the memory limit; argon2id is run
// with at least 3 passes (Dovecot works around a libsodium 1.0.13 bug).
func argon2Generate(name string, pw []byte, rounds int, rnd io.Reader) ([]byte, error) {
	id := name != "ARGON2I"
	t := uint32(rounds)
	var mem uint32
	if id {
		if t == 0 {
			t = argon2idOpsInteractive
		}
		switch {
		case t >= argon2idOpsSensitive:
			mem = argon2idMemSensitive
		case t >= argon2idOpsModerate:
			mem = argon2idMemModerate
		default:
			mem = argon2idMemInteractive
		}
		t = max(t, 3)
	} else {
		if t == 0 {
			t = argon2iOpsInteractive
		}
		switch {
		case t >= argon2iOpsSensitive:
			mem = argon2iMemSensitive
		case t >= argon2iOpsModerate:
			mem = argon2iMemModerate
		default:
			mem = argon2iMemInteractive
		}
	}
	salt := make([]byte, argon2SaltLen)
	if _, err := io.ReadFull(rnd, salt); err != nil {
		return nil, fmt.Errorf("auth: reading salt: %w", err)
	}
	return []byte(argon2Format(id, mem, t, 1, salt, argon2Key(id, pw, salt, t, mem, 1, argon2HashLen))), nil
}

func argon2Key(id bool, pw, salt []byte, t, mem uint32, p uint8, n uint32) []byte {
	if id {
		return argon2.IDKey(pw, salt, t, mem, p, n)
	}
	return argon2.Key(pw, salt, t, mem, p, n)
}

func argon2Format(id bool, mem, t uint32, p uint8, salt, sum []byte) string {
	alg := "argon2i"
	if id {
		alg = "argon2id"
	}
	return fmt.Sprintf("$%s$v=19$m=%d,t=%d,p=%d$%s$%s", alg, mem, t, p,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(sum))
}

// parseArgon2 parses a libsodium argon2 string; like
// crypto_pwhash_str_verify it accepts either variant whatever the
// {ARGON2*} scheme says. Only version 19 (Argon2 1.3) is supported.
func parseArgon2(v string, lim Limits) (*Password, error) {
	parts := strings.Split(v, "$")
	// "", alg, "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 || parts[0] != "" {
		return nil, fmt.Errorf("%w: ARGON2 malformed", ErrBadHash)
	}
	var id bool
	switch parts[1] {
	case "argon2id":
		id = true
	case "argon2i":
	default:
		return nil, fmt.Errorf("%w: ARGON2 algorithm %q", ErrBadHash, parts[1])
	}
	if parts[2] != "v=19" {
		return nil, fmt.Errorf("%w: ARGON2 version %q not supported", ErrBadHash, parts[2])
	}
	var m, t, p uint64
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return nil, fmt.Errorf("%w: ARGON2 parameters %q", ErrBadHash, parts[3])
	}
	for i, key := range []string{"m=", "t=", "p="} {
		num, ok := strings.CutPrefix(params[i], key)
		if !ok || num == "" || len(num) > 10 || num[0] == '0' {
			return nil, fmt.Errorf("%w: ARGON2 parameters %q", ErrBadHash, parts[3])
		}
		n, err := strconv.ParseUint(num, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%w: ARGON2 parameter %q: %w", ErrBadHash, params[i], err)
		}
		switch i {
		case 0:
			m = n
		case 1:
			t = n
		case 2:
			p = n
		}
	}
	if t < 1 || p < 1 || p > 0xffffff || m < 8*p {
		return nil, fmt.Errorf("%w: ARGON2 parameters %q out of range", ErrBadHash, parts[3])
	}
	if m > uint64(lim.MaxArgon2MemoryKiB) || t > uint64(lim.MaxArgon2Time) || p > uint64(lim.MaxArgon2Threads) || p > 255 {
		return nil, fmt.Errorf("%w: ARGON2 %q above m=%d,t=%d,p=%d", ErrHashLimit, parts[3],
			lim.MaxArgon2MemoryKiB, lim.MaxArgon2Time, lim.MaxArgon2Threads)
	}
	salt, err1 := base64.RawStdEncoding.Strict().DecodeString(parts[4])
	sum, err2 := base64.RawStdEncoding.Strict().DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(sum) < 16 || len(sum) > 1024 {
		return nil, fmt.Errorf("%w: ARGON2 salt or hash", ErrBadHash)
	}
	name := "ARGON2I"
	if id {
		name = "ARGON2ID"
	}
	mem, tm, par, n := uint32(m), uint32(t), uint8(p), uint32(len(sum))
	return &Password{scheme: name, check: func(pw []byte) bool {
		return subtle.ConstantTimeCompare(argon2Key(id, pw, salt, tm, mem, par, n), sum) == 1
	}}, nil
}
