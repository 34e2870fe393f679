package auth

import "fmt"

// Traditional crypt(3): DES with a 12-bit salt, as in Seventh Edition
// Unix. The first 8 bytes of the password (7 bits each) form the key; the
// salt swaps bit pairs of the E expansion; a zero block is encrypted 25
// times and written in 11 characters after the 2 salt characters. The DES
// tables are those of FIPS PUB 46-3 (1-based bit positions, MSB first).

var (
	desIP = [64]uint8{
		58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4,
		62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24, 16, 8,
		57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3,
		61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
	}
	desP = [32]uint8{
		16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10,
		2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22, 11, 4, 25,
	}
	desPC1 = [56]uint8{
		57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18,
		10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36,
		63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22,
		14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4,
	}
	desPC2 = [48]uint8{
		14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10,
		23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2,
		41, 52, 31, 37, 47, 55, 30, 40, 51, 45, 33, 48,
		44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
	}
	desShifts = [16]uint8{1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1}
	desS      = [8][64]uint8{
		{14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7,
			0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8,
			4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0,
			15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13},
		{15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10,
			3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5,
			0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15,
			13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9},
		{10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8,
			13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1,
			13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7,
			1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12},
		{7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15,
			13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9,
			10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4,
			3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14},
		{2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9,
			14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6,
			4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14,
			11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3},
		{12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11,
			10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8,
			9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6,
			4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13},
		{4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1,
			13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6,
			1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2,
			6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12},
		{13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7,
			1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2,
			7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8,
			2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11},
	}
	// desFP is the inverse of desIP; desE the expansion of R to 48 bits.
	desFP, desE = func() (fp [64]uint8, e [48]uint8) {
		for i, v := range desIP {
			fp[v-1] = uint8(i + 1)
		}
		for i := range 8 {
			for j := range 6 {
				e[6*i+j] = uint8((4*i+j+31)%32 + 1)
			}
		}
		return fp, e
	}()
)

// permute picks bits of in (n bits wide, bit 1 the most significant) in
// the order of table.
func permute(in uint64, n int, table []uint8) uint64 {
	var out uint64
	for _, t := range table {
		out = out<<1 | (in>>(n-int(t)))&1
	}
	return out
}

// desSubkeys computes the 16 48-bit round keys of a 64-bit key.
func desSubkeys(key uint64) (ks [16]uint64) {
	cd := permute(key, 64, desPC1[:])
	c, d := cd>>28, cd&0xfffffff
	for i, s := range desShifts {
		c = (c<<s | c>>(28-s)) & 0xfffffff
		d = (d<<s | d>>(28-s)) & 0xfffffff
		ks[i] = permute(c<<28|d, 56, desPC2[:])
	}
	return ks
}

// desEncrypt encrypts one block with the given round keys and E table.
func desEncrypt(block uint64, ks *[16]uint64, e *[48]uint8) uint64 {
	b := permute(block, 64, desIP[:])
	l, r := b>>32, b&0xffffffff
	for i := range 16 {
		x := permute(r, 32, e[:]) ^ ks[i]
		var s uint64
		for j := range 8 {
			six := (x >> (42 - 6*j)) & 63
			row := six>>4&2 | six&1
			col := six >> 1 & 15
			s = s<<4 | uint64(desS[j][row*16+col])
		}
		l, r = r, l^permute(s, 32, desP[:])
	}
	return permute(r<<32|l, 64, desFP[:])
}

// cryptIndex is the value of a salt character, -1 if not in cryptAlphabet.
func cryptIndex(c byte) int {
	for i := 0; i < len(cryptAlphabet); i++ {
		if cryptAlphabet[i] == c {
			return i
		}
	}
	return -1
}

// desCrypt computes the 13-character crypt(3) string; salt holds two
// characters of cryptAlphabet.
func desCrypt(pw, salt []byte) string {
	var key uint64
	for i := range 8 {
		var c byte
		if i < len(pw) {
			c = pw[i]
		}
		key = key<<8 | uint64(c&0x7f)<<1
	}
	ks := desSubkeys(key)
	e := desE
	for i := range 2 {
		v := cryptIndex(salt[i])
		for j := range 6 {
			if v>>j&1 != 0 {
				k := 6*i + j
				e[k], e[k+24] = e[k+24], e[k]
			}
		}
	}
	var block uint64
	for range 25 {
		block = desEncrypt(block, &ks, &e)
	}
	out := make([]byte, 0, 13)
	out = append(out, salt[0], salt[1])
	for i := range 11 {
		shift := 58 - 6*i // 64 bits then two zero bits
		var v uint64
		if shift >= 0 {
			v = block >> shift & 63
		} else {
			v = block << -shift & 63
		}
		out = append(out, cryptAlphabet[v])
	}
	return string(out)
}

// parseDESCrypt parses a traditional 13-character DES crypt string.
func parseDESCrypt(v string) (*Password, error) {
	if len(v) != 13 || !isCryptText(v) {
		return nil, fmt.Errorf("%w: DES-CRYPT value is not 13 crypt characters", ErrBadHash)
	}
	salt := []byte(v[:2])
	return &Password{scheme: "DES-CRYPT", weak: true, check: func(pw []byte) bool {
		return constantTimeEqualString(desCrypt(pw, salt), v)
	}}, nil
}
