package store

import "io/fs"

func mustSub(f fs.FS, dir string) fs.FS {
	s, err := fs.Sub(f, dir)
	if err != nil {
		// The directory is embedded at build time; failing here is a build defect.
		panic(err)
	}
	return s
}
