package crdt

// fault selects a deliberately broken merge rule. It exists only so the
// convergence tests (converge_test.go, join_test.go) can prove they have
// teeth: each test sets testFault, checks that the property or model check
// now reports an error, and resets it. Nothing outside tests ever sets it;
// production code sees faultNone, and every check is a plain comparison of
// a package variable, so the switch costs nothing when off.
type fault uint8

const (
	faultNone fault = iota
	// faultDropIncrement: incList.add drops an increment that sorts before
	// one it already holds, as a remote increment arriving after a later
	// one does (an implementation that assumed in-order arrival).
	faultDropIncrement
	// faultRemoveWins: mvreg.remove and tagSet.remove ignore the causal
	// context and drop everything, so a remove beats concurrent writes.
	faultRemoveWins
	// faultNonIdempotent: Keyspace.Merge re-applies a batch the version
	// vector already covers instead of skipping it.
	faultNonIdempotent
	// faultFoldIgnoresStable: fold ops (fold.go) treat every piece as
	// causally stable, so they fold increments some regions have not seen.
	faultFoldIgnoresStable
	// faultFoldJoinByCover: Join keeps a fold group only if the other side
	// has not seen all its pieces, as if it were one piece identified by
	// them, so a state that still holds the pieces unfolded loses them.
	faultFoldJoinByCover
	// faultFoldWinnerTag: a fold group takes its register winner's tag (as
	// solo compaction of zsets does) instead of the greatest tag of the
	// pieces it stands for.
	faultFoldWinnerTag
)

func (f fault) String() string {
	switch f {
	case faultNone:
		return "none"
	case faultDropIncrement:
		return "dropIncrement"
	case faultRemoveWins:
		return "removeWins"
	case faultNonIdempotent:
		return "nonIdempotent"
	case faultFoldIgnoresStable:
		return "foldIgnoresStable"
	case faultFoldJoinByCover:
		return "foldJoinByCover"
	case faultFoldWinnerTag:
		return "foldWinnerTag"
	}
	return "fault?"
}

// testFault is the active fault; see fault. Test-only.
var testFault fault
