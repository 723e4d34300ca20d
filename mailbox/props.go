package mailbox

import (
	"cmp"
	"fmt"
	"slices"
)

// MergeProps returns cur with remove and then set applied (a name in both
// ends up set), sorted by (Space, Local), or an error wrapping
// ErrTooManyProps when the result is over MaxDeadProps or
// MaxDeadPropBytes. cur is not modified, so a refused patch leaves nothing
// behind. Every backend applies PatchProps through it, so the caps are the
// same everywhere.
func MergeProps(cur []Prop, set []Prop, remove []PropName) ([]Prop, error) {
	byName := make(map[PropName]Prop, len(cur)+min(len(set), MaxDeadProps+1))
	for _, p := range cur {
		byName[PropName{Space: p.Space, Local: p.Local}] = p
	}
	for _, n := range remove {
		delete(byName, n)
	}
	for _, p := range set {
		byName[PropName{Space: p.Space, Local: p.Local}] = p
		if len(byName) > MaxDeadProps {
			break // enough to refuse; keeps the map bounded whatever the input
		}
	}
	if len(byName) > MaxDeadProps {
		return nil, fmt.Errorf("more than %d dead properties: %w", MaxDeadProps, ErrTooManyProps)
	}
	total := 0
	out := make([]Prop, 0, len(byName))
	for _, p := range byName {
		total += len(p.Space) + len(p.Local) + len(p.XML) + len(p.Lang)
		out = append(out, p)
	}
	if total > MaxDeadPropBytes {
		return nil, fmt.Errorf("%d bytes of dead properties, at most %d: %w", total, MaxDeadPropBytes, ErrTooManyProps)
	}
	if len(out) == 0 {
		return nil, nil
	}
	slices.SortFunc(out, func(a, b Prop) int {
		return cmp.Or(cmp.Compare(a.Space, b.Space), cmp.Compare(a.Local, b.Local))
	})
	return out, nil
}
