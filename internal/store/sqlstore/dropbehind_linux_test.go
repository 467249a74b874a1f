package sqlstore

import (
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// residentShare is the share of the pages of path in [0, end) that are in the page cache.
func residentShare(t *testing.T, path string, end int64) float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, int(end), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.Munmap(m) }()
	page := os.Getpagesize()
	vec := make([]byte, (len(m)+page-1)/page)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	resident := 0
	for _, v := range vec {
		resident += int(v & 1)
	}
	return float64(resident) / float64(len(vec))
}

// Checkpoints drop what they have written behind the database file's tail from the page
// cache, and leave the tail; with dropping turned off, the whole file stays cached.
func TestCheckpointsDropWhatIsBehindTheTail(t *testing.T) {
	var st unix.Statfs_t
	if err := unix.Statfs(t.TempDir(), &st); err != nil {
		t.Fatal(err)
	}
	if st.Type == unix.TMPFS_MAGIC || st.Type == unix.RAMFS_MAGIC {
		t.Skip("the temporary directory is in memory: its files have no page cache to drop")
	}
	const tail = 1 << 20
	share := func(keep int64) float64 {
		o := quietOptions()
		o.CheckpointFrames = 64 // many checkpoints, each in the background
		o.CachedTail = keep
		path := filepath.Join(t.TempDir(), "f.db")
		db, err := Open(t.Context(), path, o)
		if err != nil {
			t.Fatal(err)
		}
		insertDeliveries(t, db, "a", 3000) // ~3 KB each: a database file of ~10 MB
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() < 8*tail {
			t.Fatalf("database file of %d bytes: too small to tell", fi.Size())
		}
		// The last checkpoints' ranges may not have been dropped yet: look at the first
		// half, which every later checkpoint had behind its tail.
		return residentShare(t, path, fi.Size()/2)
	}
	kept := share(-1)
	dropped := share(tail)
	if kept < 0.9 {
		t.Fatalf("without dropping, %.0f%% of the file's first half is cached; want nearly all (is the page cache under pressure?)", kept*100)
	}
	if dropped > 0.25 {
		t.Errorf("with a %d-byte cached tail, %.0f%% of the file's first half is still cached; want little", tail, dropped*100)
	}
}
