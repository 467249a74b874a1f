package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"

	"github.com/forgeway/forgeway/internal/store"
)

// The columns and values of a delivery as ingest stores every one (asReceived), and of one
// with every column set. On SQLite the row key n follows (deliverykey.go).
const (
	receivedCols = `id, integration_id, kind, host_id, event, event_action, headers, body, status,
		test, received_at, body_encoding, dedup_key`
	receivedVals = `?, ?, ?, ?, ?, ?, ?, ?, '` + store.DeliveryReceived + `', ?, ?, ?, ?`
	deliveryVals = `?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?`
)

// The SQL that writes deliveries and their jobs (writeDelivery, insertSimpleJob), through
// database/sql or, for SQLite's group committer, rawWriter.
const (
	sqlInsertReceived      = `INSERT INTO deliveries (` + receivedCols + `) VALUES (` + receivedVals + `)` + skipDuplicate
	sqlInsertDelivery      = `INSERT INTO deliveries (` + deliveryCols + `, dedup_key) VALUES (` + deliveryVals + `)` + skipDuplicate
	sqlInsertReceivedKeyed = `INSERT INTO deliveries (` + receivedCols + `, n) VALUES (` + receivedVals + `, ?)` + skipDuplicate
	sqlInsertDeliveryKeyed = `INSERT INTO deliveries (` + deliveryCols + `, dedup_key, n) VALUES (` + deliveryVals + `, ?)` + skipDuplicate
	sqlMapKey              = `INSERT INTO delivery_keys (id, n) VALUES (?, ?)`
	sqlDuplicateOf         = `SELECT id FROM deliveries
		WHERE kind = ? AND integration_id = ? AND dedup_key = ?`
	sqlInsertJob = `INSERT INTO jobs (kind, args, unique_key, state, attempt, max_attempts,
		run_at, created_at, updated_at) VALUES (?, ?, '', 'available', 0, ?, ?, ?, ?)`
	// A pending job of the same unique key already does the work: on SQLite's one writer no
	// other transaction can start it running in between, so the conflict is the answer.
	sqlInsertUniqueJob = `INSERT INTO jobs (kind, args, unique_key, state, attempt, max_attempts,
		run_at, created_at, updated_at) VALUES (?, ?, ?, 'available', 0, ?, ?, ?, ?)
		ON CONFLICT (unique_key) WHERE state IN ` + pendingStates + ` AND unique_key <> '' DO NOTHING`
)

// rawWriter runs the group committer's transactions on SQLite's writer connection through
// the driver's own interfaces, under database/sql's Conn.Raw. database/sql's way costs, per
// group commit, parsing BEGIN and COMMIT again (the driver prepares the text of every
// transaction statement anew) and a goroutine to watch the transaction's context; per
// statement, its locking, its conversion of each argument and a fresh argument slice. The
// committer's statements are few and fixed, so it keeps them prepared on the connection.
// Only the committer's goroutine uses a rawWriter.
type rawWriter struct {
	dc    any // the driver connection the statements were prepared on
	stmts map[string]driver.Stmt
	args  []driver.NamedValue // reused by every statement
}

// on makes w ready for the driver connection dc. Statements prepared on another are dropped:
// database/sql replaced that connection, broken, and closed it with them.
func (w *rawWriter) on(dc any) {
	if w.dc != dc {
		w.forget()
		w.dc = dc
	}
}

// close closes the statements, on the connection of pool they were prepared on. The
// committer must have stopped.
func (w *rawWriter) close(pool *sql.DB) error {
	if w.dc == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	conn, err := pool.Conn(ctx)
	if err != nil {
		return fmt.Errorf("close the committer's statements: %w", err)
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		if dc != w.dc {
			w.forget() // prepared on a connection closed since
			return nil
		}
		return w.closeStmts()
	})
}

// forget drops the statements without closing them: their connection is gone.
func (w *rawWriter) forget() {
	clear(w.stmts)
	w.dc = nil
}

// closeStmts closes the prepared statements. The connection must be idle.
func (w *rawWriter) closeStmts() error {
	var err error
	for q, s := range w.stmts {
		err = errors.Join(err, s.Close())
		delete(w.stmts, q)
	}
	w.dc = nil
	return err
}

// stmt returns q prepared on w's connection, preparing it the first time.
func (w *rawWriter) stmt(ctx context.Context, q string) (driver.Stmt, error) {
	if s, ok := w.stmts[q]; ok {
		return s, nil
	}
	p, ok := w.dc.(driver.ConnPrepareContext)
	if !ok {
		return nil, fmt.Errorf("the SQLite driver's connection cannot prepare with a context")
	}
	s, err := p.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if w.stmts == nil {
		w.stmts = map[string]driver.Stmt{}
	}
	w.stmts[q] = s
	return s, nil
}

// bind fills the reused argument slice. The values go to the driver as they are, so each
// must be of a type it binds (int64, float64, bool, []byte, string, time.Time or nil).
func (w *rawWriter) bind(args []any) []driver.NamedValue {
	w.args = w.args[:0]
	for i, a := range args {
		w.args = append(w.args, driver.NamedValue{Ordinal: i + 1, Value: a})
	}
	return w.args
}

// execCount runs q with args and returns how many rows it changed.
func (w *rawWriter) execCount(ctx context.Context, q string, args ...any) (int64, error) {
	s, err := w.stmt(ctx, q)
	if err != nil {
		return 0, err
	}
	e, ok := s.(driver.StmtExecContext)
	if !ok {
		return 0, fmt.Errorf("the SQLite driver's statement cannot execute with a context")
	}
	res, err := e.ExecContext(ctx, w.bind(args))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// queryText runs q, which selects one text column, and returns its first row.
func (w *rawWriter) queryText(ctx context.Context, q string, args ...any) (string, error) {
	s, err := w.stmt(ctx, q)
	if err != nil {
		return "", err
	}
	qc, ok := s.(driver.StmtQueryContext)
	if !ok {
		return "", fmt.Errorf("the SQLite driver's statement cannot query with a context")
	}
	rows, err := qc.QueryContext(ctx, w.bind(args))
	if err != nil {
		return "", err
	}
	defer rows.Close()
	dest := make([]driver.Value, 1)
	if err := rows.Next(dest); err != nil {
		if errors.Is(err, io.EOF) {
			return "", sql.ErrNoRows
		}
		return "", err
	}
	switch v := dest[0].(type) {
	case string:
		return v, nil
	case []byte:
		return string(v), nil
	}
	return "", fmt.Errorf("unexpected %T for a text column", dest[0])
}

// writeJob writes a job, as insertSimpleJob does.
func (w *rawWriter) writeJob(ctx context.Context, j jobRow) error {
	t := micros(now())
	var err error
	if j.uniqueKey == "" {
		_, err = w.execCount(ctx, sqlInsertJob, j.kind, j.args, int64(j.maxAttempts), micros(j.runAt), t, t)
	} else {
		_, err = w.execCount(ctx, sqlInsertUniqueJob, j.kind, j.args, j.uniqueKey, int64(j.maxAttempts), micros(j.runAt), t, t)
	}
	return err
}
