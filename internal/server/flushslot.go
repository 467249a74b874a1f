package server

import (
	"log/slog"
	"os"
	"runtime"

	"github.com/forgeway/forgeway/internal/config"
	"github.com/forgeway/forgeway/internal/store/sqlstore"
)

// flushSlot gives the SQLite store's flushes of its write-ahead log a scheduler slot of
// their own when cfg asks for it (sqlite-flush-slot): the flushes keep their P while the disk
// works (sqlstore.Options.HoldFlushP), and the process runs one P more than the runtime's
// default, so that the P a flush holds is not one the request handlers lose. It reports
// whether the store should hold. A GOMAXPROCS set in the environment is left as it is.
func flushSlot(cfg config.Config, log *slog.Logger) bool {
	if !cfg.SQLiteFlushSlot || sqlstore.IsPostgres(cfg.DatabaseDSN()) || runtime.GOOS != "linux" {
		return false
	}
	if _, set := os.LookupEnv("GOMAXPROCS"); !set {
		// From the default every time, so that several servers in one process (tests) add
		// one P in all rather than one each.
		runtime.SetDefaultGOMAXPROCS()
		runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + 1)
	}
	log.Info("SQLite's write-ahead log flushes keep their scheduler slot", "gomaxprocs", runtime.GOMAXPROCS(0))
	return true
}
