package sortthread

import (
	"strconv"
	"strings"
)

// FormatThread returns the body of a "* THREAD" response for the thread
// forest: "(3 6 (4 23)(44 7 96))" per the thread-list grammar of RFC 5256
// section 5. A chain of single children is written flat. Numbers are UIDs
// if uid, else sequence numbers. Dummies are written only as the
// parentheses grouping their children; dummies without messages below them
// are left out.
func FormatThread(nodes []*Node, uid bool) []byte {
	var b []byte
	for _, n := range nodes {
		if hasMessage(n) {
			b = appendThread(b, n, uid)
		}
	}
	return b
}

// FormatThreadResponse returns the complete "* THREAD ...\r\n" line.
func FormatThreadResponse(nodes []*Node, uid bool) []byte {
	b := []byte("* THREAD")
	body := FormatThread(nodes, uid)
	if len(body) > 0 {
		b = append(b, ' ')
		b = append(b, body...)
	}
	return append(b, "\r\n"...)
}

func hasMessage(n *Node) bool {
	if !n.Dummy() {
		return true
	}
	for _, ch := range n.Children {
		if hasMessage(ch) {
			return true
		}
	}
	return false
}

func appendThread(b []byte, n *Node, uid bool) []byte {
	b = append(b, '(')
	first := true
	var kids []*Node
	for cur := n; ; {
		if !cur.Dummy() {
			if !first {
				b = append(b, ' ')
			}
			b = appendNum(b, cur, uid)
			first = false
		}
		kids = kids[:0]
		for _, ch := range cur.Children {
			if hasMessage(ch) {
				kids = append(kids, ch)
			}
		}
		if len(kids) == 1 {
			cur = kids[0]
			continue
		}
		if len(kids) > 1 {
			if !first {
				b = append(b, ' ')
			}
			for _, k := range kids {
				b = appendThread(b, k, uid)
			}
		}
		break
	}
	return append(b, ')')
}

func appendNum(b []byte, n *Node, uid bool) []byte {
	if uid {
		return strconv.AppendUint(b, uint64(n.UID), 10)
	}
	return strconv.AppendUint(b, uint64(n.SeqNum), 10)
}

// FormatSort returns the complete "* SORT n n n\r\n" line for the numbers
// in result order.
func FormatSort(nums []uint32) []byte {
	b := make([]byte, 0, 8+len(nums)*7)
	b = append(b, "* SORT"...)
	for _, n := range nums {
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(n), 10)
	}
	return append(b, "\r\n"...)
}

// FormatESort returns the complete "* ESEARCH (TAG "x") [UID] ...\r\n" line
// answering a SORT with RETURN options (RFC 5267 section 3.2): MIN and MAX
// are the first and last numbers in sort order, ALL the numbers in sort
// order as a sequence-set with ordered ranges, COUNT their
// number. nums are the sorted results (UIDs if uid); ret the options as
// SortCommand.Return holds them. MIN, MAX and ALL are left out when there
// is no result.
func FormatESort(tag string, uid bool, ret []string, nums []uint32) []byte {
	var want [4]bool
	for _, o := range ret {
		switch strings.ToUpper(o) {
		case ReturnMin:
			want[0] = true
		case ReturnMax:
			want[1] = true
		case ReturnAll:
			want[2] = true
		case ReturnCount:
			want[3] = true
		}
	}
	b := []byte(`* ESEARCH (TAG "`)
	for i := 0; i < len(tag); i++ {
		if tag[i] == '"' || tag[i] == '\\' {
			b = append(b, '\\')
		}
		b = append(b, tag[i])
	}
	b = append(b, `")`...)
	if uid {
		b = append(b, " UID"...)
	}
	if len(nums) > 0 {
		if want[0] {
			b = append(b, " MIN "...)
			b = strconv.AppendUint(b, uint64(nums[0]), 10)
		}
		if want[1] {
			b = append(b, " MAX "...)
			b = strconv.AppendUint(b, uint64(nums[len(nums)-1]), 10)
		}
		if want[2] {
			b = append(b, " ALL "...)
			b = AppendSortedSet(b, nums)
		}
	}
	if want[3] {
		b = append(b, " COUNT "...)
		b = strconv.AppendUint(b, uint64(len(nums)), 10)
	}
	return append(b, "\r\n"...)
}

// AppendSortedSet appends nums, in their order, as a sequence-set with
// ordered ranges (RFC 5267 section 3.2): a run of consecutive ascending
// numbers becomes "a:b", a descending run "b:a", anything else is written
// number by number ("9:7,1:3,5").
func AppendSortedSet(b []byte, nums []uint32) []byte {
	for i := 0; i < len(nums); {
		j := i
		if i+1 < len(nums) && nums[i] != ^uint32(0) && nums[i+1] == nums[i]+1 {
			for j+1 < len(nums) && nums[j] != ^uint32(0) && nums[j+1] == nums[j]+1 {
				j++
			}
		} else if i+1 < len(nums) && nums[i] > 1 && nums[i+1] == nums[i]-1 {
			for j+1 < len(nums) && nums[j] > 1 && nums[j+1] == nums[j]-1 {
				j++
			}
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, uint64(nums[i]), 10)
		if j > i {
			b = append(b, ':')
			b = strconv.AppendUint(b, uint64(nums[j]), 10)
		}
		i = j + 1
	}
	return b
}
