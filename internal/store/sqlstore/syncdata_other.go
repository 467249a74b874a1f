//go:build !linux

package sqlstore

import (
	"fmt"
	"os"
)

// syncFileData flushes the file at path to stable storage (fsync: other systems' fdatasync
// is missing or no cheaper). hold is for Linux only (syncdata_linux.go).
func syncFileData(path string, _ bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}
