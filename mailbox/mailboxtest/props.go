package mailboxtest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/davmail/davmail/mailbox"
)

func testDeadProps(t *testing.T, newStore NewStore) {
	ctx, _, mb := open(t, newStore)
	mustCreate(t, mb, "F")
	m := mustAppendNamed(t, mb, "F", "m.EML")
	if m.HasDeadProps {
		t.Errorf("new message: HasDeadProps true")
	}
	if p := mustProps(t, mb, "F", "m.EML"); len(p) != 0 {
		t.Errorf("new message has props %+v", p)
	}
	if p := mustProps(t, mb, "F", ""); len(p) != 0 {
		t.Errorf("new folder has props %+v", p)
	}

	// Set out of order; read back sorted by (Space, Local).
	set := []mailbox.Prop{
		{Space: "urn:b", Local: "a", XML: "ba"},
		{Space: "urn:a", Local: "z", XML: "az"},
		{Space: "urn:a", Local: "b", XML: "ab"},
		{Space: "", Local: "x", XML: "no namespace"},
	}
	sorted := []mailbox.Prop{set[3], set[2], set[1], set[0]}
	mustPatch(t, mb, "F", "m.EML", set, nil)
	if got := mustProps(t, mb, "F", "m.EML"); !slices.Equal(got, sorted) {
		t.Errorf("props:\n got %+v\nwant %+v", got, sorted)
	}
	if p := mustProps(t, mb, "F", ""); len(p) != 0 {
		t.Errorf("message props leaked to the folder: %+v", p)
	}
	if !mustStat(t, mb, "F", "m.EML").HasDeadProps {
		t.Errorf("Stat: HasDeadProps false after PatchProps")
	}
	if l := mustList(t, mb, "F"); len(l) != 1 || !l[0].HasDeadProps {
		t.Errorf("List: HasDeadProps false after PatchProps")
	}

	// The returned slice is the caller's.
	got := mustProps(t, mb, "F", "m.EML")
	got[0].XML = "scribbled"
	if again := mustProps(t, mb, "F", "m.EML"); !slices.Equal(again, sorted) {
		t.Errorf("changing a returned slice changed the store: %+v", again)
	}

	// A set replaces the property with the same name; removing a missing
	// one is fine; set and remove of different names in one patch.
	mustPatch(t, mb, "F", "m.EML",
		[]mailbox.Prop{{Space: "urn:a", Local: "z", XML: "replaced", Lang: "fr"}},
		[]mailbox.PropName{{Space: "urn:b", Local: "a"}, {Space: "urn:none", Local: "missing"}, {Space: "urn:a", Local: "Z"}})
	want := []mailbox.Prop{set[3], set[2], {Space: "urn:a", Local: "z", XML: "replaced", Lang: "fr"}}
	if got := mustProps(t, mb, "F", "m.EML"); !slices.Equal(got, want) {
		t.Errorf("after replace and remove:\n got %+v\nwant %+v", got, want)
	}
	// Same local name in different namespaces are different properties.
	mustPatch(t, mb, "F", "m.EML", []mailbox.Prop{{Space: "urn:other", Local: "z", XML: "other"}}, nil)
	if got := mustProps(t, mb, "F", "m.EML"); len(got) != 4 {
		t.Errorf("same local name in another namespace: %+v", got)
	}

	// Removing everything clears HasDeadProps.
	var all []mailbox.PropName
	for _, p := range mustProps(t, mb, "F", "m.EML") {
		all = append(all, mailbox.PropName{Space: p.Space, Local: p.Local})
	}
	mustPatch(t, mb, "F", "m.EML", nil, all)
	if p := mustProps(t, mb, "F", "m.EML"); len(p) != 0 {
		t.Errorf("after removing all: %+v", p)
	}
	if mustStat(t, mb, "F", "m.EML").HasDeadProps {
		t.Errorf("HasDeadProps true after removing all")
	}

	// Folder props, including the root's and INBOX's.
	for _, folder := range []string{"F", mailbox.Inbox, ""} {
		fp := []mailbox.Prop{{Space: "DAV:", Local: "displayname-dead", XML: "folder " + folder}}
		mustPatch(t, mb, folder, "", fp, nil)
		if got := mustProps(t, mb, folder, ""); !slices.Equal(got, fp) {
			t.Errorf("folder %q props %+v, want %+v", folder, got, fp)
		}
	}
	if got := mustProps(t, mb, "F", "m.EML"); len(got) != 0 {
		t.Errorf("folder props leaked to the message: %+v", got)
	}

	// An empty patch is fine.
	if err := mb.PatchProps(ctx, "F", "m.EML", nil, nil); err != nil {
		t.Errorf("empty patch: %v", err)
	}
}

