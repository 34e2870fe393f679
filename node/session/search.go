package session

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	netmail "net/mail"
	nettextproto "net/textproto"
	"regexp"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	gomessage "github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // decodes non-UTF-8 header words and text parts
	"github.com/emersion/go-message/textproto"

	"github.com/nfsimap/nfsimap/localindex"
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
// (BODY, TEXT, a header field the message's IndexedHeaders lack, or any
// header key when it has none). The caller may not keep or change the
// returned slice.
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

// IndexedMessage is a SearchMessage that may know some of its header
// fields without reading its file: those the local index keeps
// (indexedFields). The matcher answers SUBJECT, FROM, TO, CC, BCC, HEADER of
// those fields and SENTBEFORE/ON/SINCE from them (a TEXT string found in
// one of them too), and calls Content only for the other keys.
//
// IndexedHeaders returns the fields as headersOf read them from the
// message's content, or false when they are not known; fields whose
// Present lacks HeadersComplete are not used. It is called at most once
// per Match, and the matcher does not change what it returns.
type IndexedMessage interface {
	SearchMessage
	IndexedHeaders() (*localindex.Headers, bool)
}

// Matcher decides whether messages match a SEARCH criteria. Build one per
// command with NewMatcher; it is not safe for concurrent use.
//
// Keys are evaluated in passes of rising cost (searchCost): first those
// answered from the session's state, then from sizes and dates, then from
// the indexed header fields, and only then from the message file. A pass
// that cannot decide a key leaves it unknown, and the criteria are decided
// as soon as the known keys decide them (three-valued logic through AND, OR
// and NOT), so in "UNSEEN BODY x" or "BODY x NOT SEEN" only the unseen
// messages are read. Every key gives the same answer whichever source
// decides it, so the result is the one of a plain evaluation.
type Matcher struct {
	criteria *imap.SearchCriteria
	maxSeq   uint32
	maxUID   imap.UID
	saved    imap.UIDSet // the SEARCHRES "$" result
	passes   []searchCost
	fields   map[string]int // header key -> indexedFields index, -1 when not indexed
}

// NewMatcher prepares criteria for matching. maxSeq and maxUID are the
// session's current message count and largest UID (they resolve "*"); saved
// is the last SEARCH RETURN (SAVE) result, which the "$" marker refers to.
// The matcher does not change criteria.
func NewMatcher(criteria *imap.SearchCriteria, maxSeq uint32, maxUID imap.UID, saved imap.UIDSet) *Matcher {
	if criteria == nil {
		criteria = &imap.SearchCriteria{}
	}
	m := &Matcher{criteria: criteria, maxSeq: maxSeq, maxUID: maxUID, saved: saved, fields: map[string]int{}}
	var used [costContent + 1]bool
	m.costs(criteria, 0, &used)
	for c, ok := range used {
		if ok {
			m.passes = append(m.passes, searchCost(c))
		}
	}
	if len(m.passes) == 0 || m.passes[len(m.passes)-1] != costContent {
		// The last pass decides every key it meets; with no key of the
		// top cost a lower pass already decides everything, and this one
		// is never reached.
		m.passes = append(m.passes, costContent)
	}
	return m
}

// searchCost orders the sources of the matcher's answers by their price.
type searchCost int

const (
	costState   searchCost = iota // sequence numbers, UIDs, flags: the session's state
	costMeta                      // sizes and internal dates: the index, else a stat
	costIndex                     // header fields the index keeps
	costContent                   // the message file
)

// costs marks in used the passes that can decide some key of c, and
// resolves the header keys of c to indexed fields.
func (m *Matcher) costs(c *imap.SearchCriteria, depth int, used *[costContent + 1]bool) {
	if depth > 64 {
		return
	}
	if len(c.SeqNum) > 0 || len(c.UID) > 0 || len(c.Flag) > 0 || len(c.NotFlag) > 0 {
		used[costState] = true
	}
	if !c.Since.IsZero() || !c.Before.IsZero() || c.Larger > 0 || c.Smaller > 0 {
		used[costMeta] = true
	}
	for _, hf := range c.Header {
		if m.field(hf.Key) >= 0 {
			used[costIndex] = true
		}
		used[costContent] = true
	}
	if !c.SentSince.IsZero() || !c.SentBefore.IsZero() || len(c.Text) > 0 {
		used[costIndex] = true
		used[costContent] = true
	}
	if len(c.Body) > 0 {
		used[costContent] = true
	}
	for i := range c.Not {
		m.costs(&c.Not[i], depth+1, used)
	}
	for i := range c.Or {
		m.costs(&c.Or[i][0], depth+1, used)
		m.costs(&c.Or[i][1], depth+1, used)
	}
}

