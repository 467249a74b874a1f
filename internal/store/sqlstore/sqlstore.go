// Package sqlstore implements store.Store on SQLite (embedded, one process) and PostgreSQL
// (several replicas sharing one database) with one body of SQL. It owns the schema and its
// migrations, id generation, keyset pagination, the group commit of inbound deliveries and
// the job queue's claiming and leasing rules.
//
// Engine differences are kept small: placeholders are written `?` and rebound to `$n` on
// PostgreSQL, times are int64 microseconds since the epoch on both, and claiming jobs adds
// FOR UPDATE SKIP LOCKED on PostgreSQL. On SQLite every write goes through one connection
// (a single writer never meets SQLITE_BUSY from its own process) and reads use a separate
// pool, which WAL lets run beside the writer.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/forgeway/forgeway/internal/store"
	"github.com/forgeway/forgeway/internal/store/sqlitevfs"
)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

// ErrClosed is returned by InsertDelivery once Close has been called.
var ErrClosed = errors.New("store closed")

// Options tunes Open. The zero value is ready to use.
type Options struct {
	// Logger receives the store's own log lines (migrations, group commit retries).
	// nil: slog.Default().
	Logger *slog.Logger
	// MaxConns bounds the PostgreSQL connection pool, and the SQLite reader pool.
	// 0: 10.
	MaxConns int
	// BusyTimeout is how long SQLite waits for a lock held by another process. 0: 10s.
	BusyTimeout time.Duration
	// MaxBatch bounds how many deliveries one group commit writes. 0: 256.
	MaxBatch int
	// CheckpointFrames is how many WAL frames not yet in the SQLite database file start a
	// checkpoint, which runs beside the writer. 0: 1,000 (SQLite's default).
	CheckpointFrames int
	// CachedTail is how much of the SQLite database file's end stays in the OS page cache
	// once checkpointed; the rest is dropped from it (Linux). 0: 32 MiB; negative: none is
	// dropped.
	CachedTail int64
	// HoldFlushP makes each flush of the SQLite WAL keep its goroutine's P while the disk
	// works (Linux; flushhold.go), for a process that runs one P more than it has CPUs.
	HoldFlushP bool
	// PlainWrites opens SQLite through its default VFS, whose every WAL frame costs two
	// system calls, instead of sqlitevfs, which writes a commit's frames in one.
	PlainWrites bool
}

// DB is a store.Store on SQLite or PostgreSQL. Its methods that are not part of a caller's
// transaction implement store.Tx with one statement, or one transaction, per call.
type DB struct {
	ops

	dialect dialect
	writer  *sql.DB // SQLite: the one writer connection; PostgreSQL: the pool
	reader  *sql.DB // SQLite: the reader pool; PostgreSQL: the same pool as writer
	log     *slog.Logger

	// schemaVersion is the newest embedded migration; Ping compares the database with it.
	schemaVersion int64
	maxBatch      int

	bodies bodyEncoder
	// keys hands out deliveries' row keys on SQLite (deliverykey.go).
	keys deliveryKeys

	// raw runs the group committer's transactions on SQLite.
	raw rawWriter
	// writerStmts and readerStmts keep SQLite's statements prepared; nil on PostgreSQL.
	writerStmts, readerStmts *stmtCache

	// batches and batched count group commits and the deliveries they carried.
	batches, batched atomic.Int64

	// walPath is the SQLite WAL file, which syncWAL flushes.
	walPath string
	// flush is syncWAL; tests wrap it to see what calls it and what waits for it.
	flush   func() error
	flushes flushStats // syncWAL's times
	holding holdFlush  // whether syncWAL holds its P
	// vfs is what the SQLite writer and checkpointer write through; nil when PlainWrites.
	vfs *sqlitevfs.VFS
	// ckpt checkpoints the SQLite WAL beside the writer; nil on PostgreSQL.
	ckpt *checkpointer

	commits   chan *deliveryRequest
	stop      chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
	closeErr  error
}

var (
	_ store.Store = (*DB)(nil)
	_ store.Tx    = ops{}
)

