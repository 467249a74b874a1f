package sqlstore

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestHoldFlushPausesAfterASlowHeldFlush(t *testing.T) {
	var logged bytes.Buffer
	h := holdFlush{on: true, log: slog.New(slog.NewTextHandler(&logged, nil))}
	t0 := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	if !h.hold(t0) {
		t.Fatal("an enabled holdFlush does not hold")
	}
	h.took(true, holdLimit, t0)
	h.took(false, time.Second, t0) // a flush that released its P pauses nothing
	if !h.hold(t0) || logged.Len() != 0 {
		t.Fatalf("paused after flushes no slower than the limit, or released: hold %v, log %q", h.hold(t0), logged.String())
	}
	end := t0.Add(time.Second)
	h.took(true, holdLimit+time.Millisecond, end)
	if h.hold(end) || h.hold(end.Add(holdPause-time.Nanosecond)) {
		t.Fatal("still holding within the pause after a slow held flush")
	}
	if !h.hold(end.Add(holdPause)) {
		t.Fatal("not holding again once the pause is over")
	}
	if got := logged.String(); strings.Count(got, "slow disk") != 1 || !strings.Contains(got, "took=26ms") {
		t.Fatalf("log %q: want one line with the flush's time", got)
	}
	if (&holdFlush{}).hold(t0) {
		t.Fatal("a disabled holdFlush holds")
	}
}

func TestSyncFileDataHeldAndReleased(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wal")
	if err := os.WriteFile(path, []byte("frames"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, hold := range []bool{true, false} {
		if err := syncFileData(path, hold); err != nil {
			t.Errorf("hold %v: %v", hold, err)
		}
		missing := filepath.Join(t.TempDir(), "gone")
		if err := syncFileData(missing, hold); err == nil || !strings.Contains(err.Error(), missing) {
			t.Errorf("hold %v: flushing a missing file: %v, want an error naming it", hold, err)
		}
	}
}
