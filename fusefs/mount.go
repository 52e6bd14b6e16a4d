package fusefs

import (
	"sync"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Mount mounts root at dir as go-fuse's fs.Mount does, with go-fuse's
// raw filesystem wrapped so that a listing learns the size of the READDIR
// reply it fills (listing.Readdirent says why).
func Mount(dir string, root *Root, opts *fs.Options) (*fuse.Server, error) {
	raw := &rawFS{RawFileSystem: fs.NewNodeFS(root, opts)}
	root.fsys.readdirSizes = &raw.sizes
	server, err := fuse.NewServer(raw, dir, &opts.MountOptions)
	if err != nil {
		return nil, err
	}
	go server.Serve()
	if err := server.WaitMount(); err != nil {
		return nil, err // the serve loop ends with the failed mount
	}
	return server, nil
}

// rawFS records the reply size of each READDIR request while it is
// answered, by the request's cancel channel, which go-fuse hands on to
// the listing in its fuse.Context. (go-fuse reuses a channel for later
// requests: it names a request only while the request runs.)
type rawFS struct {
	fuse.RawFileSystem
	sizes sync.Map // <-chan struct{} -> uint32
}

func (r *rawFS) ReadDir(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	r.sizes.Store(cancel, in.Size)
	defer r.sizes.Delete(cancel)
	return r.RawFileSystem.ReadDir(cancel, in, out)
}

// plainReplySize is the size of the READDIR reply that fc's request
// fills, and false for a READDIRPLUS (or a mount without rawFS).
func (f *FS) plainReplySize(fc *fuse.Context) (uint32, bool) {
	if f.readdirSizes == nil {
		return 0, false
	}
	size, ok := f.readdirSizes.Load(fc.Cancel)
	if !ok {
		return 0, false
	}
	return size.(uint32), true
}

// plusEntrySize is what an entry named name takes in a READDIRPLUS reply:
// a fuse_entry_out, a fuse_dirent and the name, padded to 8 bytes.
func plusEntrySize(name string) int {
	const entryOut, dirent = 128, 24
	return entryOut + dirent + (len(name)+7)&^7
}
