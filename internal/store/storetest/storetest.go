// Package storetest owns the one test suite every store.Store implementation passes (Run)
// and the helpers other packages' tests use to get a throwaway store: SQLite in a temporary
// directory, and PostgreSQL in a schema of its own when FORGEWAY_TEST_POSTGRES names a
// server.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for creating and dropping schemas

	"github.com/forgeway/forgeway/internal/store"
	"github.com/forgeway/forgeway/internal/store/sqlstore"
)

// EnvPostgres names the environment variable holding the PostgreSQL server URL tests use,
// e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const EnvPostgres = "FORGEWAY_TEST_POSTGRES"

// postgresConns bounds each test store's pool: many tests share one server.
const postgresConns = 4

// quiet is the logger test stores use: migrations would otherwise log on every open.
func quiet() *slog.Logger {
	return slog.New(slog.DiscardHandler)
}

// SQLite opens a fresh SQLite store in a temporary directory, its WAL flushes holding their
// P as the server's do; it is closed when the test ends.
func SQLite(t testing.TB) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "forgeway.db"), sqlstore.Options{Logger: quiet(), HoldFlushP: true})
	if err != nil {
		t.Fatalf("open sqlite store: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close sqlite store: %v", err)
		}
	})
	return db
}

// PostgresDSN creates an empty schema fwt_<random> on the server named by
// FORGEWAY_TEST_POSTGRES and returns a DSN whose search_path selects it; the schema is
// dropped when the test ends (register cleanups that close stores on it after calling
// PostgresDSN, so that they run first). The test is skipped when the variable is unset and
// fails when the server cannot be reached.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base, ok := os.LookupEnv(EnvPostgres)
	if !ok || base == "" {
		t.Skipf("PostgreSQL tests are off: set %s (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run them", EnvPostgres)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s is not a URL", EnvPostgres)
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("%s: invalid connection string", EnvPostgres)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var b [8]byte
	_, _ = rand.Read(b[:])
	schema := "fwt_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		_ = admin.Close()
		t.Fatalf("PostgreSQL at %s (from %s) is not usable: %v", u.Redacted(), EnvPostgres, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop test schema %s: %v", schema, err)
		}
		_ = admin.Close()
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Postgres opens a fresh PostgreSQL store in a schema of its own (see PostgresDSN); it is
// closed and the schema dropped when the test ends.
func Postgres(t testing.TB) *sqlstore.DB {
	t.Helper()
	return OpenPostgres(t, PostgresDSN(t))
}

// OpenPostgres opens another store on a DSN from PostgresDSN, as a second replica would; it
// is closed when the test ends.
func OpenPostgres(t testing.TB, dsn string) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), dsn, sqlstore.Options{Logger: quiet(), MaxConns: postgresConns})
	if err != nil {
		t.Fatalf("open postgres store: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close postgres store: %v", err)
		}
	})
	return db
}

// Each runs fn against a fresh SQLite store and, when FORGEWAY_TEST_POSTGRES is set, a fresh
// PostgreSQL store, as the subtests "sqlite" and "postgres".
func Each(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t)) })
}
