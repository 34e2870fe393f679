package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// A profile is the behaviour of one kind of real client. It runs until ctx
// is done and returns; errors are counted by client.do, so a profile only
// reconnects and goes on.
type profile func(ctx context.Context, r *runner, user, name string, rng *rand.Rand)

var profiles = map[string]profile{
	"webmail":  webmailProfile,
	"idle":     idleProfile,
	"desktop2": desktop2Profile,
	"mobile":   mobileProfile,
	"heavy":    heavyProfile,
}

// webmailProfile polls like a webmail: a fresh connection, LIST, STATUS on
// every folder, LOGOUT.
func webmailProfile(ctx context.Context, r *runner, user, name string, rng *rand.Rand) {
	for ctx.Err() == nil {
		cl, err := r.connect(ctx, user, name, rng)
		if err == nil {
			cl.statusAll(ctx)
			cl.logout(ctx)
		}
		if !pause(ctx, rng, 5*r.cfg.Think) {
			return
		}
	}
}

// statusAll lists the folders and asks STATUS of each.
func (cl *client) statusAll(ctx context.Context) {
	var boxes []*imap.ListData
	if err := cl.do(ctx, "LIST", `"" "*"`, func() error {
		var err error
		boxes, err = cl.c.List("", "*", nil).Collect()
		return err
	}); err != nil {
		return
	}
	// Desktop clients and webmails send the STATUS commands of all
	// folders at once (pipelined) and read the answers as they come.
	type pending struct {
		name  string
		cmd   *imapclient.StatusCommand
		start time.Time
	}
	var cmds []pending
	_ = cl.conn.SetDeadline(time.Now().Add(cl.r.cfg.CommandTimeout))
	for _, b := range boxes {
		if hasAttr(b.Attrs, imap.MailboxAttrNoSelect) || hasAttr(b.Attrs, imap.MailboxAttrNonExistent) {
			continue
		}
		cmds = append(cmds, pending{name: b.Mailbox, start: time.Now(), cmd: cl.c.Status(b.Mailbox, &imap.StatusOptions{
			NumMessages: true, NumUnseen: true, UIDNext: true, UIDValidity: true,
		})})
	}
	for _, p := range cmds {
		st, err := p.cmd.Wait()
		cl.recordSince("STATUS", p.name, p.start, err)
		if err == nil {
			cl.checkUIDValidity(p.name, st.UIDValidity)
		}
	}
}

func hasAttr(attrs []imap.MailboxAttr, a imap.MailboxAttr) bool {
	for _, x := range attrs {
		if strings.EqualFold(string(x), string(a)) {
			return true
		}
	}
	return false
}

func (cl *client) checkUIDValidity(mailbox string, v uint32) {
	if prev, changed := cl.r.checker.seeUIDValidity(cl.user, mailbox, v); changed {
		cl.violation(mailbox, "UIDVALIDITY changed from %d to %d", prev, v)
	}
}

// selectBox selects a mailbox and checks its UIDVALIDITY.
func (cl *client) selectBox(ctx context.Context, mailbox string) (*imap.SelectData, error) {
	var data *imap.SelectData
	err := cl.do(ctx, "SELECT", mailbox, func() error {
		var err error
		data, err = cl.c.Select(mailbox, nil).Wait()
		return err
	})
	if err == nil {
		cl.checkUIDValidity(mailbox, data.UIDValidity)
	}
	return data, err
}

// fetchTail fetches the last n messages' headers and checks that UIDs rise
// with sequence numbers.
func (cl *client) fetchTail(ctx context.Context, mailbox string, from uint32, withEnvelope bool) {
	mb := cl.c.Mailbox()
	if mb == nil || mb.NumMessages == 0 || from > mb.NumMessages {
		return
	}
	if from == 0 {
		from = 1
	}
	opts := &imap.FetchOptions{UID: true, Flags: true, RFC822Size: true}
	if withEnvelope {
		opts.Envelope = true
		opts.BodySection = []*imap.FetchItemBodySection{{
			Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"From", "Subject", "Date"}, Peek: true,
		}}
	}
	var msgs []*imapclient.FetchMessageBuffer
	if err := cl.do(ctx, "FETCH", fmt.Sprintf("%d:* headers", from), func() error {
		var err error
		msgs, err = cl.c.Fetch(seqFrom(from), opts).Collect()
		return err
	}); err != nil {
		return
	}
	checkAscending(cl, mailbox, msgs)
}

