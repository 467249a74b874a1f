package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/store"
)

// prefixSubscription is the id prefix of subscriptions.
const prefixSubscription = "sub"

const subscriptionCols = `id, name, url, secret_enc, event_types, integration_ids, repository_ids, disabled,
	cursor_seq, created_at, updated_at`

const attemptCols = `id, subscription_id, event_seq, event_id, event_type, lane, status, tries, next_at,
	lease_owner, lease_until, response_status, error, created_at, updated_at, delivered_at`

func scanSubscription(s scanner) (store.Subscription, error) {
	var (
		sub                store.Subscription
		types, ints, repos string
		created, updated   int64
	)
	err := s.Scan(&sub.ID, &sub.Name, &sub.URL, &sub.SecretEnc, &types, &ints, &repos, &sub.Disabled,
		&sub.Cursor, &created, &updated)
	if err != nil {
		return sub, err
	}
	for _, f := range []struct {
		col string
		v   *[]string
	}{{types, &sub.EventTypes}, {ints, &sub.IntegrationIDs}, {repos, &sub.RepositoryIDs}} {
		if err := fromJSON(f.col, f.v); err != nil {
			return sub, fmt.Errorf("decode filters of subscription %s: %w", sub.ID, err)
		}
	}
	sub.CreatedAt, sub.UpdatedAt = fromMicros(created), fromMicros(updated)
	return sub, nil
}

func scanAttempt(s scanner) (store.SubscriptionAttempt, error) {
	var (
		a                                        store.SubscriptionAttempt
		next, until, created, updated, delivered int64
	)
	err := s.Scan(&a.N, &a.SubscriptionID, &a.EventSeq, &a.EventID, &a.EventType, &a.Lane, &a.Status, &a.Tries,
		&next, &a.LeaseOwner, &until, &a.ResponseStatus, &a.Error, &created, &updated, &delivered)
	if err != nil {
		return a, err
	}
	a.NextAt, a.LeaseUntil = fromMicros(next), fromMicros(until)
	a.CreatedAt, a.UpdatedAt, a.DeliveredAt = fromMicros(created), fromMicros(updated), fromMicros(delivered)
	return a, nil
}

