package sqlstore

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestDataSyncFlushesAndReportsErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wal")
	if err := os.WriteFile(path, []byte("frames"), 0o600); err != nil {
		t.Fatal(err)
	}
	var s dataSync
	if err := s.file(path); err != nil {
		t.Fatalf("flush of an existing file: %v", err)
	}
	missing := path + "-gone"
	err := s.file(missing)
	if !errors.Is(err, syscall.ENOENT) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("flush of a missing file: %v, want ENOENT naming the path", err)
	}
}

func TestDataSyncReleasesThePAfterASlowFlush(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("a flush never holds the only P")
	}
	path := filepath.Join(t.TempDir(), "wal")
	if err := os.WriteFile(path, []byte("frames"), 0o600); err != nil {
		t.Fatal(err)
	}
	var s dataSync
	now := time.Now()
	if !s.holds(now) {
		t.Fatal("a fresh dataSync releases its P")
	}
	s.held(now, now.Add(heldFlushMax))
	if !s.holds(now) {
		t.Fatal("a flush of exactly the limit made later ones release their P")
	}
	s.heldMax = time.Nanosecond // every real flush is slower than this
	if err := s.file(path); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	if s.holds(after) {
		t.Fatal("after a slow held flush, the next one still holds its P")
	}
	if s.holds(after.Add(releasePause - time.Second)) {
		t.Fatal("flushes hold their P again before the pause is over")
	}
	if !s.holds(after.Add(releasePause + time.Second)) {
		t.Fatal("flushes never hold their P again after the pause")
	}
	// While released, a flush still works and a slow one does not extend the pause.
	until := s.releaseUntil.Load()
	if err := s.file(path); err != nil {
		t.Fatal(err)
	}
	if s.releaseUntil.Load() != until {
		t.Fatal("a flush that released its P moved the end of the pause")
	}
}

func TestDataSyncNeverHoldsTheOnlyP(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var s dataSync
	if s.holds(time.Now()) {
		t.Fatal("a flush holds the only P")
	}
}