func checkAscending(cl *client, mailbox string, msgs []*imapclient.FetchMessageBuffer) {
	var lastSeq uint32
	var lastUID imap.UID
	for _, m := range msgs {
		if m.SeqNum <= lastSeq {
			continue // responses may come in any order; only judge rising seqs
		}
		if m.UID != 0 && lastUID != 0 && m.UID <= lastUID {
			cl.violation(mailbox, "UID %d at sequence %d is not above UID %d at sequence %d", m.UID, m.SeqNum, lastUID, lastSeq)
		}
		lastSeq, lastUID = m.SeqNum, m.UID
	}
}

// idleProfile is a desktop client sitting in IDLE on INBOX and fetching
// what arrives.
func idleProfile(ctx context.Context, r *runner, user, name string, rng *rand.Rand) {
	for ctx.Err() == nil {
		cl, err := r.connect(ctx, user, name, rng)
		if err != nil {
			if !pause(ctx, rng, 5*r.cfg.Think) {
				return
			}
			continue
		}
		cl.idleLoop(ctx)
		cl.logout(context.WithoutCancel(ctx))
	}
}

func (cl *client) idleLoop(ctx context.Context) {
	if _, err := cl.selectBox(ctx, "INBOX"); err != nil {
		return
	}
	n := cl.numMessages()
	cl.fetchTail(ctx, "INBOX", subFloor(n, 9), true)
	for ctx.Err() == nil {
		seen := cl.numMessages()
		var idle *imapclient.IdleCommand
		if err := cl.do(ctx, "IDLE", "start", func() error {
			var err error
			idle, err = cl.c.Idle()
			return err
		}); err != nil {
			return
		}
		wait := 20 * cl.r.cfg.Think
		_ = cl.conn.SetDeadline(time.Now().Add(wait + cl.r.cfg.CommandTimeout))
		t := time.NewTimer(wait)
		select {
		case <-cl.exists:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		if err := cl.do(ctx, "IDLE", "done", func() error {
			if err := idle.Close(); err != nil {
				return err
			}
			return idle.Wait()
		}); err != nil {
			return
		}
		if now := cl.numMessages(); now > seen {
			cl.fetchTail(ctx, "INBOX", seen+1, true)
		}
	}
}

func subFloor(n, k uint32) uint32 {
	if n <= k {
		return 1
	}
	return n - k
}

// desktop2Profile is a desktop client with two connections: one in IDLE on
// INBOX, one that syncs folders and now and then saves a message into
// INBOX (which the first must be told about).
func desktop2Profile(ctx context.Context, r *runner, user, name string, rng *rand.Rand) {
	done := make(chan struct{})
	idleRng := rand.New(rand.NewSource(rng.Int63()))
	go func() {
		defer close(done)
		idleProfile(ctx, r, user, name+"/idle", idleRng)
	}()
	defer func() { <-done }()
	for ctx.Err() == nil {
		cl, err := r.connect(ctx, user, name+"/sync", rng)
		if err != nil {
			if !pause(ctx, rng, 5*r.cfg.Think) {
				return
			}
			continue
		}
		var mine []imap.UID
		for i := 0; ctx.Err() == nil && i < 20; i++ {
			cl.statusAll(ctx)
			if _, err := cl.selectBox(ctx, "INBOX"); err != nil {
				break
			}
			_ = cl.do(ctx, "FETCH", "1:* (UID FLAGS)", func() error {
				msgs, err := cl.c.Fetch(seqFrom(1), &imap.FetchOptions{UID: true, Flags: true}).Collect()
				if err == nil {
					checkAscending(cl, "INBOX", msgs)
				}
				return err
			})
			if rng.Intn(3) == 0 {
				if uid, ok := cl.appendPlain(ctx, "INBOX", rng); ok {
					mine = append(mine, uid)
				}
			}
			if len(mine) > 10 {
				cl.expungeUIDs(ctx, mine[:5])
				mine = mine[5:]
			}
			if !pause(ctx, rng, 3*r.cfg.Think) {
				break
			}
		}
		cl.expungeUIDs(context.WithoutCancel(ctx), mine)
		cl.logout(context.WithoutCancel(ctx))
	}
}

// appendPlain saves a message without flags and returns its UID.
func (cl *client) appendPlain(ctx context.Context, mailbox string, rng *rand.Rand) (imap.UID, bool) {
	body := buildMessage(fmt.Sprintf("%s-%d", cl.name, rng.Int63()), rng)
	var uid imap.UID
	err := cl.do(ctx, "APPEND", mailbox, func() error {
		cmd := cl.c.Append(mailbox, int64(len(body)), nil)
		// Close even after a failed write: it releases the client's
		// command encoder.
		_, werr := cmd.Write(body)
		if err := cmd.Close(); err != nil || werr != nil {
			return errors.Join(werr, err)
		}
		data, err := cmd.Wait()
		if err == nil && data != nil {
			uid = data.UID
		}
		return err
	})
	return uid, err == nil && uid != 0
}

func (cl *client) expungeUIDs(ctx context.Context, uids []imap.UID) {
	if len(uids) == 0 || !cl.c.Caps().Has(imap.CapUIDPlus) {
		return
	}
	set := imap.UIDSetNum(uids...)
	_ = cl.do(ctx, "STORE", "+FLAGS.SILENT (\\Deleted)", func() error {
		return cl.c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()
	})
	_ = cl.do(ctx, "EXPUNGE", "UID "+set.String(), func() error {
		_, err := cl.c.UIDExpunge(set).Collect()
		return err
	})
}

// mobileProfile is a phone: short sessions that fetch recent headers.
func mobileProfile(ctx context.Context, r *runner, user, name string, rng *rand.Rand) {
	for ctx.Err() == nil {
		cl, err := r.connect(ctx, user, name, rng)
		if err == nil {
			if _, err := cl.selectBox(ctx, "INBOX"); err == nil {
				cl.fetchTail(ctx, "INBOX", subFloor(cl.numMessages(), 19), true)
			}
			cl.logout(ctx)
		}
		if !pause(ctx, rng, 3*r.cfg.Think) {
			return
		}
	}
}

// buildMessage makes a message of random size with an X-Loadtest-ID.
func buildMessage(id string, rng *rand.Rand) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: Load Test <loadtest@example.org>\r\n")
	to, cc := recipients(rng)
	fmt.Fprintf(&b, "To: %s\r\n", to)
	if cc != "" {
		fmt.Fprintf(&b, "Cc: %s\r\n", cc)
	}
	fmt.Fprintf(&b, "Subject: loadtest %s\r\n", id)
	fmt.Fprintf(&b, "Date: %s\r\n", time.Now().UTC().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@loadtest.example.org>\r\n", id)
	fmt.Fprintf(&b, "X-Loadtest-ID: %s\r\n\r\n", id)
	lines := 3 + rng.Intn(200)
	for i := 0; i < lines; i++ {
		fmt.Fprintf(&b, "line %d of message %s, some text to make it look like mail.\r\n", i, id)
	}
	return []byte(b.String())
}

// recipients picks To and Cc fields. Half the messages have two or three
// To addresses and a third a Cc (half of those a group), so the ENVELOPEs
// the idle and mobile profiles fetch of messages desktop2 saved into INBOX
// have address lists of several addresses (which servers write with no
// space between them).
func recipients(rng *rand.Rand) (to, cc string) {
	to = "<user@example.org>"
	if rng.Intn(2) == 0 {
		to = "User <user@example.org>, other@example.org"
		if rng.Intn(2) == 0 {
			to += `, "Third, Person" <third@example.org>`
		}
	}
	switch rng.Intn(6) {
	case 0:
		cc = "cc1@example.org, Cc Two <cc2@example.org>"
	case 1:
		cc = "team: a@example.org, b@example.org;, after@example.org"
	}
	return to, cc
}

// seqFrom is the sequence set "from:*".
func seqFrom(from uint32) imap.SeqSet {
	var s imap.SeqSet
	s.AddRange(from, 0)
	return s
}

// numMessages is the server's last EXISTS count, 0 when nothing is selected.
func (cl *client) numMessages() uint32 {
	if mb := cl.c.Mailbox(); mb != nil {
		return mb.NumMessages
	}
	return 0
}
