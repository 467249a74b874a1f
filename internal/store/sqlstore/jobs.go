package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/store"
)

// DefaultMaxAttempts is the number of attempts of a job inserted with MaxAttempts 0.
const DefaultMaxAttempts = 25

const jobCols = `id, kind, args, unique_key, state, attempt, max_attempts, run_at, lease_owner,
	lease_until, last_error, progress, created_at, finished_at`

// pendingStates is the SQL list of the states unique keys coalesce (see jobs_unique_pending).
const pendingStates = `('available', 'retryable')`

func scanJob(s scanner) (store.Job, error) {
	var (
		j                                  store.Job
		args, progress                     string
		runAt, leaseUntil, created, finish int64
	)
	err := s.Scan(&j.ID, &j.Kind, &args, &j.UniqueKey, &j.State, &j.Attempt, &j.MaxAttempts, &runAt,
		&j.LeaseOwner, &leaseUntil, &j.LastError, &progress, &created, &finish)
	if err != nil {
		return j, err
	}
	j.Args, j.Progress = rawJSON(args), rawJSON(progress)
	j.RunAt, j.LeaseUntil = fromMicros(runAt), fromMicros(leaseUntil)
	j.CreatedAt, j.FinishedAt = fromMicros(created), fromMicros(finish)
	return j, nil
}

