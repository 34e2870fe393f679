package session

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"regexp"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	gomessage "github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // decodes non-UTF-8 header words and text parts
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// FlagRecent is the IMAP4rev1 \Recent flag. The matcher sees it in
// SearchMessage.Flags when the message is recent in the searching session.
const FlagRecent imap.Flag = "\\Recent"

// maxMIMEDepth bounds how deep BODY/TEXT search descends into nested
// multiparts and attached messages, so a hostile message cannot make the
// matcher recurse without end.
const maxMIMEDepth = 20

// SearchMessage is one message as the SEARCH matcher sees it.
//
// Concurrency: a SearchMessage is used by one goroutine at a time. Content may
// be called several times for one message and should be cheap the second
// time; the matcher only calls it when a key needs the message's text
// (HEADER, SUBJECT, FROM, TO, CC, BCC, BODY, TEXT, SENTBEFORE/ON/SINCE).
// The caller may not keep or change the returned slice.
type SearchMessage interface {
	SeqNum() uint32
	UID() imap.UID
	// Flags are the message's flags and keywords; \Recent is included when
	// the message is recent in the searching session.
	Flags() []imap.Flag
	// InternalDate is the date the message arrived (the maildir file's mtime).
	InternalDate() time.Time
	// Size is RFC822.SIZE: the length of the message with CRLF line ends.
	Size() int64
	// Content returns the whole message with CRLF line ends.
	Content() ([]byte, error)
}

// Matcher decides whether messages match a SEARCH criteria. Build one per
// command with NewMatcher; it is not safe for concurrent use.
type Matcher struct {
	criteria *imap.SearchCriteria
	maxSeq   uint32
	maxUID   imap.UID
	saved    imap.UIDSet // the SEARCHRES "$" result
}

// NewMatcher prepares criteria for matching. maxSeq and maxUID are the
// session's current message count and largest UID (they resolve "*"); saved
// is the last SEARCH RETURN (SAVE) result, which the "$" marker refers to.
// The matcher does not change criteria.
func NewMatcher(criteria *imap.SearchCriteria, maxSeq uint32, maxUID imap.UID, saved imap.UIDSet) *Matcher {
	if criteria == nil {
		criteria = &imap.SearchCriteria{}
	}
	return &Matcher{criteria: criteria, maxSeq: maxSeq, maxUID: maxUID, saved: saved}
}

// NeedsContent reports whether matching may read message content.
func (m *Matcher) NeedsContent() bool {
	return criteriaNeedsContent(m.criteria, 0)
}

func criteriaNeedsContent(c *imap.SearchCriteria, depth int) bool {
	if depth > 64 {
		return true
	}
	if len(c.Header) > 0 || len(c.Body) > 0 || len(c.Text) > 0 || !c.SentBefore.IsZero() || !c.SentSince.IsZero() {
		return true
	}
	for i := range c.Not {
		if criteriaNeedsContent(&c.Not[i], depth+1) {
			return true
		}
	}
	for i := range c.Or {
		if criteriaNeedsContent(&c.Or[i][0], depth+1) || criteriaNeedsContent(&c.Or[i][1], depth+1) {
			return true
		}
	}
	return false
}

// Match reports whether msg matches. An error comes only from
// msg.Content; a message whose content cannot be parsed is matched on
// what can be read of it.
func (m *Matcher) Match(msg SearchMessage) (bool, error) {
	pm := &parsedMessage{msg: msg}
	return m.match(m.criteria, pm, 0)
}