func testDeadPropsXML(t *testing.T, newStore NewStore) {
	_, _, mb := open(t, newStore)
	mustAppendNamed(t, mb, mailbox.Inbox, "m.EML")
	// Inner XML with namespace declarations, prefixes, an entity, an
	// empty element, odd spacing, a non-BMP character (U+1D11E) and a
	// character that needs a surrogate pair in UTF-16 in the names too.
	props := []mailbox.Prop{
		{
			Space: "http://example.com/ns/𝄞",
			Local: "complex",
			XML:   "<x:a xmlns:x=\"urn:example:x\" xmlns=\"urn:example:default\">𝄞 text &amp; more <b  attr='1'/>\n\t<x:c>&#x1F600;</x:c></x:a>  trailing ",
			Lang:  "de-CH",
		},
		{Space: "urn:example:x", Local: "plain", XML: "  leading and trailing space  "},
		{Space: "urn:example:x", Local: "empty", XML: ""},
		{Space: "urn:example:x", Local: "emoji😀", XML: "😀"},
	}
	mustPatch(t, mb, mailbox.Inbox, "m.EML", props, nil)
	want := slices.Clone(props)
	slices.SortFunc(want, func(a, b mailbox.Prop) int {
		if c := strings.Compare(a.Space, b.Space); c != 0 {
			return c
		}
		return strings.Compare(a.Local, b.Local)
	})
	got := mustProps(t, mb, mailbox.Inbox, "m.EML")
	if len(got) != len(want) {
		t.Fatalf("got %d props, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("prop %d:\n got %q %q %q %q\nwant %q %q %q %q", i,
				got[i].Space, got[i].Local, got[i].XML, got[i].Lang, want[i].Space, want[i].Local, want[i].XML, want[i].Lang)
		}
	}
}

func testDeadPropsCount(t *testing.T, newStore NewStore) {
	ctx, _, mb := open(t, newStore)
	mustAppendNamed(t, mb, mailbox.Inbox, "m.EML")
	mustAppendNamed(t, mb, mailbox.Inbox, "fresh.EML")
	prop := func(i int) mailbox.Prop {
		return mailbox.Prop{Space: "urn:count", Local: fmt.Sprintf("p%03d", i), XML: "v"}
	}
	var full []mailbox.Prop
	for i := range mailbox.MaxDeadProps {
		full = append(full, prop(i))
	}
	mustPatch(t, mb, mailbox.Inbox, "m.EML", full, nil)
	if got := mustProps(t, mb, mailbox.Inbox, "m.EML"); len(got) != mailbox.MaxDeadProps {
		t.Fatalf("%d props stored, want %d", len(got), mailbox.MaxDeadProps)
	}

	// One more is refused, and nothing of the patch is applied.
	err := mb.PatchProps(ctx, mailbox.Inbox, "m.EML",
		[]mailbox.Prop{{Space: "urn:count", Local: "p000", XML: "changed"}, prop(mailbox.MaxDeadProps)}, nil)
	wantErr(t, err, mailbox.ErrTooManyProps, "PatchProps past MaxDeadProps")
	if got := mustProps(t, mb, mailbox.Inbox, "m.EML"); !slices.Equal(got, full) {
		t.Errorf("a refused patch changed the props")
	}
	// Replacing an existing one at the cap is fine, so is removing one
	// and adding one in the same patch.
	mustPatch(t, mb, mailbox.Inbox, "m.EML", []mailbox.Prop{{Space: "urn:count", Local: "p000", XML: "changed"}}, nil)
	mustPatch(t, mb, mailbox.Inbox, "m.EML", []mailbox.Prop{prop(mailbox.MaxDeadProps)}, []mailbox.PropName{{Space: "urn:count", Local: "p001"}})
	if got := mustProps(t, mb, mailbox.Inbox, "m.EML"); len(got) != mailbox.MaxDeadProps || got[0].XML != "changed" {
		t.Errorf("after patches at the cap: %d props, first %+v", len(got), got[0])
	}

	// A single patch over the cap on a resource without props.
	err = mb.PatchProps(ctx, mailbox.Inbox, "fresh.EML", append(slices.Clone(full), prop(mailbox.MaxDeadProps)), nil)
	wantErr(t, err, mailbox.ErrTooManyProps, "one patch of %d props", mailbox.MaxDeadProps+1)
	if got := mustProps(t, mb, mailbox.Inbox, "fresh.EML"); len(got) != 0 {
		t.Errorf("a refused patch stored %d props", len(got))
	}
	if mustStat(t, mb, mailbox.Inbox, "fresh.EML").HasDeadProps {
		t.Errorf("a refused patch set HasDeadProps")
	}
	// Folders have the same cap.
	err = mb.PatchProps(ctx, mailbox.Inbox, "", append(slices.Clone(full), prop(mailbox.MaxDeadProps)), nil)
	wantErr(t, err, mailbox.ErrTooManyProps, "folder patch of %d props", mailbox.MaxDeadProps+1)
	if got := mustProps(t, mb, mailbox.Inbox, ""); len(got) != 0 {
		t.Errorf("a refused folder patch stored %d props", len(got))
	}
}

