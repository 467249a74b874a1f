package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// maxCachedStatements bounds a stmtCache: statements whose text varies (IN lists, multi-row
// inserts of any size) must not grow it without end. Past the bound queries run unprepared.
const maxCachedStatements = 256

// stmtCache keeps the statements run on one SQLite pool prepared, by their text: parsing
// and planning a statement costs more than running a small one, and the same few statements
// run for every delivery and job. (PostgreSQL needs none: pgx caches prepared statements per
// connection itself.)
//
// A statement first seen inside a transaction cannot be prepared on the pool then: on the
// writer the transaction holds the pool's one connection, and preparing would wait for it
// forever. It is noted instead and prepared by prepareWanted, which inTx calls before it
// takes the connection.
type stmtCache struct {
	pool   *sql.DB
	mu     sync.Mutex
	ready  map[string]*sql.Stmt
	wanted map[string]bool
	closed bool
}

func newStmtCache(pool *sql.DB) *stmtCache {
	return &stmtCache{pool: pool, ready: map[string]*sql.Stmt{}, wanted: map[string]bool{}}
}

// get returns the prepared statement for q, preparing it now when the caller holds no
// connection of the pool (inTx false), or nil: the caller then runs q unprepared.
func (c *stmtCache) get(ctx context.Context, q string, inTx bool) *sql.Stmt {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	if s, ok := c.ready[q]; ok || c.closed || len(c.ready)+len(c.wanted) >= maxCachedStatements {
		c.mu.Unlock()
		return s
	}
	if inTx {
		c.wanted[q] = true
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	return c.prepare(ctx, q)
}

// prepare prepares q on the pool and caches it; nil when that fails (the statement's own
// run reports the error).
func (c *stmtCache) prepare(ctx context.Context, q string) *sql.Stmt {
	s, err := c.pool.PrepareContext(ctx, q)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.wanted, q)
	if prev, ok := c.ready[q]; ok || c.closed {
		_ = s.Close() // prepared twice concurrently, or the store closed meanwhile
		return prev
	}
	c.ready[q] = s
	return s
}

// prepareWanted prepares the statements first seen inside transactions. The caller must
// hold no connection of the pool.
func (c *stmtCache) prepareWanted(ctx context.Context) {
	if c == nil {
		return
	}
	c.mu.Lock()
	if len(c.wanted) == 0 {
		c.mu.Unlock()
		return
	}
	qs := make([]string, 0, len(c.wanted))
	for q := range c.wanted {
		qs = append(qs, q)
	}
	c.mu.Unlock()
	for _, q := range qs {
		if s := c.prepare(ctx, q); s == nil {
			c.mu.Lock()
			delete(c.wanted, q) // does not prepare: do not try on every transaction
			c.mu.Unlock()
		}
	}
}

// close closes every cached statement; later gets return nil.
func (c *stmtCache) close() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	var err error
	for q, s := range c.ready {
		err = errors.Join(err, s.Close())
		delete(c.ready, q)
	}
	return err
}
