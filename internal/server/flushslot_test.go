package server

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/forgeway/forgeway/internal/config"
)

func TestFlushSlot(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("flushes hold their P on Linux only")
	}
	was := runtime.GOMAXPROCS(0)
	env, set := os.LookupEnv("GOMAXPROCS")
	os.Unsetenv("GOMAXPROCS")
	t.Cleanup(func() {
		if set {
			os.Setenv("GOMAXPROCS", env)
		}
		runtime.GOMAXPROCS(was)
	})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	runtime.SetDefaultGOMAXPROCS()
	def := runtime.GOMAXPROCS(0)

	sqlite := config.Config{DataDir: t.TempDir(), SQLiteFlushSlot: true}
	sqliteURL := sqlite // SQLite named by the database URL
	sqliteURL.DatabaseURL = "sqlite:" + filepath.Join(t.TempDir(), "forgeway.db")
	// Two servers in one process: the second adds no second P.
	for _, cfg := range []config.Config{sqlite, sqliteURL} {
		if !flushSlot(cfg, log) {
			t.Fatalf("SQLite (%q) with sqlite-flush-slot: the store does not hold", cfg.DatabaseDSN())
		}
		if got := runtime.GOMAXPROCS(0); got != def+1 {
			t.Fatalf("GOMAXPROCS %d, want the default %d and one", got, def)
		}
	}

	runtime.GOMAXPROCS(def)
	off := sqlite
	off.SQLiteFlushSlot = false
	postgres := sqlite
	postgres.DatabaseURL = "postgres://localhost/forgeway"
	for name, cfg := range map[string]config.Config{"sqlite-flush-slot false": off, "PostgreSQL": postgres} {
		if flushSlot(cfg, log) || runtime.GOMAXPROCS(0) != def {
			t.Errorf("%s: holds, or GOMAXPROCS changed to %d", name, runtime.GOMAXPROCS(0))
		}
	}

	t.Setenv("GOMAXPROCS", "1")
	if !flushSlot(sqlite, log) || runtime.GOMAXPROCS(0) != def {
		t.Errorf("GOMAXPROCS set in the environment: changed to %d (was %d), or the store does not hold", runtime.GOMAXPROCS(0), def)
	}
}
