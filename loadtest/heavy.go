package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// The heavy profile changes mail and checks every answer against an exact
// model. Each heavy client owns two folders that nothing else touches
// (lt-NAME-a and lt-NAME-b), so the model is exact: any difference is the
// server's fault.

const idHeader = "X-Loadtest-ID"

var heavyFlags = []imap.Flag{imap.FlagSeen, imap.FlagFlagged, imap.FlagAnswered, imap.FlagDraft, "$Label1"}

type heavy struct {
	cl   *client
	rng  *rand.Rand
	a, b *mboxModel
	seq  int
}

func heavyProfile(ctx context.Context, r *runner, user, name string, rng *rand.Rand) {
	folder := "lt-" + strings.NewReplacer("/", "-", "#", "-", ".", "-").Replace(name)
	h := &heavy{rng: rng, a: newMboxModel(folder + "-a"), b: newMboxModel(folder + "-b")}
	for ctx.Err() == nil {
		cl, err := r.connect(ctx, user, name, rng)
		if err != nil {
			if !pause(ctx, rng, 5*r.cfg.Think) {
				return
			}
			continue
		}
		h.cl = cl
		if h.setup(ctx) {
			h.loop(ctx)
			// A last full check once the run is over.
			h.verify(context.WithoutCancel(ctx), h.a)
		}
		cl.logout(context.WithoutCancel(ctx))
	}
}

// setup creates the folders and loads what is already in them as the
// starting model (a previous run's leftovers).
func (h *heavy) setup(ctx context.Context) bool {
	for _, m := range []*mboxModel{h.b, h.a} {
		_ = h.cl.do(ctx, "CREATE", m.name, func() error { return h.cl.c.Create(m.name, nil).Wait() })
		if _, err := h.selectModel(ctx, m); err != nil {
			return false
		}
		if !h.load(ctx, m) {
			return false
		}
	}
	return true
}

func (h *heavy) selectModel(ctx context.Context, m *mboxModel) (*imap.SelectData, error) {
	data, err := h.cl.selectBox(ctx, m.name)
	if err != nil {
		return nil, err
	}
	if m.uidValidity != 0 && data.UIDValidity != m.uidValidity {
		h.cl.violation(m.name, "UIDVALIDITY changed from %d to %d", m.uidValidity, data.UIDValidity)
	}
	m.uidValidity = data.UIDValidity
	return data, nil
}

// load replaces the model with the mailbox's current content (only at the
// start, when the tool knows nothing yet).
func (h *heavy) load(ctx context.Context, m *mboxModel) bool {
	msgs, ok := h.fetchAll(ctx, m)
	if !ok {
		return false
	}
	m.msgs = map[imap.UID]*msgModel{}
	for _, msg := range msgs {
		m.msgs[msg.UID] = &msgModel{id: headerID(msg), flags: newFlagSet(msg.Flags)}
		if msg.UID > m.maxUID {
			m.maxUID = msg.UID
		}
	}
	return true
}

func (h *heavy) fetchAll(ctx context.Context, m *mboxModel) ([]*imapclient.FetchMessageBuffer, bool) {
	var msgs []*imapclient.FetchMessageBuffer
	err := h.cl.do(ctx, "FETCH", "1:* (UID FLAGS id)", func() error {
		if mb := h.cl.c.Mailbox(); mb == nil || mb.NumMessages == 0 {
			msgs = nil
			return nil
		}
		var err error
		msgs, err = h.cl.c.Fetch(seqFrom(1), &imap.FetchOptions{
			UID: true, Flags: true,
			BodySection: []*imap.FetchItemBodySection{{
				Specifier: imap.PartSpecifierHeader, HeaderFields: []string{idHeader}, Peek: true,
			}},
		}).Collect()
		return err
	})
	return msgs, err == nil
}

func headerID(m *imapclient.FetchMessageBuffer) string {
	for _, s := range m.BodySection {
		for _, line := range strings.Split(string(s.Bytes), "\n") {
			name, value, ok := strings.Cut(line, ":")
			if ok && strings.EqualFold(strings.TrimSpace(name), idHeader) {
				return strings.TrimSpace(value)
			}
		}
	}
	return ""
}

func (h *heavy) loop(ctx context.Context) {
	for i := 0; ctx.Err() == nil; i++ {
		switch x := h.rng.Intn(100); {
		case x < 30 || len(h.a.msgs) == 0:
			h.appendOne(ctx)
		case x < 55:
			h.store(ctx)
		case x < 63:
			h.copyOrMove(ctx, false)
		case x < 71:
			h.copyOrMove(ctx, true)
		case x < 81 || len(h.a.msgs) > 150:
			h.expunge(ctx)
		case x < 91:
			h.search(ctx)
		case x < 95:
			h.sort(ctx)
		default:
			h.verify(ctx, h.a)
			if len(h.b.msgs) > 20 {
				h.emptyB(ctx)
			}
		}
		if h.cl.c.State() == imap.ConnStateLogout {
			return
		}
		if !pause(ctx, h.rng, h.cl.r.cfg.Think) {
			return
		}
	}
}

