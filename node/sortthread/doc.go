// Package sortthread implements the IMAP SORT and THREAD extensions:
// parsing of the SORT and THREAD commands (RFC 5256, RFC 5957, RFC 5267),
// an IMAP search-key parser producing go-imap's imap.SearchCriteria, base
// subject extraction (RFC 5256 section 2.1), the i;unicode-casemap and
// i;ascii-casemap collations (RFC 5051, RFC 4790), the SORT algorithm with
// the ARRIVAL CC DATE FROM SIZE SUBJECT TO DISPLAYFROM DISPLAYTO keys, the
// ORDEREDSUBJECT and REFERENCES threading algorithms, and the wire
// formatting of "* SORT", "* ESEARCH" and "* THREAD" responses.
//
// The package does no I/O and keeps no state: every function may be called
// concurrently. Sort and Thread are deterministic: the same input gives the
// same output, whatever the order of the input slice.
//
// # Known or possible deviations from Dovecot
//
// The behaviour follows the RFCs and, where they leave room, Dovecot's
// source (lib-imap/imap-base-subject.c, lib-storage/index/index-sort.c,
// index-thread*.c, lib-mail/message-date.c, message-id.c,
// message-address.c, imap/cmd-thread.c, imap/imap-search.c). The places
// where answers may still differ, for the differential test to look at
// first:
//
//   - Collation: i;unicode-casemap maps each character to its simple
//     titlecase and then to its full compatibility decomposition (NFKD of
//     that one character), as Dovecot 2.4 does, with Go's Unicode tables
//     (golang.org/x/text); Dovecot's tables may be of another Unicode
//     version. Combining marks are not reordered across characters.
//   - Base subjects are computed on the casemapped subject, like Dovecot;
//     BaseSubject (the exported helper) keeps the original case instead.
//     RFC 2047 words are decoded with Go's mime.WordDecoder: a word in an
//     unknown charset leaves the whole value undecoded.
//   - Dates compare at one-second resolution (Dovecot stores time_t). A
//     Date of exactly the Unix epoch counts as missing in Dovecot; here
//     only an absent or unparsable Date does.
//   - Addresses are parsed by our own lenient parser that imitates
//     Dovecot's message_address_parse for the common broken forms ("<>",
//     bare words, groups, "a@b (Name)"), not for every corner of RFC 5322
//     (quoted local parts without domain, obsolete routes in odd places).
//   - Message-IDs: the text from "<" to the next ">", whitespace removed,
//     valid when it holds "@" (Dovecot's fast path); Dovecot's slow path
//     for ids holding quotes, comments or domain literals is not copied.
//   - ESORT RETURN (ALL) writes the numbers in sort order with ordered
//     ranges, as RFC 5267 section 3.2 asks ("6:4" is 6,5,4). Dovecot 2.3
//     writes the result as an ascending set instead. MIN and MAX are the
//     first and last numbers in sort order, as in Dovecot.
//   - An empty THREAD answer is "* THREAD" (RFC 5256 grammar); Dovecot
//     sends "* THREAD " with a trailing space.
//   - THREAD=REFS is not implemented.
//   - The search-key parser rejects "$" (SEARCHRES) and extension keys
//     (MODSEQ, OLDER, YOUNGER, ...); it accepts 8-bit bytes in atoms and
//     quoted strings (as IMAP4rev2 does for UTF-8). "SMALLER 0" becomes
//     "NOT ALL" (imap.SearchCriteria cannot say Smaller 0); "LARGER 0" is
//     lost the same way (it matches every non-empty message anyway).
package sortthread
