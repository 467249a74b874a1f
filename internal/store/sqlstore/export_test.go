package sqlstore

import (
	"context"
	"fmt"
	"strings"
)

// DedupKey exposes dedupKey to the external tests.
var DedupKey = dedupKey

// ExecWriter runs a statement on the writer, outside the store's methods, so that a test can
// set up rows as an earlier version of the schema would have left them.
func (db *DB) ExecWriter(ctx context.Context, q string, args ...any) error {
	_, err := db.writer.ExecContext(ctx, db.dialect.rebind(q), args...)
	return err
}

// QueryWriter reads one string column through the writer (which sees its own writes at once).
func (db *DB) QueryWriter(ctx context.Context, q string, args ...any) (map[string]string, error) {
	rows, err := db.writer.QueryContext(ctx, db.dialect.rebind(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, rows.Err()
}

// MigrationStatement returns the statement of an embedded migration (up part) that starts
// with prefix, for the engine db runs on.
func (db *DB) MigrationStatement(file, prefix string) (string, error) {
	b, err := migrationFiles.ReadFile("migrations/" + db.dialect.name() + "/" + file)
	if err != nil {
		return "", err
	}
	up, _, _ := strings.Cut(string(b), "-- +goose Down")
	for _, stmt := range strings.Split(up, ";\n") {
		if s := strings.TrimSpace(stmt); strings.HasPrefix(s, prefix) {
			return s, nil
		}
	}
	return "", fmt.Errorf("%s: no statement starting with %q", file, prefix)
}

// MigrateTo moves db's schema up or down to version, as a test of the migrations themselves.
func (db *DB) MigrateTo(ctx context.Context, version int64) error {
	p, err := db.migrations(ctx)
	if err != nil {
		return err
	}
	cur, err := p.GetDBVersion(ctx)
	if err != nil {
		return err
	}
	if version < cur {
		_, err = p.DownTo(ctx, version)
	} else {
		_, err = p.UpTo(ctx, version)
	}
	return err
}

// Postgres tells whether db runs on PostgreSQL.
func (db *DB) Postgres() bool { return db.dialect.postgres }