func collectJobs(rows *sql.Rows) ([]store.Job, error) {
	defer rows.Close()
	var out []store.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// jobRow is a NewJob with its defaults applied and its args marshalled.
type jobRow struct {
	kind        string
	args        string
	uniqueKey   string
	maxAttempts int
	runAt       time.Time
	// shareable: a delivery's default processing job, which the deliveries of a group commit
	// share (deliveryJobs).
	shareable bool
}

func newJobRow(j store.NewJob) (jobRow, error) {
	if j.Kind == "" {
		return jobRow{}, errors.New("job kind is empty")
	}
	args, err := json.Marshal(j.Args)
	if err != nil {
		return jobRow{}, fmt.Errorf("encode args of %s job: %w", j.Kind, err)
	}
	return jobRow{kind: j.Kind, args: string(args), uniqueKey: j.UniqueKey, maxAttempts: attemptsOr(j.MaxAttempts), runAt: orNow(j.RunAt)}, nil
}

// attemptsOr is a job's attempt bound: n, or DefaultMaxAttempts when n is not positive.
func attemptsOr(n int) int {
	if n <= 0 {
		return DefaultMaxAttempts
	}
	return n
}

// InsertJob queues a job, available at RunAt (now when zero) with MaxAttempts attempts
// (DefaultMaxAttempts when 0). When a job with the same non-empty UniqueKey is pending
// (available or retryable) it is returned instead, with inserted=false; a running job with
// that key does not stop the insert, so that work arriving during a run causes another run.
func (o ops) InsertJob(ctx context.Context, nj store.NewJob) (store.Job, bool, error) {
	r, err := newJobRow(nj)
	if err != nil {
		return store.Job{}, false, fmt.Errorf("insert job: %w", err)
	}
	var (
		j        store.Job
		inserted bool
	)
	err = o.atomic(ctx, func(o ops) error {
		var err error
		j, inserted, err = o.insertJob(ctx, r)
		return err
	})
	if err != nil {
		return store.Job{}, false, fmt.Errorf("insert %s job: %w", nj.Kind, err)
	}
	return j, inserted, nil
}

// insertJob inserts r or finds the pending job with its unique key. It must run in a
// transaction.
// insertSimpleJob queues r without reading it back; a job with a unique key goes through
// insertJob.
func (o ops) insertSimpleJob(ctx context.Context, r jobRow) error {
	if r.uniqueKey != "" {
		_, _, err := o.insertJob(ctx, r)
		return err
	}
	t := micros(now())
	_, err := o.exec(ctx, sqlInsertJob,
		r.kind, r.args, r.maxAttempts, micros(r.runAt), t, t)
	return err
}

func (o ops) insertJob(ctx context.Context, r jobRow) (store.Job, bool, error) {
	t := micros(now())
	// The loop covers a pending job that starts running between the conflict and the look-up
	// (possible on PostgreSQL): the insert is then tried again and succeeds.
	for range 3 {
		j, err := scanJob(o.writeRow(ctx, `INSERT INTO jobs (kind, args,
			unique_key, state, attempt, max_attempts, run_at, created_at, updated_at)
			VALUES (?, ?, ?, 'available', 0, ?, ?, ?, ?)
			ON CONFLICT (unique_key) WHERE state IN `+pendingStates+` AND unique_key <> '' DO NOTHING
			RETURNING `+jobCols, r.kind, r.args, r.uniqueKey, r.maxAttempts, micros(r.runAt), t, t))
		if err == nil {
			return j, true, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return store.Job{}, false, err
		}
		j, err = scanJob(o.writeRow(ctx, `SELECT `+jobCols+` FROM jobs
			WHERE unique_key = ? AND state IN `+pendingStates, r.uniqueKey))
		if err == nil {
			return j, false, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return store.Job{}, false, err
		}
	}
	return store.Job{}, false, fmt.Errorf("unique key %q: pending job keeps changing state", r.uniqueKey)
}

// GetJob returns the job with id, or ErrNotFound.
func (o ops) GetJob(ctx context.Context, id int64) (store.Job, error) {
	j, err := scanJob(o.queryRow(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return j, fmt.Errorf("get job %d: %w", id, err)
	}
	return j, nil
}

// ListJobs returns a page of jobs, newest first, and the cursor of the next page, empty on
// the last. A cursor not made by this method gives ErrBadCursor.
func (o ops) ListJobs(ctx context.Context, f store.JobFilter) ([]store.Job, string, error) {
	var (
		where []string
		args  []any
	)
	if f.State != "" {
		where, args = append(where, "state = ?"), append(args, f.State)
	}
	if f.Kind != "" {
		where, args = append(where, "kind = ?"), append(args, f.Kind)
		if f.Kind != store.JobProcessDelivery {
			// The clause of the partial index jobs_kind, word for word, lets both engines'
			// planners use it (neither can prove it of a bound parameter).
			where = append(where, "kind <> '"+store.JobProcessDelivery+"'")
		}
	}
	if f.After != "" {
		c, err := decodeCursor(f.After, 1)
		if err != nil {
			return nil, "", fmt.Errorf("list jobs: %w", err)
		}
		id, err := strconv.ParseInt(c[0], 10, 64)
		if err != nil {
			return nil, "", fmt.Errorf("list jobs: %w", ErrBadCursor)
		}
		where, args = append(where, "id < ?"), append(args, id)
	}
	limit := pageLimit(f.Limit)
	q := `SELECT ` + jobCols + ` FROM jobs`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY id DESC LIMIT ` + strconv.Itoa(limit+1)
	rows, err := o.query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list jobs: %w", err)
	}
	items, err := collectJobs(rows)
	if err != nil {
		return nil, "", fmt.Errorf("list jobs: %w", err)
	}
	next := ""
	if len(items) > limit {
		items = items[:limit]
		next = encodeCursor(strconv.FormatInt(items[limit-1].ID, 10))
	}
	return items, next, nil
}

// ClaimJobs leases up to n due jobs of the given kinds (all kinds when empty) to owner
// until now+lease: available and retryable jobs whose RunAt has come, and running jobs whose
// lease expired (their worker died), oldest RunAt first. Each claimed job is running with
// its attempt incremented. A running job whose lease expired on its last attempt is not
// claimed but made dead. On PostgreSQL concurrent claimers skip each other's rows (FOR
// UPDATE SKIP LOCKED); on SQLite the single writer serialises them.
func (db *DB) ClaimJobs(ctx context.Context, owner string, kinds []string, n int, lease time.Duration) ([]store.Job, error) {
	if n <= 0 {
		return nil, nil
	}
	if owner == "" {
		return nil, errors.New("claim jobs: owner is empty")
	}
	t := now()
	nowUS, until := micros(t), micros(t.Add(lease))
	kindCond, kindArgs := "", []any(nil)
	if len(kinds) > 0 {
		kindCond = ` AND kind IN (` + placeholders(len(kinds)) + `)`
		for _, k := range kinds {
			kindArgs = append(kindArgs, k)
		}
	}
	due := `((state IN ` + pendingStates + ` AND run_at <= ?) OR (state = 'running' AND lease_until <= ?))` + kindCond
	// The same condition as two index range scans (jobs_due, jobs_lease). With the OR and the
	// kind list, SQLite's planner walks the kind index instead: every job ever run, per poll.
	// Each branch is an ordered range scan that stops after n rows, so a claim costs the same
	// with a backlog of a million jobs as with ten.
	branch := func(cond string) string {
		return `SELECT * FROM (SELECT id, run_at FROM jobs WHERE ` + cond + kindCond + ` ORDER BY run_at, id LIMIT ?)`
	}
	dueIDs := branch(`state = 'available' AND run_at <= ?`) + ` UNION ALL ` + branch(`state = 'retryable' AND run_at <= ?`) +
		` UNION ALL SELECT * FROM (SELECT id, run_at FROM jobs WHERE state = 'running' AND lease_until <= ?` + kindCond + ` LIMIT ?)`
	var dueArgs []any
	for range 3 {
		dueArgs = append(append(append(dueArgs, nowUS), kindArgs...), n)
	}
	// Most polls find nothing: a read settles that without taking the writer (SQLite) or
	// row locks (PostgreSQL).
	var probe int64
	var err error
	if db.dialect.postgres {
		err = db.queryRow(ctx, `SELECT id FROM jobs WHERE `+due+` LIMIT 1`, append([]any{nowUS, nowUS}, kindArgs...)...).Scan(&probe)
	} else {
		err = db.queryRow(ctx, `SELECT id FROM (`+dueIDs+`) LIMIT 1`, dueArgs...).Scan(&probe)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claim jobs for %s: %w", owner, err)
	}
	var claimed []store.Job
	err = db.inTx(ctx, func(o ops) error {
		// A job whose worker died on its last attempt is dead, not retried forever.
		args := append([]any{nowUS, nowUS, nowUS}, kindArgs...)
		if _, err := o.exec(ctx, `UPDATE jobs SET state = 'dead', finished_at = ?, updated_at = ?,
			last_error = CASE WHEN last_error = '' THEN 'lease expired on the last attempt' ELSE last_error END
			WHERE state = 'running' AND lease_until <= ? AND attempt >= max_attempts`+kindCond, args...); err != nil {
			return fmt.Errorf("expire last attempts: %w", err)
		}
		sel := `SELECT id FROM jobs WHERE ` + due + ` ORDER BY run_at, id LIMIT ?`
		set := `SET state = 'running', attempt = attempt + 1, lease_owner = ?, lease_until = ?, updated_at = ?`
		var q string
		if db.dialect.postgres {
			q = `WITH due AS MATERIALIZED (` + sel + ` FOR UPDATE SKIP LOCKED)
				UPDATE jobs ` + strings.Replace(set, "attempt = attempt", "attempt = jobs.attempt", 1) + `
				FROM due WHERE jobs.id = due.id RETURNING ` + prefixCols("jobs.", jobCols)
			args = append(append([]any{nowUS, nowUS}, kindArgs...), n, owner, until, nowUS)
		} else {
			q = `UPDATE jobs ` + set + ` WHERE id IN (SELECT id FROM (` + dueIDs + `) ORDER BY run_at, id LIMIT ?) RETURNING ` + jobCols
			args = append(append([]any{owner, until, nowUS}, dueArgs...), n)
		}
		rows, err := o.writeQuery(ctx, q, args...)
		if err != nil {
			return err
		}
		claimed, err = collectJobs(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim jobs for %s: %w", owner, err)
	}
	// RETURNING does not keep the subquery's order.
	slices.SortFunc(claimed, func(a, b store.Job) int {
		if c := a.RunAt.Compare(b.RunAt); c != 0 {
			return c
		}
		return int(a.ID - b.ID)
	})
	return claimed, nil
}

// leaseLost tells ErrNotFound from ErrLeaseLost after an update that matched no row.
func (o ops) leaseLost(ctx context.Context, id int64) error {
	var state string
	err := o.writeRow(ctx, `SELECT state FROM jobs WHERE id = ?`, id).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	if err != nil {
		return err
	}
	return store.ErrLeaseLost
}

// leased runs an update on a job that owner must hold (running, leased to owner).
func (o ops) leased(ctx context.Context, id int64, owner, set string, args ...any) error {
	args = append(args, id, owner)
	return o.relaxable(ctx, func(o ops) error {
		res, err := o.exec(ctx, `UPDATE jobs SET `+set+` WHERE id = ? AND lease_owner = ? AND state = 'running'`, args...)
		if err != nil {
			return err
		}
		n, err := affected(res)
		if err != nil {
			return err
		}
		if n == 0 {
			return o.leaseLost(ctx, id)
		}
		return nil
	})
}

// ExtendLease renews a running job's lease to now+lease; ErrLeaseLost when owner no longer
// holds it, ErrNotFound when the job does not exist.
func (db *DB) ExtendLease(ctx context.Context, id int64, owner string, lease time.Duration) error {
	t := now()
	if err := db.leased(ctx, id, owner, `lease_until = ?, updated_at = ?`, micros(t.Add(lease)), micros(t)); err != nil {
		return fmt.Errorf("extend lease of job %d: %w", id, err)
	}
	return nil
}

// CompleteJob marks a job owner holds completed; ErrLeaseLost when owner no longer holds it.
func (o ops) CompleteJob(ctx context.Context, id int64, owner string) error {
	t := micros(now())
	err := o.leased(ctx, id, owner, `state = 'completed', lease_until = 0, finished_at = ?, updated_at = ?`, t, t)
	if err != nil {
		return fmt.Errorf("complete job %d: %w", id, err)
	}
	return nil
}

// FailJob records a failed attempt of a job owner holds: the job becomes retryable at
// retryAt (now when zero), or dead when dead is true or it was its last attempt. A job whose
// unique key another pending job has taken meanwhile is cancelled instead of retried: the
// pending job does the same work. ErrLeaseLost when owner no longer holds it.
func (o ops) FailJob(ctx context.Context, id int64, owner string, errMsg string, retryAt time.Time, dead bool) error {
	t := micros(now())
	err := o.atomic(ctx, func(o ops) error {
		var superseded int64
		err := o.writeRow(ctx, `SELECT p.id FROM jobs p JOIN jobs j ON j.unique_key = p.unique_key
			WHERE j.id = ? AND j.unique_key <> '' AND p.id <> j.id AND p.state IN `+pendingStates, id).Scan(&superseded)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			superseded = 0
		case err != nil:
			return err
		}
		if superseded != 0 && !dead {
			return o.leased(ctx, id, owner, `state = CASE WHEN attempt >= max_attempts THEN 'dead' ELSE 'cancelled' END,
				last_error = ?, lease_until = 0, finished_at = ?, updated_at = ?`,
				errMsg+" (superseded by pending job "+strconv.FormatInt(superseded, 10)+")", t, t)
		}
		return o.leased(ctx, id, owner, `state = CASE WHEN ? OR attempt >= max_attempts THEN 'dead' ELSE 'retryable' END,
			finished_at = CASE WHEN ? OR attempt >= max_attempts THEN ? ELSE CAST(0 AS BIGINT) END,
			run_at = ?, last_error = ?, lease_until = 0, updated_at = ?`,
			dead, dead, t, micros(orNow(retryAt)), errMsg, t)
	})
	if err != nil {
		return fmt.Errorf("fail job %d: %w", id, err)
	}
	return nil
}

// SetJobProgress stores a running job's progress document; ErrLeaseLost when owner no
// longer holds it.
func (o ops) SetJobProgress(ctx context.Context, id int64, owner string, progress json.RawMessage) error {
	err := o.leased(ctx, id, owner, `progress = ?, updated_at = ?`, string(progress), micros(now()))
	if err != nil {
		return fmt.Errorf("set progress of job %d: %w", id, err)
	}
	return nil
}

// RetryJob makes a dead, completed or cancelled job available now, keeping its attempt
// count and raising MaxAttempts when needed so that it gets one more attempt. ErrConflict
// when the job is not finished or a pending job holds its unique key; ErrNotFound when it
// does not exist.
func (o ops) RetryJob(ctx context.Context, id int64) error {
	t := micros(now())
	err := o.atomic(ctx, func(o ops) error {
		j, err := scanJob(o.writeRow(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		switch j.State {
		case store.JobDead, store.JobCompleted, store.JobCancelled:
		default:
			return fmt.Errorf("job is %s: %w", j.State, store.ErrConflict)
		}
		_, err = o.exec(ctx, `UPDATE jobs SET state = 'available', run_at = ?, lease_until = 0,
			finished_at = 0, updated_at = ?,
			max_attempts = CASE WHEN attempt >= max_attempts THEN attempt + 1 ELSE max_attempts END
			WHERE id = ?`, t, t, id)
		if isUniqueViolation(err) {
			return fmt.Errorf("a pending job has unique key %q: %w", j.UniqueKey, store.ErrConflict)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("retry job %d: %w", id, err)
	}
	return nil
}

// JobStats counts jobs by state; every state is present, with 0 when none.
func (o ops) JobStats(ctx context.Context) (store.JobStats, error) {
	stats := store.JobStats{
		store.JobAvailable: 0, store.JobRunning: 0, store.JobCompleted: 0,
		store.JobRetryable: 0, store.JobDead: 0, store.JobCancelled: 0,
	}
	rows, err := o.query(ctx, `SELECT state, COUNT(*) FROM jobs GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("job stats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			state string
			n     int64
		)
		if err := rows.Scan(&state, &n); err != nil {
			return nil, fmt.Errorf("job stats: %w", err)
		}
		stats[state] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("job stats: %w", err)
	}
	return stats, nil
}
