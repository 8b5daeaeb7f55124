package replication

// Reproductions of known bugs found by the simulations, outside this
// package's code (none at present; a fixed one moves to the normal suite).
// They are skipped unless SIMKNOWN=1, so the suite stays green until they
// are fixed; run them to see the failure:
//
//	SIMKNOWN=1 go test ./replication -run Known -v

import (
	"os"
	"testing"
)

func skipKnown(t *testing.T) {
	if os.Getenv("SIMKNOWN") == "" {
		t.Skip("known bug; SIMKNOWN=1 to run")
	}
}