func (h *heavy) randomUID(m *mboxModel) (imap.UID, bool) {
	uids := m.uids()
	if len(uids) == 0 {
		return 0, false
	}
	return uids[h.rng.Intn(len(uids))], true
}

func (h *heavy) appendOne(ctx context.Context) {
	h.seq++
	// The trailing "z" keeps one ID from being a substring of another
	// (SEARCH HEADER matches substrings: "-4" is in "-40").
	id := fmt.Sprintf("%d-%s-%dz", h.cl.r.cfg.Seed, h.cl.name, h.seq)
	body := buildMessage(id, h.rng)
	var flags []imap.Flag
	for _, f := range heavyFlags {
		if h.rng.Intn(3) == 0 {
			flags = append(flags, f)
		}
	}
	var data *imap.AppendData
	err := h.cl.do(ctx, "APPEND", fmt.Sprintf("%s %v id=%s", h.a.name, flags, id), func() error {
		cmd := h.cl.c.Append(h.a.name, int64(len(body)), &imap.AppendOptions{Flags: flags})
		// Close even after a failed write: it releases the client's
		// command encoder.
		_, werr := cmd.Write(body)
		if err := cmd.Close(); err != nil || werr != nil {
			return errors.Join(werr, err)
		}
		var err error
		data, err = cmd.Wait()
		return err
	})
	if err != nil {
		// The message may or may not be there; a verify settles it.
		h.verifyAfterDoubt(ctx, id, flags)
		return
	}
	uid := data.UID
	if uid == 0 {
		// No UIDPLUS: find it by its header.
		var ok bool
		if uid, ok = h.searchID(ctx, h.a, id); !ok {
			return
		}
	} else if data.UIDValidity != 0 && h.a.uidValidity != 0 && data.UIDValidity != h.a.uidValidity {
		h.cl.violation(h.a.name, "APPENDUID UIDVALIDITY %d, mailbox has %d", data.UIDValidity, h.a.uidValidity)
	}
	h.addToModel(h.a, uid, id, newFlagSet(flags), "APPEND")
}

// addToModel records a new message and checks its UID is new and rising.
func (h *heavy) addToModel(m *mboxModel, uid imap.UID, id string, flags flagSet, how string) {
	if _, dup := m.msgs[uid]; dup || uid <= m.maxUID {
		h.cl.violation(m.name, "%s gave UID %d, not above the highest UID %d seen (UID reused)", how, uid, m.maxUID)
	}
	if uid > m.maxUID {
		m.maxUID = uid
	}
	m.msgs[uid] = &msgModel{id: id, flags: flags}
}

// verifyAfterDoubt handles an APPEND that failed: if the message arrived
// anyway it joins the model, once.
func (h *heavy) verifyAfterDoubt(ctx context.Context, id string, flags []imap.Flag) {
	if h.cl.c.State() != imap.ConnStateSelected {
		return
	}
	if uid, ok := h.searchIDMaybe(ctx, h.a, id); ok && uid != 0 {
		h.addToModel(h.a, uid, id, newFlagSet(flags), "failed APPEND")
	}
}

func (h *heavy) searchIDMaybe(ctx context.Context, m *mboxModel, id string) (imap.UID, bool) {
	var uids []imap.UID
	err := h.cl.do(ctx, "SEARCH", "UID HEADER "+idHeader+" "+id, func() error {
		data, err := h.cl.c.UIDSearch(&imap.SearchCriteria{
			Header: []imap.SearchCriteriaHeaderField{{Key: idHeader, Value: id}},
		}, nil).Wait()
		if err == nil {
			uids = data.AllUIDs()
		}
		return err
	})
	if err != nil {
		return 0, false
	}
	if len(uids) > 1 {
		h.cl.violation(m.name, "message %s found %d times: UIDs %v", id, len(uids), uids)
	}
	if len(uids) == 0 {
		return 0, true
	}
	return uids[0], true
}

func (h *heavy) searchID(ctx context.Context, m *mboxModel, id string) (imap.UID, bool) {
	uid, ok := h.searchIDMaybe(ctx, m, id)
	if ok && uid == 0 {
		h.cl.violation(m.name, "appended message %s not found by SEARCH", id)
		return 0, false
	}
	return uid, ok
}

