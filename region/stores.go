package region

import (
	"github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
)

// nosyncFiler stores raft-wal segments through a file system whose Sync
// does nothing: cache durability, where a write is acknowledged once a
// quorum holds it in memory (the page cache). Everything else about the
// log is unchanged.
func nosyncFiler(dir string) types.SegmentFiler {
	return segment.NewFiler(dir, nosyncFS{fs.New()})
}

type nosyncFS struct{ *fs.FS }

func (f nosyncFS) Create(dir, name string, size uint64) (types.WritableFile, error) {
	w, err := f.FS.Create(dir, name, size)
	if err != nil {
		return nil, err
	}
	return nosyncFile{w}, nil
}

func (f nosyncFS) OpenWriter(dir, name string) (types.WritableFile, error) {
	w, err := f.FS.OpenWriter(dir, name)
	if err != nil {
		return nil, err
	}
	return nosyncFile{w}, nil
}

type nosyncFile struct{ types.WritableFile }

func (nosyncFile) Sync() error { return nil }
