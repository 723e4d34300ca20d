package mailbox

import (
	"strings"
	"testing"
)

func TestNameFromSubject(t *testing.T) {
	for subj, want := range map[string]string{
		"Hello":           "Hello.EML",
		"":                "No Subject.EML",
		"  ...  ":         "No Subject.EML",
		"a/b\\c\x01d":     "a\uF8FFb_c_d.EML",
		"Grüße, 日本語":      "Grüße, 日本語.EML",
		"trailing dots..": "trailing dots.EML",
	} {
		if got := NameFromSubject(subj); got != want {
			t.Errorf("NameFromSubject(%q) = %q, want %q", subj, got, want)
		}
	}
	for _, long := range []string{strings.Repeat("日", 300), strings.Repeat("😀", 300), strings.Repeat("x", 1000)} {
		n := NameFromSubject(long)
		if !ValidSegment(n) || !ValidSegment(UniqueName(n, func(s string) bool { return s == n })) {
			t.Errorf("derived name of %d bytes is not a valid segment (%d bytes)", len(long), len(n))
		}
	}
}

func TestUniqueName(t *testing.T) {
	taken := map[string]bool{"a.EML": true, "a-2.EML": true}
	if got := UniqueName("a.EML", func(s string) bool { return taken[s] }); got != "a-3.EML" {
		t.Errorf("UniqueName = %q", got)
	}
	if got := UniqueName("b", func(s string) bool { return s == "b" }); got != "b-2" {
		t.Errorf("UniqueName without extension = %q", got)
	}
}

func TestFlags(t *testing.T) {
	f := ParseFlags("SaRFD")
	if f.String() != "DFRS" || f&FlagDeleted != 0 || f&FlagSeen == 0 {
		t.Errorf("ParseFlags = %q", f.String())
	}
}