func (m *Matcher) match(c *imap.SearchCriteria, pm *parsedMessage, depth int) (bool, error) {
	if depth > 64 {
		return false, nil
	}
	msg := pm.msg
	// Cheap keys first.
	for _, set := range c.SeqNum {
		if !seqSetContains(set, msg.SeqNum(), m.maxSeq) {
			return false, nil
		}
	}
	for _, set := range c.UID {
		if imap.IsSearchRes(set) {
			set = m.saved
		}
		if !uidSetContains(set, msg.UID(), m.maxUID) {
			return false, nil
		}
	}
	if len(c.Flag) > 0 || len(c.NotFlag) > 0 {
		flags := msg.Flags()
		for _, f := range c.Flag {
			if !hasFlag(flags, f) {
				return false, nil
			}
		}
		for _, f := range c.NotFlag {
			if hasFlag(flags, f) {
				return false, nil
			}
		}
	}
	if !c.Since.IsZero() || !c.Before.IsZero() {
		if !dateInRange(msg.InternalDate(), c.Since, c.Before) {
			return false, nil
		}
	}
	if c.Larger > 0 && msg.Size() <= c.Larger {
		return false, nil
	}
	if c.Smaller > 0 && msg.Size() >= c.Smaller {
		return false, nil
	}
	// Keys that need the message's text.
	if !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
		sent, err := pm.sentDate()
		if err != nil {
			return false, err
		}
		if !dateInRange(sent, c.SentSince, c.SentBefore) {
			return false, nil
		}
	}
	for _, hf := range c.Header {
		ok, err := pm.headerContains(hf.Key, hf.Value)
		if err != nil || !ok {
			return false, err
		}
	}
	for _, s := range c.Body {
		body, err := pm.bodyText()
		if err != nil {
			return false, err
		}
		if !strings.Contains(body, foldCase(s)) {
			return false, nil
		}
	}
	for _, s := range c.Text {
		ok, err := pm.textContains(foldCase(s))
		if err != nil || !ok {
			return false, err
		}
	}
	for i := range c.Not {
		ok, err := m.match(&c.Not[i], pm, depth+1)
		if err != nil || ok {
			return false, err
		}
	}
	for i := range c.Or {
		ok, err := m.match(&c.Or[i][0], pm, depth+1)
		if err != nil {
			return false, err
		}
		if !ok {
			ok, err = m.match(&c.Or[i][1], pm, depth+1)
			if err != nil || !ok {
				return false, err
			}
		}
	}
	return true, nil
}

// hasFlag compares flags case-insensitively, as IMAP does.
func hasFlag(flags []imap.Flag, f imap.Flag) bool {
	for _, g := range flags {
		if strings.EqualFold(string(g), string(f)) {
			return true
		}
	}
	return false
}

// resolveRange turns one range of a sequence set into an inclusive
// [lo, hi] with "*" replaced by max; "n:*" with n > max still contains max,
// as RFC 9051 section 6.4.8 requires.
func resolveRange(start, stop, max uint32) (lo, hi uint32) {
	if start == 0 {
		start = max
	}
	if stop == 0 {
		stop = max
	}
	if start > stop {
		start, stop = stop, start
	}
	return start, stop
}

func seqSetContains(set imap.SeqSet, n, max uint32) bool {
	for _, r := range set {
		lo, hi := resolveRange(r.Start, r.Stop, max)
		if n >= lo && n <= hi {
			return true
		}
	}
	return false
}

func uidSetContains(set imap.UIDSet, uid, max imap.UID) bool {
	for _, r := range set {
		lo, hi := resolveRange(uint32(r.Start), uint32(r.Stop), uint32(max))
		if uint32(uid) >= lo && uint32(uid) <= hi {
			return true
		}
	}
	return false
}