// IsPostgres reports whether dsn selects PostgreSQL (see Open).
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Open connects to the database named by dsn, applies pending migrations and starts the
// group committer. A dsn starting with postgres:// or postgresql:// selects PostgreSQL (pgx);
// anything else is a SQLite database file: a path, sqlite:<path> or file:<path> (query
// parameters of such a dsn are ignored: the store sets the ones it relies on). The SQLite
// file's directory is created 0700 and the file 0600 when missing. Close releases it all.
func Open(ctx context.Context, dsn string, opts Options) (*DB, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 10
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 10 * time.Second
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.CachedTail == 0 {
		opts.CachedTail = cachedTail
	}
	if opts.CheckpointFrames <= 0 {
		opts.CheckpointFrames = checkpointFrames
	}
	db := &DB{
		log:      opts.Logger,
		maxBatch: opts.MaxBatch,
		commits:  make(chan *deliveryRequest),
		stop:     make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	db.flushes.log = db.log
	var err error
	if IsPostgres(dsn) {
		err = db.openPostgres(dsn, opts)
	} else {
		err = db.openSQLite(dsn, opts)
	}
	if err != nil {
		return nil, err
	}
	db.ops = ops{db: db, r: db.reader, w: db.writer}
	if err := db.migrate(ctx); err != nil {
		db.closeConns()
		return nil, err
	}
	if !db.dialect.postgres {
		if err := db.keys.load(ctx, db.ops); err != nil {
			db.closeConns()
			return nil, err
		}
	}
	go db.commitLoop()
	if db.ckpt != nil {
		db.ckpt.start()
	}
	return db, nil
}

func (db *DB) openPostgres(dsn string, opts Options) error {
	db.dialect = dialect{postgres: true}
	pool, err := sql.Open("pgx", dsn)
	if err != nil {
		// pgx's parse errors can quote the dsn, password included: do not wrap them.
		return errors.New("open postgres: invalid connection string")
	}
	pool.SetMaxOpenConns(opts.MaxConns)
	pool.SetMaxIdleConns(opts.MaxConns)
	pool.SetConnMaxIdleTime(5 * time.Minute)
	db.writer, db.reader = pool, pool
	return nil
}

func (db *DB) openSQLite(dsn string, opts Options) (err error) {
	db.dialect = dialect{}
	path, err := sqlitePath(dsn)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create database directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("create database file: %w", err)
	}
	fi, err := f.Stat()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("create database file: %w", err)
	}
	if fi.Size() == 0 {
		if err := initSQLite(path); err != nil {
			return err
		}
	}
	busy := fmt.Sprintf("_pragma=busy_timeout(%d)", opts.BusyTimeout.Milliseconds())
	writes := busy // the writer's and the checkpointer's parameters
	if !opts.PlainWrites {
		// The writer and the checkpointer, which write the WAL and the database file,
		// write through sqlitevfs; readers write nothing.
		if db.vfs, err = sqlitevfs.Register(); err != nil {
			return fmt.Errorf("open sqlite %s: %w", path, err)
		}
		defer func() {
			if err != nil { // every connection opened through it is closed
				_ = db.vfs.Close()
				db.vfs = nil
			}
		}()
		writes += "&vfs=" + db.vfs.Name()
	}
	// synchronous=NORMAL: a commit writes the WAL without flushing it; the store flushes it
	// (syncWAL) before a commit counts as done, unless its durability was relaxed. Together
	// that is synchronous=FULL: a committed delivery survives power loss, which the 2xx
	// promises. The writer checkpoints only when the checkpointer falls far behind.
	writerDSN := path + "?" + writes +
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(ON)&_pragma=temp_store(MEMORY)&_txlock=immediate" +
		fmt.Sprintf("&_pragma=wal_autocheckpoint(%d)", 4*opts.CheckpointFrames)
	readerDSN := path + "?" + busy + "&_pragma=foreign_keys(ON)&_pragma=query_only(ON)"
	w, err := sql.Open("sqlite", writerDSN)
	if err != nil {
		return fmt.Errorf("open sqlite %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	// The writer connection switches the file to WAL before any reader opens it.
	if err := w.Ping(); err != nil {
		_ = w.Close()
		return fmt.Errorf("open sqlite %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", readerDSN)
	if err != nil {
		_ = w.Close()
		return fmt.Errorf("open sqlite %s: %w", path, err)
	}
	r.SetMaxOpenConns(opts.MaxConns)
	r.SetMaxIdleConns(opts.MaxConns)
	db.writer, db.reader = w, r
	if db.ckpt, err = newCheckpointer(path, opts.CheckpointFrames, opts.CachedTail, writes, db.log); err != nil {
		_ = w.Close()
		_ = r.Close()
		return err
	}
	db.writerStmts, db.readerStmts = newStmtCache(w), newStmtCache(r)
	db.walPath = path + "-wal"
	db.holding = holdFlush{on: opts.HoldFlushP, log: db.log}
	db.flush = db.syncWAL
	return nil
}

// syncWAL makes every transaction committed so far on SQLite durable, as synchronous=FULL
// would at each commit: the writer commits with synchronous=NORMAL (the WAL written, not
// flushed) and this flushes the WAL file. Flushing outside SQLite lets the group committer
// insert the next batch while the disk flushes the last one (commitOverlapped). The file is
// opened per call: the writer connection, whose commits it holds, stays open for the store's
// life, so the path names the file those commits went to.
func (db *DB) syncWAL() error {
	start := time.Now()
	hold := db.holding.hold(start)
	if err := syncFileData(db.walPath, hold); err != nil {
		return fmt.Errorf("flush the WAL: %w", err)
	}
	end := time.Now()
	took := end.Sub(start)
	db.flushes.observe(took, end)
	db.holding.took(hold, took, end)
	return nil
}

// WriteStats reports what the SQLite writer's and checkpointer's VFS counted, and whether
// they write through it (false on PostgreSQL and with Options.PlainWrites).
func (db *DB) WriteStats() (sqlitevfs.Stats, bool) {
	if db.vfs == nil {
		return sqlitevfs.Stats{}, false
	}
	return db.vfs.Stats(), true
}

// sqlitePageSize is the page size of databases Forgeway creates. A delivery row (its body
// S2-compressed) is about 2.5 KB: a 4 KiB page holds one and wastes the rest, an 8 KiB page
// holds three, so the writer writes one page for three deliveries instead of one each, to the
// WAL and again to the database (the store benchmark: 33.9 -> 29.7 us per delivery).
const sqlitePageSize = 8192

// initSQLite fixes the page size of a new, empty database file: it can only be chosen before
// the first write, which switching to WAL is. A database created earlier keeps its own.
func initSQLite(path string) error {
	c, err := sql.Open("sqlite", path)
	if err != nil {
		return fmt.Errorf("create sqlite %s: %w", path, err)
	}
	defer c.Close()
	for _, q := range []string{fmt.Sprintf("PRAGMA page_size=%d", sqlitePageSize), "PRAGMA journal_mode=WAL"} {
		if _, err := c.Exec(q); err != nil {
			return fmt.Errorf("create sqlite %s: %s: %w", path, q, err)
		}
	}
	return nil
}

// sqlitePath extracts the file path from a SQLite dsn.
func sqlitePath(dsn string) (string, error) {
	p := dsn
	switch {
	case strings.HasPrefix(p, "sqlite:"):
		p = strings.TrimPrefix(p, "sqlite:")
		p = strings.TrimPrefix(p, "//")
	case strings.HasPrefix(p, "file:"):
		u, err := url.Parse(p)
		if err != nil {
			return "", fmt.Errorf("parse sqlite dsn: %w", err)
		}
		if u.Host != "" && u.Host != "localhost" {
			return "", fmt.Errorf("sqlite dsn %q: a file URL names a local file", dsn)
		}
		p = u.Opaque
		if p == "" {
			p = u.Path
		}
	}
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	if p == "" || p == ":memory:" || strings.HasPrefix(p, ":") {
		return "", fmt.Errorf("sqlite dsn %q: a database file path is required (in-memory databases are not supported)", dsn)
	}
	return filepath.Clean(p), nil
}

// migrate applies the embedded migrations of the engine. On PostgreSQL a session advisory
// lock, keyed by the schema, makes replicas that start together take turns.
func (db *DB) migrate(ctx context.Context) error {
	p, err := db.migrations(ctx)
	if err != nil {
		return err
	}
	for _, s := range p.ListSources() {
		db.schemaVersion = max(db.schemaVersion, s.Version)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s database: %w", db.dialect.name(), err)
	}
	for _, r := range results {
		db.log.Info("applied migration", "engine", db.dialect.name(), "version", r.Source.Version, "took", r.Duration)
	}
	return nil
}

// migrations returns the engine's embedded migrations, ready to apply to db.
func (db *DB) migrations(ctx context.Context) (*goose.Provider, error) {
	fsys, err := fs.Sub(migrationFiles, "migrations/"+db.dialect.name())
	if err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	gooseDialect := goose.DialectSQLite3
	popts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	if db.dialect.postgres {
		gooseDialect = goose.DialectPostgres
		var schema string
		if err := db.writer.QueryRowContext(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
			return nil, fmt.Errorf("connect to postgres: %w", err)
		}
		h := fnv.New64a()
		_, _ = h.Write([]byte("forgeway/migrate/" + schema))
		locker, err := lock.NewPostgresSessionLocker(
			lock.WithLockID(int64(h.Sum64()>>1)),
			lock.WithLockTimeout(1, 300),
		)
		if err != nil {
			return nil, fmt.Errorf("migration lock: %w", err)
		}
		popts = append(popts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(gooseDialect, db.writer, fsys, popts...)
	if err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	return p, nil
}

// Ping checks that the database answers and that its schema is at least the version this
// binary embeds (a newer schema, written by a newer replica during a rolling upgrade, is
// accepted).
func (db *DB) Ping(ctx context.Context) error {
	if err := db.writer.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", db.dialect.name(), err)
	}
	var v sql.NullInt64
	err := db.reader.QueryRowContext(ctx,
		"SELECT MAX(version_id) FROM "+goose.DefaultTablename+" WHERE is_applied").Scan(&v)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v.Int64 < db.schemaVersion {
		return fmt.Errorf("database schema is at version %d, this binary needs %d: migrations pending", v.Int64, db.schemaVersion)
	}
	return nil
}

// Close stops the group committer, after it has answered the batch in flight, and closes
// the connections. Calls after the first return the first result.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		close(db.stop)
		<-db.stopped
		db.closeErr = db.closeConns()
	})
	return db.closeErr
}