// field returns the indexedFields index of a HEADER key, or -1. The key is
// compared in the canonical form the header reader gives message fields,
// so it names the same fields a search of the file finds.
func (m *Matcher) field(key string) int {
	if i, ok := m.fields[key]; ok {
		return i
	}
	i := -1
	canon := nettextproto.CanonicalMIMEHeaderKey(key)
	for k := range indexedFields {
		if indexedFields[k].name == canon {
			i = k
			break
		}
	}
	m.fields[key] = i
	return i
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
	for _, pass := range m.passes {
		r, err := m.match(m.criteria, pm, 0, pass)
		if err != nil {
			return false, err
		}
		if r != unknown {
			return r == yes, nil
		}
	}
	return false, nil // not reached: the costContent pass decides
}

// truth is a three-valued answer: a pass of the matcher leaves unknown
// what it cannot decide at its cost.
type truth int8

const (
	no truth = iota
	yes
	unknown
)

func truthOf(b bool) truth {
	if b {
		return yes
	}
	return no
}

// not is the three-valued negation.
func (t truth) not() truth {
	switch t {
	case yes:
		return no
	case no:
		return yes
	}
	return unknown
}

// match evaluates c (an AND of its keys) with what costs at most pass.
func (m *Matcher) match(c *imap.SearchCriteria, pm *parsedMessage, depth int, pass searchCost) (truth, error) {
	if depth > 64 {
		return no, nil
	}
	msg := pm.msg
	result := yes
	// and folds one key's answer into result; it reports whether the
	// criteria are decided (false).
	and := func(t truth) bool {
		switch t {
		case no:
			result = no
			return true
		case unknown:
			result = unknown
		}
		return false
	}
	// Session state: always known.
	for _, set := range c.SeqNum {
		if !seqSetContains(set, msg.SeqNum(), m.maxSeq) {
			return no, nil
		}
	}
	for _, set := range c.UID {
		if imap.IsSearchRes(set) {
			set = m.saved
		}
		if !uidSetContains(set, msg.UID(), m.maxUID) {
			return no, nil
		}
	}
	if len(c.Flag) > 0 || len(c.NotFlag) > 0 {
		flags := msg.Flags()
		for _, f := range c.Flag {
			if !hasFlag(flags, f) {
				return no, nil
			}
		}
		for _, f := range c.NotFlag {
			if hasFlag(flags, f) {
				return no, nil
			}
		}
	}
	// Sizes and internal dates.
	hasMeta := !c.Since.IsZero() || !c.Before.IsZero() || c.Larger > 0 || c.Smaller > 0
	if hasMeta && pass < costMeta {
		result = unknown
	} else if hasMeta {
		if !c.Since.IsZero() || !c.Before.IsZero() {
			if !dateInRange(msg.InternalDate(), c.Since, c.Before) {
				return no, nil
			}
		}
		if c.Larger > 0 && msg.Size() <= c.Larger {
			return no, nil
		}
		if c.Smaller > 0 && msg.Size() >= c.Smaller {
			return no, nil
		}
	}
	// The sub-criteria, cheap parts first: a NOT or OR decided by flags
	// spares the reading of the keys below.
	for i := range c.Not {
		t, err := m.match(&c.Not[i], pm, depth+1, pass)
		if err != nil {
			return no, err
		}
		if and(t.not()) {
			return no, nil
		}
	}
	for i := range c.Or {
		t, err := m.or(&c.Or[i], pm, depth+1, pass)
		if err != nil {
			return no, err
		}
		if and(t) {
			return no, nil
		}
	}
	// Header fields: from the index when it has them, else from the file.
	if !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
		t, err := pm.sentInRange(c.SentSince, c.SentBefore, pass)
		if err != nil {
			return no, err
		}
		if and(t) {
			return no, nil
		}
	}
	for _, hf := range c.Header {
		t, err := pm.headerContains(m.field(hf.Key), hf.Key, hf.Value, pass)
		if err != nil {
			return no, err
		}
		if and(t) {
			return no, nil
		}
	}
	for _, s := range c.Text {
		t, err := pm.textContains(foldCase(s), pass)
		if err != nil {
			return no, err
		}
		if and(t) {
			return no, nil
		}
	}
	// The body: the file only.
	for _, s := range c.Body {
		if pass < costContent {
			result = unknown
			break
		}
		body, err := pm.bodyText()
		if err != nil {
			return no, err
		}
		if !strings.Contains(body, foldCase(s)) {
			return no, nil
		}
	}
	return result, nil
}