// dayNumber counts days on the calendar, ignoring time and zone: the date
// as written in t's own location.
func dayNumber(t time.Time) int64 {
	y, mo, d := t.Date()
	return time.Date(y, mo, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

// dateInRange: since <= date < before, comparing dates only (RFC 3501
// SINCE/BEFORE "disregarding time and timezone").
func dateInRange(t, since, before time.Time) bool {
	day := dayNumber(t)
	if !since.IsZero() && day < dayNumber(since) {
		return false
	}
	if !before.IsZero() && day >= dayNumber(before) {
		return false
	}
	return true
}

// foldCase is the case folding SEARCH uses for its substring matches.
func foldCase(s string) string {
	return strings.ToLower(s)
}

// parsedMessage caches what the matcher read from one message during one
// Match call.
type parsedMessage struct {
	msg SearchMessage

	loaded    bool
	raw       []byte
	header    textproto.Header
	bodyStart int

	decodedHeader *string // all fields, decoded and folded, "key: value\n" each
	body          *string // decoded text of the body parts, folded
}

func (pm *parsedMessage) load() error {
	if pm.loaded {
		return nil
	}
	raw, err := pm.msg.Content()
	if err != nil {
		return err
	}
	pm.loaded = true
	pm.raw = raw
	br := bufio.NewReader(bytes.NewReader(raw))
	pm.header, _ = textproto.ReadHeader(br) // a broken header keeps the fields read so far
	pm.bodyStart = headerLength(raw)
	return nil
}

// headerLength is the length of the header block of raw, including the
// empty line that ends it (or all of raw when there is none).
func headerLength(raw []byte) int {
	if bytes.HasPrefix(raw, []byte("\r\n")) {
		return 2
	}
	if bytes.HasPrefix(raw, []byte("\n")) {
		return 1
	}
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		if j := bytes.Index(raw, []byte("\n\n")); j >= 0 && j < i {
			return j + 2
		}
		return i + 4
	}
	if j := bytes.Index(raw, []byte("\n\n")); j >= 0 {
		return j + 2
	}
	return len(raw)
}

func (pm *parsedMessage) sentDate() (time.Time, error) {
	if err := pm.load(); err != nil {
		return time.Time{}, err
	}
	h := mail.Header{Header: gomessage.Header{Header: pm.header}}
	t, err := h.Date()
	if err != nil || t.IsZero() {
		// No usable Date: header; fall back on the arrival date, as
		// Dovecot does.
		return pm.msg.InternalDate(), nil
	}
	return t, nil
}

var wordDecoder = &mime.WordDecoder{CharsetReader: charsetReader}

// charsetReader adapts go-message's charset table (filled by importing
// go-message/charset) to mime.WordDecoder.
func charsetReader(charset string, input io.Reader) (io.Reader, error) {
	if gomessage.CharsetReader == nil {
		return nil, fmt.Errorf("charset %q: no charset support", charset)
	}
	return gomessage.CharsetReader(charset, input)
}

// decodeHeaderValue decodes RFC 2047 encoded words; a value that does not
// decode is used as it is.
func decodeHeaderValue(v string) string {
	d, err := wordDecoder.DecodeHeader(v)
	if err != nil {
		return decodeWordsOneByOne(v)
	}
	return d
}

// encodedWord matches one RFC 2047 encoded word.
var encodedWord = regexp.MustCompile(`=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=`)

// decodeWordsOneByOne decodes each encoded word of v on its own, leaving a
// word that does not decode (unknown charset, bad encoding) as it is. The
// white space between two adjacent encoded words is dropped (RFC 2047
// section 6.2).
func decodeWordsOneByOne(v string) string {
	var b strings.Builder
	last := 0
	prevWord := false
	for _, m := range encodedWord.FindAllStringIndex(v, -1) {
		gap := v[last:m[0]]
		d, err := wordDecoder.Decode(v[m[0]:m[1]])
		if !(prevWord && err == nil && strings.TrimLeft(gap, " \t\r\n") == "") {
			b.WriteString(gap)
		}
		if err != nil {
			b.WriteString(v[m[0]:m[1]])
			prevWord = false
		} else {
			b.WriteString(d)
			prevWord = true
		}
		last = m[1]
	}
	b.WriteString(v[last:])
	return b.String()
}

func (pm *parsedMessage) headerContains(key, value string) (bool, error) {
	if err := pm.load(); err != nil {
		return false, err
	}
	fields := pm.header.FieldsByKey(key)
	needle := foldCase(value)
	for fields.Next() {
		if needle == "" {
			return true, nil
		}
		v := fields.Value()
		if strings.Contains(foldCase(decodeHeaderValue(v)), needle) {
			return true, nil
		}
	}
	return false, nil
}

func (pm *parsedMessage) headerText() (string, error) {
	if pm.decodedHeader != nil {
		return *pm.decodedHeader, nil
	}
	if err := pm.load(); err != nil {
		return "", err
	}
	var b strings.Builder
	for fields := pm.header.Fields(); fields.Next(); {
		b.WriteString(fields.Key())
		b.WriteString(": ")
		b.WriteString(decodeHeaderValue(fields.Value()))
		b.WriteByte('\n')
	}
	s := foldCase(b.String())
	pm.decodedHeader = &s
	return s, nil
}

func (pm *parsedMessage) textContains(needle string) (bool, error) {
	h, err := pm.headerText()
	if err != nil {
		return false, err
	}
	if strings.Contains(h, needle) {
		return true, nil
	}
	body, err := pm.bodyText()
	if err != nil {
		return false, err
	}
	return strings.Contains(body, needle), nil
}

func (pm *parsedMessage) bodyText() (string, error) {
	if pm.body != nil {
		return *pm.body, nil
	}
	if err := pm.load(); err != nil {
		return "", err
	}
	var b strings.Builder
	if err := appendEntityText(&b, pm.raw, 0, false); err != nil {
		// The MIME structure is broken: search the raw body instead.
		b.Reset()
		b.Write(pm.raw[pm.bodyStart:])
	}
	s := foldCase(b.String())
	pm.body = &s
	return s, nil
}

var errTooDeep = errors.New("message nesting too deep")

// appendEntityText writes the decoded text of the message raw into b:
// text/* parts decoded from their transfer encoding and charset; nested
// messages with their headers when withHeader is set. Parts that are not
// text are skipped.
func appendEntityText(b *strings.Builder, raw []byte, depth int, withHeader bool) error {
	if depth > maxMIMEDepth {
		return errTooDeep
	}
	e, err := gomessage.Read(bytes.NewReader(raw))
	if e == nil {
		return fmt.Errorf("read message: %w", err)
	}
	if withHeader {
		for fields := e.Header.Fields(); fields.Next(); {
			b.WriteString(fields.Key())
			b.WriteString(": ")
			b.WriteString(decodeHeaderValue(fields.Value()))
			b.WriteByte('\n')
		}
	}
	return appendPartText(b, e, depth)
}

func appendPartText(b *strings.Builder, e *gomessage.Entity, depth int) error {
	if depth > maxMIMEDepth {
		return errTooDeep
	}
	if mr := e.MultipartReader(); mr != nil {
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				return nil
			}
			if p == nil {
				return fmt.Errorf("read part: %w", err)
			}
			if err := appendPartText(b, p, depth+1); err != nil {
				return err
			}
		}
	}
	mediaType, _, err := e.Header.ContentType()
	if err != nil && e.Header.Get("Content-Type") != "" {
		mediaType = "application/octet-stream"
	}
	switch {
	case mediaType == "" || strings.HasPrefix(mediaType, "text/"):
		if _, err := io.Copy(b, e.Body); err != nil {
			return fmt.Errorf("read text part: %w", err)
		}
		b.WriteByte('\n')
	case mediaType == "message/rfc822" || mediaType == "message/global":
		inner, err := io.ReadAll(e.Body)
		if err != nil {
			return fmt.Errorf("read attached message: %w", err)
		}
		if err := appendEntityText(b, inner, depth+1, true); err != nil && !errors.Is(err, errTooDeep) {
			// An attached message that does not parse is searched raw.
			b.Write(inner)
		}
	}
	return nil
}

// searchResult turns the matching messages (in sequence order) into the
// SEARCH reply data for the requested return options.
func searchResult(byUID bool, matched []SearchMessage) *imap.SearchData {
	data := &imap.SearchData{}
	num := func(m SearchMessage) uint32 {
		if byUID {
			return uint32(m.UID())
		}
		return m.SeqNum()
	}
	if byUID {
		var set imap.UIDSet
		for _, m := range matched {
			set.AddNum(m.UID())
		}
		if set == nil {
			set = imap.UIDSet{}
		}
		data.All = set
	} else {
		var set imap.SeqSet
		for _, m := range matched {
			set.AddNum(m.SeqNum())
		}
		if set == nil {
			set = imap.SeqSet{}
		}
		data.All = set
	}
	data.Count = uint32(len(matched))
	for _, m := range matched {
		n := num(m)
		if data.Min == 0 || n < data.Min {
			data.Min = n
		}
		if n > data.Max {
			data.Max = n
		}
	}
	return data
}