func (db *DB) closeConns() error {
	var err error
	if db.ckpt != nil {
		err = db.ckpt.close()
	}
	err = errors.Join(err, db.raw.close(db.writer), db.writerStmts.close(), db.readerStmts.close(), db.writer.Close())
	if db.reader != db.writer {
		err = errors.Join(err, db.reader.Close())
	}
	err = errors.Join(err, db.vfs.Close()) // after every connection that uses it
	if err != nil {
		return fmt.Errorf("close %s: %w", db.dialect.name(), err)
	}
	return nil
}

// Dialect names the engine: "sqlite" or "postgres".
func (db *DB) Dialect() string { return db.dialect.name() }

// Tx runs fn in one transaction on the writer and commits when fn returns nil. fn must use
// only the Tx it is given: on SQLite the writer connection is the transaction's, so calling
// the *DB from fn waits forever.
func (db *DB) Tx(ctx context.Context, fn func(tx store.Tx) error) error {
	return db.inTx(ctx, func(o ops) error { return fn(o) })
}

// inTx runs fn in a transaction on the writer with an ops bound to it. A transaction whose
// context asks for relaxed durability (store.WithRelaxedDurability) commits without waiting
// for the disk; every other one waits (on SQLite, for syncWAL after the commit).
func (db *DB) inTx(ctx context.Context, fn func(o ops) error) (err error) {
	relaxed := store.RelaxedDurability(ctx)
	db.writerStmts.prepareWanted(ctx) // before the transaction takes the writer connection
	tx, err := db.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if relaxed && db.dialect.postgres {
		if _, err := tx.ExecContext(ctx, "SET LOCAL synchronous_commit TO OFF"); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("begin transaction: %w", err)
		}
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(txOps(db, tx)); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if !relaxed && !db.dialect.postgres {
		if err := db.flush(); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
	}
	return nil
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// ops implements store.Tx. Outside a transaction r is the reader pool and w the writer;
// inside one both are the transaction.
type ops struct {
	db   *DB
	r, w querier
	tx   *sql.Tx
	// txStmts holds the cached statements bound to tx, by text: database/sql makes a new
	// transaction statement at every Tx.StmtContext, which cost the group committer an
	// allocation and a registration per delivery. Only the goroutine running tx uses it.
	txStmts map[string]*sql.Stmt
}

// txOps returns an ops bound to tx.
func txOps(db *DB, tx *sql.Tx) ops {
	return ops{db: db, r: tx, w: tx, tx: tx, txStmts: map[string]*sql.Stmt{}}
}

func (o ops) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	q = o.db.dialect.rebind(q)
	if s := o.writeStmt(ctx, q); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return o.w.ExecContext(ctx, q, args...)
}