// or is the three-valued OR of a pair of criteria.
func (m *Matcher) or(pair *[2]imap.SearchCriteria, pm *parsedMessage, depth int, pass searchCost) (truth, error) {
	a, err := m.match(&pair[0], pm, depth, pass)
	if err != nil || a == yes {
		return a, err
	}
	b, err := m.match(&pair[1], pm, depth, pass)
	if err != nil || b == yes {
		return b, err
	}
	if a == unknown || b == unknown {
		return unknown, nil
	}
	return no, nil
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

	indexLooked bool
	indexed     *localindex.Headers // nil: the index does not know the fields

	loaded    bool
	raw       []byte
	header    textproto.Header
	bodyStart int

	decodedHeader *string // all fields, decoded and folded, "key: value\n" each
	body          *string // decoded text of the body parts, folded
}

// indexedHeaders returns the message's indexed header fields, or nil.
func (pm *parsedMessage) indexedHeaders() *localindex.Headers {
	if !pm.indexLooked {
		pm.indexLooked = true
		if im, ok := pm.msg.(IndexedMessage); ok {
			if h, ok := im.IndexedHeaders(); ok && h.Present&localindex.HeadersComplete != 0 {
				pm.indexed = h
			}
		}
	}
	return pm.indexed
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
	// The same reader as headersOf: the indexed fields are what a search
	// of the file sees.
	pm.header = readHeader(raw)
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

// sentInRange decides SENTSINCE/SENTBEFORE (and SENTON, which is both)
// from the first Date field: from the index when it has the fields, else
// from the file.
func (pm *parsedMessage) sentInRange(since, before time.Time, pass searchCost) (truth, error) {
	var date string
	if h := pm.indexedHeaders(); h != nil && pass >= costIndex {
		date = h.Date
	} else if pass < costContent {
		return unknown, nil
	} else {
		if err := pm.load(); err != nil {
			return no, err
		}
		date = pm.header.Get("Date")
	}
	sent, ok := parseSentDate(date)
	if !ok {
		// No usable Date: header; fall back on the arrival date, as
		// SORT does (RFC 5256).
		sent = pm.msg.InternalDate()
	}
	return truthOf(dateInRange(sent, since, before)), nil
}

// parseSentDate parses the value of a Date field as go-message's
// mail.Header.Date does; false when it is empty or unusable.
func parseSentDate(v string) (time.Time, bool) {
	if v == "" {
		return time.Time{}, false
	}
	t, err := netmail.ParseDate(v)
	if err != nil || t.IsZero() {
		return time.Time{}, false
	}
	return t, true
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

// headerContains decides HEADER key value (and SUBJECT, FROM, TO, CC, BCC):
// some field of that name contains value after RFC 2047 decoding, case
// folded; an empty value matches every message that has the field. field is
// the key's indexedFields index (-1: not indexed).
func (pm *parsedMessage) headerContains(field int, key, value string, pass searchCost) (truth, error) {
	needle := foldCase(value)
	if h := pm.indexedHeaders(); h != nil && field >= 0 && pass >= costIndex {
		f := &indexedFields[field]
		if h.Present&f.bit == 0 {
			return no, nil
		}
		if needle == "" || valueContains(*f.first(h), needle) {
			return yes, nil
		}
		for _, more := range h.More {
			if more.Name == f.name && valueContains(more.Value, needle) {
				return yes, nil
			}
		}
		return no, nil
	}
	if pass < costContent {
		return unknown, nil
	}
	if err := pm.load(); err != nil {
		return no, err
	}
	for fields := pm.header.FieldsByKey(key); fields.Next(); {
		if needle == "" || valueContains(fields.Value(), needle) {
			return yes, nil
		}
	}
	return no, nil
}

// valueContains reports whether a raw header value contains needle (case
// folded) once decoded.
func valueContains(v, needle string) bool {
	return strings.Contains(foldCase(decodeHeaderValue(v)), needle)
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

// textContains decides TEXT: the decoded header fields ("Key: value"
// lines) or the body text contain needle (case folded). Before the file is
// read, the indexed fields can only find a match: each of their lines is
// a part of the header text.
func (pm *parsedMessage) textContains(needle string, pass searchCost) (truth, error) {
	if pass < costContent {
		h := pm.indexedHeaders()
		if h == nil || pass < costIndex {
			return unknown, nil
		}
		for i := range indexedFields {
			f := &indexedFields[i]
			if h.Present&f.bit != 0 && fieldLineContains(f.name, *f.first(h), needle) {
				return yes, nil
			}
		}
		for _, more := range h.More {
			if fieldLineContains(more.Name, more.Value, needle) {
				return yes, nil
			}
		}
		return unknown, nil
	}
	h, err := pm.headerText()
	if err != nil {
		return no, err
	}
	if strings.Contains(h, needle) {
		return yes, nil
	}
	body, err := pm.bodyText()
	if err != nil {
		return no, err
	}
	return truthOf(strings.Contains(body, needle)), nil
}

// fieldLineContains reports whether the line headerText writes for the
// field contains needle.
func fieldLineContains(name, value, needle string) bool {
	return strings.Contains(foldCase(name+": "+decodeHeaderValue(value)), needle)
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
