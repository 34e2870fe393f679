package sortthread

import (
	"cmp"
	"slices"
)

// column holds one sort key's value for every message, computed once:
// a number, or for string keys the rank of the string among all values.
type column struct {
	reverse bool
	nums    []int64
}

// Sort returns the messages ordered by the sort program keys, per RFC 5256
// and RFC 5957. Messages equal on every key are ordered by sequence number
// (then UID). Each message's keys are computed once, so the cost is one
// header parse per message and key plus O(n log n) comparisons. msgs is
// not modified; the result is a new slice.
func Sort(msgs []Message, keys []SortKey) []Message {
	order := sortOrder(msgs, keys, nil)
	out := make([]Message, len(msgs))
	for i, j := range order {
		out[i] = msgs[j]
	}
	return out
}

// SortNumbers is Sort returning only the message numbers in result order:
// UIDs if uid, else sequence numbers.
func SortNumbers(msgs []Message, keys []SortKey, uid bool) []uint32 {
	return SortNumbersKeys(msgs, keys, uid, nil)
}

// SortNumbersKeys is SortNumbers with the key cache cache (nil: none), kept
// by the caller per mailbox.
func SortNumbersKeys(msgs []Message, keys []SortKey, uid bool, cache *Keys) []uint32 {
	order := sortOrder(msgs, keys, cache)
	out := make([]uint32, len(order))
	for i, j := range order {
		if uid {
			out[i] = msgs[j].UID
		} else {
			out[i] = msgs[j].SeqNum
		}
	}
	return out
}

// sortOrder returns the indexes of msgs in sorted order.
func sortOrder(msgs []Message, keys []SortKey, cache *Keys) []int32 {
	cols := make([]column, len(keys))
	for k, key := range keys {
		cols[k] = buildColumn(msgs, key, cache)
	}
	order := make([]int32, len(msgs))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int {
		for k := range cols {
			c := &cols[k]
			if r := cmp.Compare(c.nums[a], c.nums[b]); r != 0 {
				if c.reverse {
					return -r
				}
				return r
			}
		}
		ma, mb := &msgs[a], &msgs[b]
		if r := cmp.Compare(ma.SeqNum, mb.SeqNum); r != 0 {
			return r
		}
		if r := cmp.Compare(ma.UID, mb.UID); r != 0 {
			return r
		}
		return cmp.Compare(a, b)
	})
	return order
}

func buildColumn(msgs []Message, key SortKey, cache *Keys) column {
	c := column{reverse: key.Reverse}
	n := len(msgs)
	numeric := func(f func(m *Message) int64) {
		c.nums = make([]int64, n)
		for i := range msgs {
			c.nums[i] = f(&msgs[i])
		}
	}
	// Strings are replaced by their rank among the distinct values, so
	// that the n log n comparisons compare integers; only the distinct
	// values (usually far fewer) are compared as strings.
	text := func(kind keyKind, field func(m *Message) string, f func(string) keyEntry) {
		keys := make([]string, n)
		index := make(map[string]int64)
		cache.lock()
		for i := range msgs {
			k := cache.lookupLocked(kind, field(&msgs[i]), f).key
			keys[i] = k
			index[k] = 0
		}
		cache.unlock()
		distinct := make([]string, 0, len(index))
		for k := range index {
			distinct = append(distinct, k)
		}
		slices.Sort(distinct)
		for rank, k := range distinct {
			index[k] = int64(rank)
		}
		c.nums = make([]int64, n)
		for i, k := range keys {
			c.nums[i] = index[k]
		}
	}
	switch key.Criterion {
	case SortArrival:
		numeric(func(m *Message) int64 { return m.InternalDate.Unix() })
	case SortDate:
		numeric(sentDate)
	case SortSize:
		numeric(func(m *Message) int64 { return m.Size })
	case SortSubject:
		text(kindSubject, func(m *Message) string { return m.Subject }, subjectEntry)
	case SortFrom:
		text(kindAddress, func(m *Message) string { return m.From }, addressEntry)
	case SortTo:
		text(kindAddress, func(m *Message) string { return m.To }, addressEntry)
	case SortCc:
		text(kindAddress, func(m *Message) string { return m.Cc }, addressEntry)
	case SortDisplayFrom:
		text(kindDisplay, func(m *Message) string { return m.From }, displayEntry)
	case SortDisplayTo:
		text(kindDisplay, func(m *Message) string { return m.To }, displayEntry)
	default:
		// An unknown criterion sorts nothing; ParseSort never yields one.
		c.nums = make([]int64, n)
	}
	return c
}