func (h *heavy) store(ctx context.Context) {
	uid, ok := h.randomUID(h.a)
	if !ok {
		return
	}
	flag := heavyFlags[h.rng.Intn(len(heavyFlags))]
	op, opName := imap.StoreFlagsAdd, "+FLAGS"
	if h.rng.Intn(2) == 0 {
		op, opName = imap.StoreFlagsDel, "-FLAGS"
	}
	before := h.a.msgs[uid].flags
	want := before.clone()
	if op == imap.StoreFlagsAdd {
		want[strings.ToLower(string(flag))] = struct{}{}
	} else {
		delete(want, strings.ToLower(string(flag)))
	}
	var got []*imapclient.FetchMessageBuffer
	err := h.cl.do(ctx, "STORE", fmt.Sprintf("UID %d %s (%s)", uid, opName, flag), func() error {
		var err error
		got, err = h.cl.c.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: op, Flags: []imap.Flag{flag}}, nil).Collect()
		return err
	})
	if err != nil {
		return
	}
	h.a.msgs[uid].flags = want
	for _, m := range got {
		if m.UID == uid || (m.UID == 0 && len(got) == 1) {
			if have := newFlagSet(m.Flags); !have.equal(want) {
				h.cl.violation(h.a.name, "STORE on UID %d answered FLAGS %s, want %s", uid, have, want)
			}
			return
		}
	}
	// RFC 3501 lets a server leave out the FETCH when nothing changed
	// (Dovecot does); a change must be announced.
	if !want.equal(before) {
		h.cl.violation(h.a.name, "STORE on UID %d changed its flags but sent no FETCH FLAGS for it", uid)
	}
}

func (h *heavy) copyOrMove(ctx context.Context, move bool) {
	uid, ok := h.randomUID(h.a)
	if !ok {
		return
	}
	src := h.a.msgs[uid]
	name := "COPY"
	if move {
		name = "MOVE"
	}
	var dest imap.NumSet
	var destValidity uint32
	err := h.cl.do(ctx, name, fmt.Sprintf("UID %d %s", uid, h.b.name), func() error {
		if move {
			data, err := h.cl.c.Move(imap.UIDSetNum(uid), h.b.name).Wait()
			if err == nil && data != nil {
				dest, destValidity = data.DestUIDs, data.UIDValidity
			}
			return err
		}
		data, err := h.cl.c.Copy(imap.UIDSetNum(uid), h.b.name).Wait()
		if err == nil && data != nil {
			dest, destValidity = data.DestUIDs, data.UIDValidity
		}
		return err
	})
	if err != nil {
		return
	}
	if move {
		delete(h.a.msgs, uid)
	}
	destUIDs, _ := dest.(imap.UIDSet)
	nums, okNums := destUIDs.Nums()
	if !okNums || len(nums) != 1 {
		// Without COPYUID the copy is checked when folder b is verified.
		h.b.pendingUnknown(src)
		return
	}
	if h.b.uidValidity != 0 && destValidity != 0 && destValidity != h.b.uidValidity {
		h.cl.violation(h.b.name, "COPYUID UIDVALIDITY %d, mailbox had %d", destValidity, h.b.uidValidity)
	}
	h.addToModel(h.b, nums[0], src.id, src.flags.clone(), name)
}

// pendingUnknown is used when a server gives no COPYUID: the copy is
// counted by id only.
func (m *mboxModel) pendingUnknown(src *msgModel) {
	m.unknown = append(m.unknown, &msgModel{id: src.id, flags: src.flags.clone()})
}

func (h *heavy) expunge(ctx context.Context) {
	uid, ok := h.randomUID(h.a)
	if !ok {
		return
	}
	if err := h.cl.do(ctx, "STORE", fmt.Sprintf("UID %d +FLAGS.SILENT (\\Deleted)", uid), func() error {
		return h.cl.c.Store(imap.UIDSetNum(uid), &imap.StoreFlags{
			Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted},
		}, nil).Close()
	}); err != nil {
		return
	}
	h.a.msgs[uid].flags[strings.ToLower(string(imap.FlagDeleted))] = struct{}{}
	if !h.cl.c.Caps().Has(imap.CapUIDPlus) {
		return
	}
	var seqs []uint32
	err := h.cl.do(ctx, "EXPUNGE", fmt.Sprintf("UID %d", uid), func() error {
		var err error
		seqs, err = h.cl.c.UIDExpunge(imap.UIDSetNum(uid)).Collect()
		return err
	})
	if err != nil {
		return
	}
	delete(h.a.msgs, uid)
	if len(seqs) != 1 {
		h.cl.violation(h.a.name, "UID EXPUNGE %d reported %d expunges, want 1", uid, len(seqs))
	}
}

