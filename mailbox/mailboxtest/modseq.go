package mailboxtest

import (
	"testing"

	"github.com/davmail/davmail/mailbox"
)

// maxModseq returns the highest Modseq in the mailbox (root, folders,
// messages) and checks on the way that no folder is below a message in
// it.
func maxModseq(t *testing.T, mb mailbox.Mailbox) uint64 {
	t.Helper()
	fs, err := mb.Folders(t.Context())
	if err != nil {
		t.Fatalf("Folders: %v", err)
	}
	fs = append(fs, mustFolder(t, mb, ""))
	var top uint64
	for _, f := range fs {
		top = max(top, f.Modseq)
		for _, m := range mustList(t, mb, f.Path) {
			if m.Modseq > f.Modseq {
				t.Errorf("message %s/%s has Modseq %d above its folder's %d", f.Path, m.Name, m.Modseq, f.Modseq)
			}
			top = max(top, m.Modseq)
		}
	}
	return top
}

func testModseq(t *testing.T, newStore NewStore) {
	ctx, _, mb := open(t, newStore)
	mustCreate(t, mb, "A", "B", "Other")
	mustAppendNamed(t, mb, "Other", "untouched.EML")
	mustPatch(t, mb, "Other", "", []mailbox.Prop{{Space: "urn:x", Local: "p", XML: "v"}}, nil)
	other := mustFolder(t, mb, "Other").Modseq
	otherMsg := mustStat(t, mb, "Other", "untouched.EML").Modseq

	// step runs op and checks that the messages (by ID) and folders it
	// reports were given a Modseq above everything before, and that the
	// folder nobody touches did not move (though every step reads it).
	before := maxModseq(t, mb)
	step := func(name string, op func() (msgIDs []uint64, folders []string)) {
		t.Helper()
		msgIDs, folders := op()
		if t.Failed() {
			t.FailNow()
		}
		for _, id := range msgIDs {
			if m := mustStatID(t, mb, id); m.Modseq <= before {
				t.Errorf("%s: message %s/%s Modseq %d, want above %d", name, m.Folder, m.Name, m.Modseq, before)
			}
		}
		for _, p := range folders {
			if f := mustFolder(t, mb, p); f.Modseq <= before {
				t.Errorf("%s: folder %q Modseq %d, want above %d", name, p, f.Modseq, before)
			}
		}
		if got := mustFolder(t, mb, "Other").Modseq; got != other {
			t.Errorf("%s: untouched folder's Modseq moved from %d to %d", name, other, got)
		}
		if got := mustStat(t, mb, "Other", "untouched.EML").Modseq; got != otherMsg {
			t.Errorf("%s: untouched message's Modseq moved from %d to %d", name, otherMsg, got)
		}
		before = maxModseq(t, mb)
	}
	fail := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	var id uint64
	step("Append", func() ([]uint64, []string) {
		id = mustAppendNamed(t, mb, "A", "m.EML").ID
		return []uint64{id}, []string{"A"}
	})
	step("SetFlags", func() ([]uint64, []string) {
		_, err := mb.SetFlags(ctx, "A", "m.EML", mailbox.FlagSeen, true)
		fail(err)
		return []uint64{id}, []string{"A"}
	})
	step("SetFlags remove", func() ([]uint64, []string) {
		_, err := mb.SetFlags(ctx, "A", "m.EML", mailbox.FlagSeen, false)
		fail(err)
		return []uint64{id}, []string{"A"}
	})
	step("PatchProps of a message", func() ([]uint64, []string) {
		mustPatch(t, mb, "A", "m.EML", []mailbox.Prop{{Space: "urn:x", Local: "p", XML: "v"}}, nil)
		return []uint64{id}, []string{"A"}
	})
	step("PatchProps of a folder", func() ([]uint64, []string) {
		mustPatch(t, mb, "A", "", []mailbox.Prop{{Space: "urn:x", Local: "p", XML: "v"}}, nil)
		return nil, []string{"A"}
	})
	var copyID uint64
	step("Copy", func() ([]uint64, []string) {
		c, err := mb.Copy(ctx, "A", "m.EML", "B", "", false)
		fail(err)
		copyID = c.ID
		return []uint64{c.ID}, []string{"B"}
	})
	step("Move", func() ([]uint64, []string) {
		_, err := mb.Move(ctx, "A", "m.EML", "B", "moved.EML", false)
		fail(err)
		return []uint64{id}, []string{"A", "B"}
	})
	step("Move in place (rename)", func() ([]uint64, []string) {
		_, err := mb.Move(ctx, "B", "moved.EML", "B", "renamed.EML", false)
		fail(err)
		return []uint64{id}, []string{"B"}
	})
	step("Move with replace", func() ([]uint64, []string) {
		_, err := mb.Move(ctx, "B", "renamed.EML", "B", "m.EML", true) // onto the copy
		fail(err)
		return []uint64{id}, []string{"B"}
	})
	if _, err := mb.StatID(ctx, copyID); err == nil {
		t.Errorf("Move with replace left the replaced message")
	}
	step("Append with replace", func() ([]uint64, []string) {
		m := mustAppend(t, mb, "B", rawMessage("new", "content"), mailbox.AppendOptions{Name: "m.EML", Replace: true})
		id = m.ID
		return []uint64{m.ID}, []string{"B"}
	})
	step("Delete", func() ([]uint64, []string) {
		fail(mb.Delete(ctx, "B", "m.EML"))
		return nil, []string{"B"}
	})
	step("CreateFolder", func() ([]uint64, []string) {
		mustCreate(t, mb, "A/sub")
		return nil, []string{"A/sub", "A"}
	})
	step("Append in a subfolder", func() ([]uint64, []string) {
		mustCreate(t, mb, "A/sub/deep")
		id = mustAppendNamed(t, mb, "A/sub/deep", "d.EML").ID
		return []uint64{id}, []string{"A/sub/deep", "A/sub"}
	})
	step("CreateFolder top-level", func() ([]uint64, []string) {
		mustCreate(t, mb, "C")
		return nil, []string{"C", ""}
	})
	step("RenameFolder", func() ([]uint64, []string) {
		fail(mb.RenameFolder(ctx, "A/sub", "B/sub"))
		return nil, []string{"B/sub", "B/sub/deep", "A", "B"}
	})
	step("RenameFolder to top level", func() ([]uint64, []string) {
		fail(mb.RenameFolder(ctx, "B/sub", "S"))
		return nil, []string{"S", "S/deep", "B", ""}
	})
	step("DeleteFolder", func() ([]uint64, []string) {
		fail(mb.DeleteFolder(ctx, "S/deep"))
		return nil, []string{"S"}
	})
	step("DeleteFolder top-level", func() ([]uint64, []string) {
		fail(mb.DeleteFolder(ctx, "C"))
		return nil, []string{""}
	})
	step("PatchProps of the root", func() ([]uint64, []string) {
		mustPatch(t, mb, "", "", []mailbox.Prop{{Space: "urn:x", Local: "root", XML: "v"}}, nil)
		return nil, []string{""}
	})

	// Reading everything changes nothing.
	mustList(t, mb, "B")
	mustProps(t, mb, "B", "")
	mustProps(t, mb, "", "")
	if _, err := mb.Folders(ctx); err != nil {
		t.Fatal(err)
	}
	if after := maxModseq(t, mb); after != before {
		t.Errorf("reading moved the highest Modseq from %d to %d", before, after)
	}
}