func collectAttempts(rows *sql.Rows) ([]store.SubscriptionAttempt, error) {
	defer rows.Close()
	var out []store.SubscriptionAttempt
	for rows.Next() {
		a, err := scanAttempt(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// subscriptionFilters encodes the filter lists of s for their text columns.
func subscriptionFilters(s *store.Subscription) (types, ints, repos string, err error) {
	if types, err = toJSON(s.EventTypes); err != nil {
		return
	}
	if ints, err = toJSON(s.IntegrationIDs); err != nil {
		return
	}
	repos, err = toJSON(s.RepositoryIDs)
	return
}

// CreateSubscription inserts s with a new id; its cursor starts at the newest event in the log.
func (o ops) CreateSubscription(ctx context.Context, s *store.Subscription) error {
	c := *s
	if c.ID == "" {
		c.ID = newID(prefixSubscription)
	}
	c.CreatedAt = now()
	c.UpdatedAt = c.CreatedAt
	types, ints, repos, err := subscriptionFilters(&c)
	if err != nil {
		return fmt.Errorf("create subscription: %w", err)
	}
	err = o.atomic(ctx, func(o ops) error {
		if err := o.queryRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM events`).Scan(&c.Cursor); err != nil {
			return fmt.Errorf("read the event log's end: %w", err)
		}
		_, err := o.exec(ctx, `INSERT INTO subscriptions (`+subscriptionCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.Name, c.URL, c.SecretEnc, types, ints, repos, c.Disabled, c.Cursor, micros(c.CreatedAt), micros(c.UpdatedAt))
		if isUniqueViolation(err) {
			return store.ErrConflict
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("create subscription %s: %w", c.ID, err)
	}
	*s = c
	return nil
}

// GetSubscription returns the subscription with id, or ErrNotFound.
func (o ops) GetSubscription(ctx context.Context, id string) (store.Subscription, error) {
	s, err := scanSubscription(o.queryRow(ctx, `SELECT `+subscriptionCols+` FROM subscriptions WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return s, fmt.Errorf("get subscription %s: %w", id, err)
	}
	return s, nil
}

// ListSubscriptions returns every subscription, oldest first.
func (o ops) ListSubscriptions(ctx context.Context) ([]store.Subscription, error) {
	rows, err := o.query(ctx, `SELECT `+subscriptionCols+` FROM subscriptions ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	defer rows.Close()
	var out []store.Subscription
	for rows.Next() {
		s, err := scanSubscription(rows)
		if err != nil {
			return nil, fmt.Errorf("list subscriptions: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	return out, nil
}

// UpdateSubscription writes s's name, URL, secret, filters and disabled flag.
func (o ops) UpdateSubscription(ctx context.Context, s *store.Subscription) error {
	types, ints, repos, err := subscriptionFilters(s)
	if err != nil {
		return fmt.Errorf("update subscription %s: %w", s.ID, err)
	}
	t := now()
	err = o.execOne(ctx, `UPDATE subscriptions SET name = ?, url = ?, secret_enc = ?, event_types = ?,
		integration_ids = ?, repository_ids = ?, disabled = ?, updated_at = ? WHERE id = ?`,
		s.Name, s.URL, s.SecretEnc, types, ints, repos, s.Disabled, micros(t), s.ID)
	if err != nil {
		return fmt.Errorf("update subscription %s: %w", s.ID, err)
	}
	s.UpdatedAt = t
	return nil
}

// DeleteSubscription deletes a subscription and its attempts.
func (o ops) DeleteSubscription(ctx context.Context, id string) error {
	err := o.atomic(ctx, func(o ops) error {
		// Explicit, not only ON DELETE CASCADE: SQLite enforces it only with foreign_keys on.
		if _, err := o.exec(ctx, `DELETE FROM subscription_attempts WHERE subscription_id = ?`, id); err != nil {
			return err
		}
		return o.execOne(ctx, `DELETE FROM subscriptions WHERE id = ?`, id)
	})
	if err != nil {
		return fmt.Errorf("delete subscription %s: %w", id, err)
	}
	return nil
}

// EnqueueSubscriptionAttempts queues attempts, skipping events already queued for the
// subscription, and moves its cursor forward.
func (o ops) EnqueueSubscriptionAttempts(ctx context.Context, subscriptionID string, atts []store.NewSubscriptionAttempt, cursor int64) (int, error) {
	n := 0
	err := o.atomic(ctx, func(o ops) error {
		n = 0
		t := micros(now())
		for _, a := range atts {
			res, err := o.exec(ctx, `INSERT INTO subscription_attempts (subscription_id, event_seq, event_id, event_type,
				lane, status, next_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?)
				ON CONFLICT (subscription_id, event_id) DO NOTHING`,
				subscriptionID, a.EventSeq, a.EventID, a.EventType, a.Lane, t, t, t)
			if isForeignKeyViolation(err) {
				return store.ErrNotFound
			}
			if err != nil {
				return fmt.Errorf("event %s: %w", a.EventID, err)
			}
			k, err := affected(res)
			if err != nil {
				return err
			}
			n += int(k)
		}
		res, err := o.exec(ctx, `UPDATE subscriptions SET cursor_seq = ? WHERE id = ? AND cursor_seq < ?`, cursor, subscriptionID, cursor)
		if err != nil {
			return fmt.Errorf("move cursor: %w", err)
		}
		if k, err := affected(res); err != nil {
			return err
		} else if k == 0 {
			// Either the cursor is there already (another replica queued the same events) or
			// the subscription is gone.
			var one int
			err := o.queryRow(ctx, `SELECT 1 FROM subscriptions WHERE id = ?`, subscriptionID).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return store.ErrNotFound
			}
			return err
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("queue attempts of subscription %s: %w", subscriptionID, err)
	}
	return n, nil
}

// ListSubscriptionAttempts returns a page of a subscription's attempts, newest first.
func (o ops) ListSubscriptionAttempts(ctx context.Context, f store.SubscriptionAttemptFilter) ([]store.SubscriptionAttempt, string, error) {
	where, args := []string{"subscription_id = ?"}, []any{f.SubscriptionID}
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, f.Status)
	}
	if f.After != "" {
		c, err := decodeCursor(f.After, 1)
		if err != nil {
			return nil, "", fmt.Errorf("list attempts: %w", err)
		}
		id, err := strconv.ParseInt(c[0], 10, 64)
		if err != nil {
			return nil, "", fmt.Errorf("list attempts: %w", ErrBadCursor)
		}
		where, args = append(where, "id < ?"), append(args, id)
	}
	limit := pageLimit(f.Limit)
	rows, err := o.query(ctx, `SELECT `+attemptCols+` FROM subscription_attempts WHERE `+strings.Join(where, " AND ")+
		` ORDER BY id DESC LIMIT `+strconv.Itoa(limit+1), args...)
	if err != nil {
		return nil, "", fmt.Errorf("list attempts of subscription %s: %w", f.SubscriptionID, err)
	}
	items, err := collectAttempts(rows)
	if err != nil {
		return nil, "", fmt.Errorf("list attempts of subscription %s: %w", f.SubscriptionID, err)
	}
	next := ""
	if len(items) > limit {
		items = items[:limit]
		next = encodeCursor(strconv.FormatInt(items[limit-1].N, 10))
	}
	return items, next, nil
}

// GetSubscriptionAttempt returns attempt n of a subscription, or ErrNotFound.
func (o ops) GetSubscriptionAttempt(ctx context.Context, subscriptionID string, n int64) (store.SubscriptionAttempt, error) {
	a, err := scanAttempt(o.queryRow(ctx, `SELECT `+attemptCols+` FROM subscription_attempts WHERE id = ? AND subscription_id = ?`, n, subscriptionID))
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return a, fmt.Errorf("get attempt %d of subscription %s: %w", n, subscriptionID, err)
	}
	return a, nil
}

// RedeliverSubscriptionAttempt makes an attempt pending and due now with no tries counted.
func (o ops) RedeliverSubscriptionAttempt(ctx context.Context, subscriptionID string, n int64) (store.SubscriptionAttempt, error) {
	t := micros(now())
	a, err := scanAttempt(o.writeRow(ctx, `UPDATE subscription_attempts SET status = 'pending', tries = 0, next_at = ?,
		updated_at = ?, delivered_at = 0 WHERE id = ? AND subscription_id = ? RETURNING `+attemptCols, t, t, n, subscriptionID))
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return a, fmt.Errorf("redeliver attempt %d of subscription %s: %w", n, subscriptionID, err)
	}
	return a, nil
}

// ClaimSubscriptionAttempts leases due attempts that are first in their lane.
func (db *DB) ClaimSubscriptionAttempts(ctx context.Context, owner string, n int, lease time.Duration) ([]store.SubscriptionAttempt, error) {
	if n <= 0 {
		return nil, nil
	}
	if owner == "" {
		return nil, errors.New("claim subscription attempts: owner is empty")
	}
	t := now()
	nowUS, until := micros(t), micros(t.Add(lease))
	// Due, free, of an enabled subscription, and no older pending attempt in its lane: one
	// attempt per lane is ever in flight, and a lane's attempts go out in event order.
	due := `a.status = 'pending' AND a.next_at <= ? AND a.lease_until <= ?
		AND EXISTS (SELECT 1 FROM subscriptions s WHERE s.id = a.subscription_id AND s.disabled = ?)
		AND NOT EXISTS (SELECT 1 FROM subscription_attempts b WHERE b.subscription_id = a.subscription_id
			AND b.lane = a.lane AND b.status = 'pending' AND b.event_seq < a.event_seq)`
	dueArgs := []any{nowUS, nowUS, false}
	// Most polls find nothing: a read settles that without taking the writer.
	var probe int64
	err := db.queryRow(ctx, `SELECT a.id FROM subscription_attempts a WHERE `+due+` LIMIT 1`, dueArgs...).Scan(&probe)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claim subscription attempts for %s: %w", owner, err)
	}
	var claimed []store.SubscriptionAttempt
	err = db.inTx(store.WithRelaxedDurability(ctx), func(o ops) error {
		sel := `SELECT a.id FROM subscription_attempts a WHERE ` + due + ` ORDER BY a.next_at, a.id LIMIT ?`
		set := `SET tries = tries + 1, lease_owner = ?, lease_until = ?, updated_at = ?`
		var q string
		args := append(append([]any{}, dueArgs...), n)
		if db.dialect.postgres {
			q = `WITH due AS MATERIALIZED (` + sel + ` FOR UPDATE OF a SKIP LOCKED)
				UPDATE subscription_attempts ` + strings.Replace(set, "tries = tries", "tries = subscription_attempts.tries", 1) + `
				FROM due WHERE subscription_attempts.id = due.id AND subscription_attempts.lease_until <= ?
				RETURNING ` + prefixCols("subscription_attempts.", attemptCols)
			args = append(args, owner, until, nowUS, nowUS)
		} else {
			q = `UPDATE subscription_attempts ` + set + ` WHERE id IN (` + sel + `) RETURNING ` + attemptCols
			args = append([]any{owner, until, nowUS}, args...)
		}
		rows, err := o.writeQuery(ctx, q, args...)
		if err != nil {
			return err
		}
		claimed, err = collectAttempts(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim subscription attempts for %s: %w", owner, err)
	}
	slices.SortFunc(claimed, func(a, b store.SubscriptionAttempt) int {
		if c := a.NextAt.Compare(b.NextAt); c != 0 {
			return c
		}
		return int(a.N - b.N)
	})
	return claimed, nil
}

// FinishSubscriptionAttempt records a try's outcome while owner holds the attempt.
func (db *DB) FinishSubscriptionAttempt(ctx context.Context, n int64, owner string, out store.AttemptOutcome) error {
	t := now()
	status, next, delivered := store.AttemptPending, micros(out.NextAt), int64(0)
	switch {
	case out.Delivered:
		status, next, delivered = store.AttemptDelivered, micros(t), micros(t)
	case out.Dead:
		status, next = store.AttemptDead, micros(t)
	}
	// A delivered attempt's outcome is a fact worth keeping through a crash (a rerun would
	// send it twice); a failed try only costs a retry, so it commits relaxed.
	if !out.Delivered {
		ctx = store.WithRelaxedDurability(ctx)
	}
	err := db.relaxable(ctx, func(o ops) error {
		res, err := o.exec(ctx, `UPDATE subscription_attempts SET status = ?, next_at = ?, lease_owner = '', lease_until = 0,
			response_status = ?, error = ?, updated_at = ?, delivered_at = ?
			WHERE id = ? AND lease_owner = ? AND status = 'pending'`,
			status, next, out.ResponseStatus, out.Error, micros(t), delivered, n, owner)
		if err != nil {
			return err
		}
		k, err := affected(res)
		if err != nil {
			return err
		}
		if k == 1 {
			return nil
		}
		var one int
		err = o.queryRow(ctx, `SELECT 1 FROM subscription_attempts WHERE id = ?`, n).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		return store.ErrLeaseLost
	})
	if err != nil {
		return fmt.Errorf("finish subscription attempt %d: %w", n, err)
	}
	return nil
}

// PruneSubscriptionAttempts deletes finished attempts last changed before cutoff, in batches.
func (db *DB) PruneSubscriptionAttempts(ctx context.Context, cutoff time.Time) (int64, error) {
	var total int64
	for {
		var n int64
		err := db.inTx(ctx, func(o ops) error {
			var err error
			n, err = o.deleteAffected(ctx, `DELETE FROM subscription_attempts WHERE id IN (SELECT id FROM subscription_attempts
				WHERE status <> 'pending' AND updated_at < ? LIMIT ?)`, micros(cutoff), pruneBatch)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("prune subscription attempts: %w", err)
		}
		total += n
		if n < pruneBatch {
			return total, nil
		}
	}
}

// rewriteSubscriptionSecrets is RewriteSecrets' part for subscriptions' signing secrets; it
// runs inside that transaction.
func (o ops) rewriteSubscriptionSecrets(ctx context.Context, rewrite func(what string, v *[]byte) error) error {
	type secret struct {
		id  string
		enc []byte
	}
	var subs []secret
	rows, err := o.w.QueryContext(ctx, `SELECT id, secret_enc FROM subscriptions ORDER BY id`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var s secret
		if err := rows.Scan(&s.id, &s.enc); err != nil {
			rows.Close()
			return err
		}
		subs = append(subs, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, s := range subs {
		if err := rewrite("secret of subscription "+s.id, &s.enc); err != nil {
			return err
		}
		if _, err := o.exec(ctx, `UPDATE subscriptions SET secret_enc = ? WHERE id = ?`, s.enc, s.id); err != nil {
			return fmt.Errorf("write secret of subscription %s: %w", s.id, err)
		}
	}
	return nil
}