func (h *heavy) search(ctx context.Context) {
	uid, ok := h.randomUID(h.a)
	if !ok {
		return
	}
	id := h.a.msgs[uid].id
	if id == "" {
		return
	}
	got, ok := h.searchIDMaybe(ctx, h.a, id)
	if ok && got != uid {
		h.cl.violation(h.a.name, "SEARCH HEADER %s %s found UID %d, want %d", idHeader, id, got, uid)
	}
}

func (h *heavy) sort(ctx context.Context) {
	if !h.cl.c.Caps().Has(imap.Cap("SORT")) {
		return
	}
	var nums []uint32
	err := h.cl.do(ctx, "SORT", "UID (ARRIVAL) ALL", func() error {
		var err error
		nums, err = h.cl.c.UIDSort(&imapclient.SortOptions{
			SearchCriteria: &imap.SearchCriteria{},
			SortCriteria:   []imapclient.SortCriterion{{Key: imapclient.SortKeyArrival}},
		}).Wait()
		return err
	})
	if err != nil {
		return
	}
	got := make([]int, len(nums))
	for i, n := range nums {
		got[i] = int(n)
	}
	sort.Ints(got)
	want := h.a.uids()
	same := len(got) == len(want)
	for i := 0; same && i < len(want); i++ {
		same = got[i] == int(want[i])
	}
	if !same {
		h.cl.violation(h.a.name, "UID SORT ALL returned %v, the mailbox holds %v", nums, want)
	}
}

// verify compares the whole selected folder with the model: every message
// exactly once, the flags as stored, UIDs rising, the count as announced.
func (h *heavy) verify(ctx context.Context, m *mboxModel) {
	if h.cl.c.State() != imap.ConnStateSelected {
		return
	}
	_ = h.cl.do(ctx, "NOOP", "", func() error { return h.cl.c.Noop().Wait() })
	msgs, ok := h.fetchAll(ctx, m)
	if !ok {
		return
	}
	checkAscending(h.cl, m.name, msgs)
	if mb := h.cl.c.Mailbox(); mb != nil && int(mb.NumMessages) != len(msgs) {
		n := mb.NumMessages
		h.cl.violation(m.name, "EXISTS says %d messages, FETCH 1:* returned %d", n, len(msgs))
	}
	seen := map[imap.UID]bool{}
	unknown := append([]*msgModel(nil), m.unknown...)
	for _, msg := range msgs {
		if seen[msg.UID] {
			h.cl.violation(m.name, "UID %d returned twice by FETCH 1:*", msg.UID)
			continue
		}
		seen[msg.UID] = true
		id := headerID(msg)
		want, ok := m.msgs[msg.UID]
		if !ok {
			if i := indexByID(unknown, id); i >= 0 {
				m.msgs[msg.UID] = unknown[i]
				unknown = append(unknown[:i], unknown[i+1:]...)
				if msg.UID > m.maxUID {
					m.maxUID = msg.UID
				}
				continue
			}
			h.cl.violation(m.name, "unexpected message UID %d id %q (duplicate or resurrected)", msg.UID, id)
			// Known from now on, so it is reported once.
			m.msgs[msg.UID] = &msgModel{id: id, flags: newFlagSet(msg.Flags)}
			continue
		}
		if want.id != "" && id != want.id {
			h.cl.violation(m.name, "UID %d holds message %q, want %q (UID confusion)", msg.UID, id, want.id)
		}
		if have := newFlagSet(msg.Flags); !have.equal(want.flags) {
			h.cl.violation(m.name, "UID %d has FLAGS %s, want %s", msg.UID, have, want.flags)
		}
	}
	m.unknown = unknown
	for _, uid := range m.uids() {
		if !seen[uid] {
			h.cl.violation(m.name, "message UID %d id %q is lost", uid, m.msgs[uid].id)
			delete(m.msgs, uid)
		}
	}
}

func indexByID(list []*msgModel, id string) int {
	for i, m := range list {
		if m.id == id {
			return i
		}
	}
	return -1
}

// emptyB checks folder b against its model and then expunges it all.
func (h *heavy) emptyB(ctx context.Context) {
	if _, err := h.selectModel(ctx, h.b); err != nil {
		return
	}
	h.verify(ctx, h.b)
	if len(h.b.msgs) > 0 {
		if err := h.cl.do(ctx, "STORE", "1:* +FLAGS.SILENT (\\Deleted)", func() error {
			return h.cl.c.Store(seqFrom(1), &imap.StoreFlags{
				Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted},
			}, nil).Close()
		}); err == nil {
			if err := h.cl.do(ctx, "EXPUNGE", "", func() error {
				_, err := h.cl.c.Expunge().Collect()
				return err
			}); err == nil {
				h.b.msgs = map[imap.UID]*msgModel{}
			}
		}
	}
	_, _ = h.selectModel(ctx, h.a)
}
