package sortthread

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Thread threads the messages with the named algorithm (ORDEREDSUBJECT or
// REFERENCES, case-insensitive) per RFC 5256 section 4 and returns the top
// level of the thread forest. Every message appears exactly once. msgs is
// not modified; the order of msgs does not matter (messages are taken in
// sequence-number order, as the RFC requires).
func Thread(msgs []Message, algorithm string) ([]*Node, error) {
	return ThreadKeys(msgs, algorithm, nil)
}

// ThreadKeys is Thread with the key cache cache (nil: none), kept by the
// caller per mailbox.
func ThreadKeys(msgs []Message, algorithm string, cache *Keys) ([]*Node, error) {
	switch strings.ToUpper(algorithm) {
	case AlgorithmOrderedSubject:
		return threadOrderedSubject(msgs, cache), nil
	case AlgorithmReferences:
		return threadReferences(msgs, cache), nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownAlgorithm, algorithm)
}

// threadMsg is a message with the keys threading needs, computed once.
type threadMsg struct {
	m        *Message
	date     int64
	subject  string // base subject, casemapped
	replyFwd bool
}

func newThreadMsgs(msgs []Message, cache *Keys) []threadMsg {
	tm := make([]threadMsg, len(msgs))
	cache.lock()
	for i := range msgs {
		m := &msgs[i]
		e := cache.lookupLocked(kindSubject, m.Subject, subjectEntry)
		tm[i] = threadMsg{m: m, date: sentDate(m), subject: e.key, replyFwd: e.rf}
	}
	cache.unlock()
	slices.SortFunc(tm, func(a, b threadMsg) int {
		if r := cmp.Compare(a.m.SeqNum, b.m.SeqNum); r != 0 {
			return r
		}
		return cmp.Compare(a.m.UID, b.m.UID)
	})
	return tm
}

// compareSent orders by sent date, then sequence number.
func compareSent(a, b *threadMsg) int {
	if r := cmp.Compare(a.date, b.date); r != 0 {
		return r
	}
	if r := cmp.Compare(a.m.SeqNum, b.m.SeqNum); r != 0 {
		return r
	}
	return cmp.Compare(a.m.UID, b.m.UID)
}

func leaf(t *threadMsg) *Node { return &Node{SeqNum: t.m.SeqNum, UID: t.m.UID} }

// threadOrderedSubject implements ORDEREDSUBJECT (RFC 5256 section 4):
// messages grouped by base subject, each group a root (its earliest
// message) with the others as its children, groups ordered by the sent
// date of their first message.
func threadOrderedSubject(msgs []Message, cache *Keys) []*Node {
	tm := newThreadMsgs(msgs, cache)
	slices.SortFunc(tm, func(a, b threadMsg) int {
		if r := strings.Compare(a.subject, b.subject); r != 0 {
			return r
		}
		return compareSent(&a, &b)
	})
	type group struct {
		first *threadMsg
		node  *Node
	}
	var groups []group
	for i := range tm {
		t := &tm[i]
		if len(groups) > 0 && groups[len(groups)-1].first.subject == t.subject {
			g := &groups[len(groups)-1]
			g.node.Children = append(g.node.Children, leaf(t))
			continue
		}
		groups = append(groups, group{first: t, node: leaf(t)})
	}
	slices.SortFunc(groups, func(a, b group) int { return compareSent(a.first, b.first) })
	out := make([]*Node, len(groups))
	for i, g := range groups {
		out[i] = g.node
	}
	return out
}

// container is a node of the REFERENCES algorithm's working tree.
type container struct {
	msg      *threadMsg // nil for a dummy
	parent   *container
	children []*container
	rootIdx  int // position in the root list during step 5
}

func (c *container) dummy() bool { return c.msg == nil }

func (c *container) unlink() {
	p := c.parent
	if p == nil {
		return
	}
	if i := slices.Index(p.children, c); i >= 0 {
		p.children = slices.Delete(p.children, i, i+1)
	}
	c.parent = nil
}

func (c *container) addChild(ch *container) {
	ch.parent = c
	c.children = append(c.children, ch)
}

// wouldLoop reports whether making child a child of parent would create a
// cycle. A child without children can only be its own ancestor, which
// keeps long reply chains linear.
func wouldLoop(parent, child *container) bool {
	if len(child.children) == 0 {
		return parent == child
	}
	for x := parent; x != nil; x = x.parent {
		if x == child {
			return true
		}
	}
	return false
}

// sortKey is the message a container sorts by: itself, or for a dummy its
// first child (recursively).
func (c *container) sortKey() *threadMsg {
	for c.msg == nil {
		if len(c.children) == 0 {
			return nil
		}
		c = c.children[0]
	}
	return c.msg
}

func compareContainers(a, b *container) int {
	ka, kb := a.sortKey(), b.sortKey()
	switch {
	case ka == nil && kb == nil:
		return 0
	case ka == nil:
		return 1
	case kb == nil:
		return -1
	}
	return compareSent(ka, kb)
}

// threadReferences implements the REFERENCES algorithm of RFC 5256
// section 4, steps 1 to 6.
func threadReferences(msgs []Message, cache *Keys) []*Node {
	tm := newThreadMsgs(msgs, cache)
	byID := make(map[string]*container, len(tm))
	all := make([]*container, 0, len(tm))
	slab := make([]container, len(tm)) // one per message; dummies come on top
	newContainer := func() *container {
		if len(slab) > 0 {
			c := &slab[0]
			slab = slab[1:]
			return c
		}
		return &container{}
	}
	get := func(id string) *container {
		c := byID[id]
		if c == nil {
			c = newContainer()
			byID[id] = c
			all = append(all, c)
		}
		return c
	}

	// Step 1.
	var refs []string
	for i := range tm {
		t := &tm[i]
		var c *container
		if id, ok := firstMessageID(t.m.MessageID); ok {
			if existing := byID[id]; existing == nil || existing.dummy() {
				c = get(id)
				c.msg = t
			}
		}
		if c == nil {
			// No, an invalid or a duplicate Message-ID: a unique one.
			c = newContainer()
			c.msg = t
			all = append(all, c)
		}

		refs = appendMessageIDs(refs[:0], t.m.References, -1)
		if len(refs) == 0 {
			refs = appendMessageIDs(refs, t.m.InReplyTo, 1)
		}
		// 1.A: link the references together, first to last.
		for j := 0; j+1 < len(refs); j++ {
			p, ch := get(refs[j]), get(refs[j+1])
			if ch.parent == nil && !wouldLoop(p, ch) {
				p.addChild(ch)
			}
		}
		// 1.B: the last reference is the message's parent.
		if len(refs) == 0 {
			c.unlink()
			continue
		}
		p := get(refs[len(refs)-1])
		if c.parent == p {
			continue
		}
		c.unlink()
		if !wouldLoop(p, c) {
			p.addChild(c)
		}
	}

	// Step 2: the messages without parent are the roots.
	var roots []*container
	for _, c := range all {
		if c.parent == nil {
			roots = append(roots, c)
		}
	}

	// Step 3: prune dummies.
	roots = prune(roots, true)

	// Step 4: sort the roots by sent date (a dummy by its first child).
	for _, r := range roots {
		if r.dummy() {
			slices.SortStableFunc(r.children, compareContainers)
		}
	}
	slices.SortStableFunc(roots, compareContainers)

	// Step 5: gather roots with the same base subject.
	roots = mergeBySubject(roots)

	// Step 6: sort every set of siblings, deepest first.
	sortSiblings(roots)

	nodes := make([]Node, len(all)+len(roots)) // enough for every container
	out := make([]*Node, 0, len(roots))
	for _, r := range roots {
		out = append(out, toNode(r, &nodes))
	}
	return out
}

// prune removes dummies without children and promotes the children of the
// other dummies, except to the root level when there are more than one.
func prune(list []*container, atRoot bool) []*container {
	out := list[:0:0]
	for _, c := range list {
		if len(c.children) > 0 {
			c.children = prune(c.children, false)
			for _, ch := range c.children {
				ch.parent = c
			}
		}
		if !c.dummy() {
			out = append(out, c)
			continue
		}
		switch {
		case len(c.children) == 0:
			// drop it
		case !atRoot || len(c.children) == 1:
			for _, ch := range c.children {
				ch.parent = c.parent
			}
			out = append(out, c.children...)
		default:
			out = append(out, c)
		}
	}
	return out
}

// threadSubject is the base subject of a root: its own, or its first
// child's if it is a dummy.
func threadSubject(c *container) (*threadMsg, string) {
	k := c.sortKey()
	if k == nil {
		return nil, ""
	}
	return k, k.subject
}

func mergeBySubject(roots []*container) []*container {
	table := make(map[string]*container)
	for i, r := range roots {
		r.rootIdx = i
		_, subj := threadSubject(r)
		if subj == "" {
			continue
		}
		t := table[subj]
		switch {
		case t == nil:
			table[subj] = r
		case !t.dummy() && (r.dummy() || (t.msg.replyFwd && !r.msg.replyFwd)):
			table[subj] = r
		}
	}
	removed := make([]bool, len(roots))
	for i, r := range roots {
		if removed[i] {
			continue
		}
		_, subj := threadSubject(r)
		if subj == "" {
			continue
		}
		t := table[subj]
		if t == nil || t == r {
			continue
		}
		switch {
		case t.dummy() && r.dummy():
			for _, ch := range r.children {
				t.addChild(ch)
			}
			r.children = nil
			removed[i] = true
		case t.dummy():
			t.addChild(r)
			removed[i] = true
		case !r.dummy() && r.msg.replyFwd && !t.msg.replyFwd:
			t.addChild(r)
			removed[i] = true
		default:
			d := &container{rootIdx: t.rootIdx}
			roots[t.rootIdx] = d
			t.parent = nil
			d.addChild(t)
			d.addChild(r)
			removed[i] = true
			table[subj] = d
		}
	}
	out := roots[:0]
	for i, r := range roots {
		if !removed[i] {
			r.parent = nil
			out = append(out, r)
		}
	}
	return out
}

func sortSiblings(list []*container) {
	for _, c := range list {
		if len(c.children) > 0 {
			sortSiblings(c.children)
		}
	}
	slices.SortStableFunc(list, compareContainers)
}

// toNode converts a container tree, taking the nodes from the slab.
func toNode(c *container, slab *[]Node) *Node {
	var n *Node
	if len(*slab) > 0 {
		n = &(*slab)[0]
		*slab = (*slab)[1:]
	} else {
		n = &Node{}
	}
	if c.msg != nil {
		n.SeqNum, n.UID = c.msg.m.SeqNum, c.msg.m.UID
	}
	if len(c.children) > 0 {
		n.Children = make([]*Node, len(c.children))
		for i, ch := range c.children {
			n.Children[i] = toNode(ch, slab)
		}
	}
	return n
}

// firstMessageID returns the first valid message id in a header value.
func firstMessageID(s string) (string, bool) {
	ids := appendMessageIDs(nil, s, 1)
	if len(ids) == 0 {
		return "", false
	}
	return ids[0], true
}

// appendMessageIDs appends up to max (all if max < 0) valid message ids
// found in s. As in Dovecot, an id is the text from "<" to the next ">",
// whitespace removed, and is valid when it holds an "@"; invalid ids are
// skipped. Ids are compared octet by octet.
func appendMessageIDs(dst []string, s string, max int) []string {
	for max != 0 {
		open := strings.IndexByte(s, '<')
		if open < 0 {
			break
		}
		s = s[open+1:]
		end := strings.IndexByte(s, '>')
		if end < 0 {
			break
		}
		id := s[:end]
		s = s[end+1:]
		if strings.IndexByte(id, '@') < 0 {
			continue
		}
		if strings.ContainsAny(id, " \t\r\n") {
			id = strings.Map(func(r rune) rune {
				if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
					return -1
				}
				return r
			}, id)
		}
		dst = append(dst, id)
		max--
	}
	return dst
}