// query reads through the reader (or the transaction).
func (o ops) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	q = o.db.dialect.rebind(q)
	if s := o.readStmt(ctx, q); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return o.r.QueryContext(ctx, q, args...)
}

func (o ops) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	q = o.db.dialect.rebind(q)
	if s := o.readStmt(ctx, q); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return o.r.QueryRowContext(ctx, q, args...)
}

// writeQuery runs a writing statement that returns rows (RETURNING).
func (o ops) writeQuery(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	q = o.db.dialect.rebind(q)
	if s := o.writeStmt(ctx, q); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return o.w.QueryContext(ctx, q, args...)
}

func (o ops) writeRow(ctx context.Context, q string, args ...any) *sql.Row {
	q = o.db.dialect.rebind(q)
	if s := o.writeStmt(ctx, q); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return o.w.QueryRowContext(ctx, q, args...)
}

// writeStmt returns the writer's prepared statement for q (bound to the transaction when o
// is in one), or nil (PostgreSQL; or not cached yet): q then runs unprepared.
func (o ops) writeStmt(ctx context.Context, q string) *sql.Stmt {
	if o.tx != nil {
		if s, ok := o.txStmts[q]; ok {
			return s
		}
	}
	s := o.db.writerStmts.get(ctx, q, o.tx != nil)
	if s != nil && o.tx != nil {
		// Tx.StmtContext reuses the statement prepared on the transaction's connection.
		s = o.tx.StmtContext(ctx, s)
		if o.txStmts != nil {
			o.txStmts[q] = s
		}
	}
	return s
}

