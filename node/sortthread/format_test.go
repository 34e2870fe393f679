package sortthread

import "testing"

func TestFormatSort(t *testing.T) {
	if got := string(FormatSort([]uint32{2, 3, 1})); got != "* SORT 2 3 1\r\n" {
		t.Errorf("got %q", got)
	}
	if got := string(FormatSort(nil)); got != "* SORT\r\n" {
		t.Errorf("empty: got %q", got)
	}
}

func TestFormatESort(t *testing.T) {
	nums := []uint32{7, 3, 4, 5, 9, 8, 1}
	tests := []struct {
		tag  string
		uid  bool
		ret  []string
		nums []uint32
		want string
	}{
		{"A1", true, []string{"MIN", "MAX", "ALL", "COUNT"}, nums,
			`* ESEARCH (TAG "A1") UID MIN 7 MAX 1 ALL 7,3:5,9:8,1 COUNT 7` + "\r\n"},
		{"A2", false, []string{"COUNT"}, nums, `* ESEARCH (TAG "A2") COUNT 7` + "\r\n"},
		{"A3", false, []string{"count", "all"}, nil, `* ESEARCH (TAG "A3") COUNT 0` + "\r\n"},
		{"A4", true, []string{"MIN", "MAX", "ALL"}, nil, `* ESEARCH (TAG "A4") UID` + "\r\n"},
		{"A5", false, []string{"ALL"}, []uint32{1, 2, 3, 4}, `* ESEARCH (TAG "A5") ALL 1:4` + "\r\n"},
		{`x"\`, false, []string{"MAX"}, []uint32{42}, `* ESEARCH (TAG "x\"\\") MAX 42` + "\r\n"},
	}
	for _, tt := range tests {
		if got := string(FormatESort(tt.tag, tt.uid, tt.ret, tt.nums)); got != tt.want {
			t.Errorf("FormatESort(%q, %v, %v, %v) = %q, want %q", tt.tag, tt.uid, tt.ret, tt.nums, got, tt.want)
		}
	}
	sets := []struct {
		nums []uint32
		want string
	}{
		{[]uint32{4294967294, 4294967295, 1}, "4294967294:4294967295,1"},
		{[]uint32{9, 8, 7, 1, 2, 3, 5}, "9:7,1:3,5"},
		{[]uint32{1, 2, 1, 0, 5}, "1:2,1,0,5"},
		{[]uint32{5, 5, 6, 4}, "5,5:6,4"},
		{nil, ""},
	}
	for _, s := range sets {
		if got := string(AppendSortedSet(nil, s.nums)); got != s.want {
			t.Errorf("AppendSortedSet(%v) = %q, want %q", s.nums, got, s.want)
		}
	}
}
