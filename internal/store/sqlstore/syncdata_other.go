//go:build !linux

package sqlstore

import "os"

// syncData flushes f's data to stable storage (fsync: other systems' fdatasync is missing
// or no cheaper).
func syncData(f *os.File) error {
	return f.Sync()
}