// readStmt is writeStmt for reads: the transaction's inside one, the reader pool's outside.
func (o ops) readStmt(ctx context.Context, q string) *sql.Stmt {
	if o.tx != nil {
		return o.writeStmt(ctx, q)
	}
	return o.db.readerStmts.get(ctx, q, false)
}

// relaxable runs a single write in a transaction of its own when the context asks for relaxed
// durability (an autocommit statement would commit with the connection's full durability).
func (o ops) relaxable(ctx context.Context, fn func(o ops) error) error {
	if o.tx != nil || !store.RelaxedDurability(ctx) {
		return fn(o)
	}
	return o.db.inTx(ctx, fn)
}

// atomic runs fn in a transaction: the caller's when there is one, else a new one.
func (o ops) atomic(ctx context.Context, fn func(o ops) error) error {
	if o.tx != nil {
		return fn(o)
	}
	return o.db.inTx(ctx, fn)
}

// affected returns the rows changed by a statement.
func affected(res sql.Result) (int64, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("rows affected: %w", err)
	}
	return n, nil
}

// execOne runs a statement that must change at least one row; ErrNotFound when it changed none.
func (o ops) execOne(ctx context.Context, q string, args ...any) error {
	res, err := o.exec(ctx, q, args...)
	if err != nil {
		return err
	}
	n, err := affected(res)
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}