func testDeadPropsBytes(t *testing.T, newStore NewStore) {
	ctx, _, mb := open(t, newStore)
	mustAppendNamed(t, mb, mailbox.Inbox, "m.EML")
	small := mailbox.Prop{Space: "urn:b", Local: "small", XML: "xy", Lang: "en"}
	used := len(small.Space) + len(small.Local) + len(small.XML) + len(small.Lang)
	big := func(extra int) mailbox.Prop {
		p := mailbox.Prop{Space: "urn:b", Local: "big", Lang: "de"}
		p.XML = strings.Repeat("x", mailbox.MaxDeadPropBytes-used-len(p.Space)-len(p.Local)-len(p.Lang)+extra)
		return p
	}
	mustPatch(t, mb, mailbox.Inbox, "m.EML", []mailbox.Prop{small}, nil)

	// One byte over, counting the existing property: refused, nothing applied.
	err := mb.PatchProps(ctx, mailbox.Inbox, "m.EML", []mailbox.Prop{{Space: "urn:b", Local: "other", XML: "1"}, big(1)}, nil)
	wantErr(t, err, mailbox.ErrTooManyProps, "PatchProps one byte over MaxDeadPropBytes")
	if got := mustProps(t, mb, mailbox.Inbox, "m.EML"); !slices.Equal(got, []mailbox.Prop{small}) {
		t.Errorf("a refused patch changed the props: %d props", len(got))
	}
	// Exactly at the cap is fine.
	mustPatch(t, mb, mailbox.Inbox, "m.EML", []mailbox.Prop{big(0)}, nil)
	if got := mustProps(t, mb, mailbox.Inbox, "m.EML"); len(got) != 2 || got[0] != big(0) || got[1] != small {
		t.Errorf("props at the byte cap: %d props", len(got))
	}
	// Growing the small one by a byte is over; shrinking big makes room.
	grown := small
	grown.XML += "z"
	err = mb.PatchProps(ctx, mailbox.Inbox, "m.EML", []mailbox.Prop{grown}, nil)
	wantErr(t, err, mailbox.ErrTooManyProps, "PatchProps growing a prop past the cap")
	mustPatch(t, mb, mailbox.Inbox, "m.EML", []mailbox.Prop{grown, big(-1)}, nil)
	if got := mustProps(t, mb, mailbox.Inbox, "m.EML"); len(got) != 2 || got[1] != grown {
		t.Errorf("after making room: %+v", got[1])
	}
}

func testDeadPropsMissing(t *testing.T, newStore NewStore) {
	ctx, _, mb := open(t, newStore)
	mustAppendNamed(t, mb, mailbox.Inbox, "m.EML")
	set := []mailbox.Prop{{Space: "urn:x", Local: "p", XML: "v"}}
	for _, c := range []struct{ folder, name string }{
		{"Missing", ""},
		{"Missing", "m.EML"},
		{mailbox.Inbox, "missing.EML"},
		{"INBOX/none", ""},
	} {
		_, err := mb.DeadProps(ctx, c.folder, c.name)
		wantErr(t, err, mailbox.ErrNotFound, "DeadProps(%q, %q)", c.folder, c.name)
		err = mb.PatchProps(ctx, c.folder, c.name, set, nil)
		wantErr(t, err, mailbox.ErrNotFound, "PatchProps(%q, %q)", c.folder, c.name)
	}
	if got := folderPaths(t, mb); !slices.Equal(got, []string{mailbox.Inbox}) {
		t.Errorf("PatchProps of missing targets created folders: %q", got)
	}
	if l := mustList(t, mb, mailbox.Inbox); len(l) != 1 || l[0].HasDeadProps {
		t.Errorf("PatchProps of missing targets changed INBOX: %+v", l)
	}
}
