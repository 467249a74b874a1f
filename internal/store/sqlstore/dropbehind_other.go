//go:build !linux

package sqlstore

// dropBehind is Linux's (dropbehind_linux.go): elsewhere the page cache is left to the OS.
type dropBehind struct {
	path string
	keep int64
}

func (d *dropBehind) drop() error { return nil }

func (d *dropBehind) close() {}
