package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/store"
)

const repositoryCols = `id, integration_id, host_id, full_name, name, repo_owner, group_path,
	default_branch, visibility, is_private, is_archived, is_fork, clone_url, web_url, permission,
	description, installation, extra, matched, attached, hooks, hook_status, hook_error,
	mirror_status, mirror_error, mirror_head, mirror_synced_at, mirror_sync_count, seen_at,
	created_at, updated_at`

func scanRepository(s scanner) (store.Repository, error) {
	var (
		r                         store.Repository
		extra, hooks              string
		synced, seen, created, up int64
	)
	err := s.Scan(&r.ID, &r.IntegrationID, &r.HostID, &r.FullName, &r.Name, &r.Owner, &r.Group,
		&r.DefaultBranch, &r.Visibility, &r.Private, &r.Archived, &r.Fork, &r.CloneURL, &r.WebURL,
		&r.Permission, &r.Description, &r.Installation, &extra, &r.Matched, &r.Attached, &hooks,
		&r.HookStatus, &r.HookError, &r.Mirror.Status, &r.Mirror.Error, &r.Mirror.Head, &synced,
		&r.Mirror.SyncCount, &seen, &created, &up)
	if err != nil {
		return r, err
	}
	if err := fromJSON(extra, &r.Extra); err != nil {
		return r, fmt.Errorf("decode extra of repository %s: %w", r.ID, err)
	}
	r.Hooks = rawJSON(hooks)
	r.Mirror.SyncedAt = fromMicros(synced)
	r.SeenAt, r.CreatedAt, r.UpdatedAt = fromMicros(seen), fromMicros(created), fromMicros(up)
	return r, nil
}

// UpsertRepository writes a catalog entry keyed by (IntegrationID, HostID). A new entry is
// written whole (its ID generated when empty); an existing one keeps its ID, CreatedAt,
// attachment, hooks and mirror state, which are copied back into r with the ID. SeenAt
// defaults to now. ErrNotFound when the integration does not exist.
func (o ops) UpsertRepository(ctx context.Context, r *store.Repository) error {
	c := *r
	if c.ID == "" {
		c.ID = newID(prefixRepository)
	}
	t := now()
	c.SeenAt = orNow(c.SeenAt)
	c.CreatedAt, c.UpdatedAt = t, t
	extra, err := toJSON(c.Extra)
	if err != nil {
		return fmt.Errorf("upsert repository %s: encode extra: %w", c.FullName, err)
	}
	row := o.writeRow(ctx, `INSERT INTO repositories (`+repositoryCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (integration_id, host_id) DO UPDATE SET full_name = excluded.full_name,
			name = excluded.name, repo_owner = excluded.repo_owner, group_path = excluded.group_path,
			default_branch = excluded.default_branch, visibility = excluded.visibility,
			is_private = excluded.is_private, is_archived = excluded.is_archived,
			is_fork = excluded.is_fork, clone_url = excluded.clone_url, web_url = excluded.web_url,
			permission = excluded.permission, description = excluded.description,
			installation = excluded.installation, extra = excluded.extra, matched = excluded.matched,
			seen_at = excluded.seen_at, updated_at = excluded.updated_at
		RETURNING `+repositoryCols,
		c.ID, c.IntegrationID, c.HostID, c.FullName, c.Name, c.Owner, c.Group, c.DefaultBranch,
		c.Visibility, c.Private, c.Archived, c.Fork, c.CloneURL, c.WebURL, c.Permission,
		c.Description, c.Installation, extra, c.Matched, c.Attached, string(c.Hooks), c.HookStatus,
		c.HookError, c.Mirror.Status, c.Mirror.Error, c.Mirror.Head, micros(c.Mirror.SyncedAt),
		c.Mirror.SyncCount, micros(c.SeenAt), micros(c.CreatedAt), micros(c.UpdatedAt))
	got, err := scanRepository(row)
	if isForeignKeyViolation(err) {
		err = fmt.Errorf("integration %s: %w", c.IntegrationID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("upsert repository %s: %w", c.FullName, err)
	}
	*r = got
	return nil
}

// UpsertRepositories writes many entries in one statement: discovery writes a page at a
// time, and one statement is parsed once where a statement per row is parsed per row.
func (o ops) UpsertRepositories(ctx context.Context, rs []store.Repository) error {
	// Keep each statement under SQLite's and PostgreSQL's limits on bound parameters.
	const perStatement = 500
	for len(rs) > 0 {
		n := min(len(rs), perStatement)
		if err := o.upsertRepositories(ctx, rs[:n]); err != nil {
			return err
		}
		rs = rs[n:]
	}
	return nil
}

func (o ops) upsertRepositories(ctx context.Context, rs []store.Repository) error {
	t := now()
	var b strings.Builder
	b.WriteString(`INSERT INTO repositories (` + repositoryCols + `) VALUES `)
	args := make([]any, 0, len(rs)*31)
	seen := make(map[string]bool, len(rs))
	for i, r := range rs {
		if seen[r.IntegrationID+"\x00"+r.HostID] {
			return fmt.Errorf("upsert repositories: %s appears twice", r.FullName)
		}
		seen[r.IntegrationID+"\x00"+r.HostID] = true
		if r.ID == "" {
			r.ID = newID(prefixRepository)
		}
		r.SeenAt = orNow(r.SeenAt)
		extra, err := toJSON(r.Extra)
		if err != nil {
			return fmt.Errorf("upsert repository %s: encode extra: %w", r.FullName, err)
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
		args = append(args, r.ID, r.IntegrationID, r.HostID, r.FullName, r.Name, r.Owner, r.Group, r.DefaultBranch,
			r.Visibility, r.Private, r.Archived, r.Fork, r.CloneURL, r.WebURL, r.Permission,
			r.Description, r.Installation, extra, r.Matched, r.Attached, string(r.Hooks), r.HookStatus,
			r.HookError, r.Mirror.Status, r.Mirror.Error, r.Mirror.Head, micros(r.Mirror.SyncedAt),
			r.Mirror.SyncCount, micros(r.SeenAt), micros(t), micros(t))
	}
	b.WriteString(` ON CONFLICT (integration_id, host_id) DO UPDATE SET full_name = excluded.full_name,
			name = excluded.name, repo_owner = excluded.repo_owner, group_path = excluded.group_path,
			default_branch = excluded.default_branch, visibility = excluded.visibility,
			is_private = excluded.is_private, is_archived = excluded.is_archived,
			is_fork = excluded.is_fork, clone_url = excluded.clone_url, web_url = excluded.web_url,
			permission = excluded.permission, description = excluded.description,
			installation = excluded.installation, extra = excluded.extra, matched = excluded.matched,
			seen_at = excluded.seen_at, updated_at = excluded.updated_at`)
	_, err := o.exec(ctx, b.String(), args...)
	if isForeignKeyViolation(err) {
		err = fmt.Errorf("integration %s: %w", rs[0].IntegrationID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("upsert %d repositories: %w", len(rs), err)
	}
	return nil
}

// GetRepository returns the entry with Forgeway's id, or ErrNotFound.
func (o ops) GetRepository(ctx context.Context, id string) (store.Repository, error) {
	r, err := scanRepository(o.queryRow(ctx, `SELECT `+repositoryCols+` FROM repositories WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("get repository %s: %w", id, err)
	}
	return r, nil
}

// GetRepositoryByHostID returns the entry with the host's id in an integration, or ErrNotFound.
func (o ops) GetRepositoryByHostID(ctx context.Context, integrationID, hostID string) (store.Repository, error) {
	r, err := scanRepository(o.queryRow(ctx, `SELECT `+repositoryCols+` FROM repositories
		WHERE integration_id = ? AND host_id = ?`, integrationID, hostID))
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("get repository %s of %s: %w", hostID, integrationID, err)
	}
	return r, nil
}

// ListRepositories returns a page of entries in full_name order (then id) and the cursor of
// the next page, empty on the last. Query matches a substring of full_name, ignoring ASCII
// case. A cursor not made by this method gives ErrBadCursor.
func (o ops) ListRepositories(ctx context.Context, f store.RepositoryFilter) ([]store.Repository, string, error) {
	var (
		where []string
		args  []any
	)
	if f.IntegrationID != "" {
		where, args = append(where, "integration_id = ?"), append(args, f.IntegrationID)
	}
	if f.Query != "" {
		where = append(where, `lower(full_name) LIKE ? ESCAPE '\'`)
		args = append(args, likeContains(strings.ToLower(f.Query)))
	}
	if f.Group != "" {
		where, args = append(where, "group_path = ?"), append(args, f.Group)
	}
	if f.Attached != nil {
		where, args = append(where, "attached = ?"), append(args, *f.Attached)
	}
	if f.Matched != nil {
		where, args = append(where, "matched = ?"), append(args, *f.Matched)
	}
	if f.After != "" {
		c, err := decodeCursor(f.After, 2)
		if err != nil {
			return nil, "", fmt.Errorf("list repositories: %w", err)
		}
		where = append(where, "(full_name > ? OR (full_name = ? AND id > ?))")
		args = append(args, c[0], c[0], c[1])
	}
	limit := pageLimit(f.Limit)
	q := `SELECT ` + repositoryCols + ` FROM repositories`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY full_name, id LIMIT ` + strconv.Itoa(limit+1)
	items, err := o.listRepositories(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list repositories: %w", err)
	}
	next := ""
	if len(items) > limit {
		items = items[:limit]
		last := items[limit-1]
		next = encodeCursor(last.FullName, last.ID)
	}
	return items, next, nil
}

func (o ops) listRepositories(ctx context.Context, q string, args ...any) ([]store.Repository, error) {
	rows, err := o.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Repository
	for rows.Next() {
		r, err := scanRepository(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// UpdateRepositoryState writes r's attachment, hooks and mirror fields and sets UpdatedAt;
// ErrNotFound when r.ID does not exist.
func (o ops) UpdateRepositoryState(ctx context.Context, r *store.Repository) error {
	up := now()
	err := o.execOne(ctx, `UPDATE repositories SET attached = ?, hooks = ?, hook_status = ?,
		hook_error = ?, mirror_status = ?, mirror_error = ?, mirror_head = ?, mirror_synced_at = ?,
		mirror_sync_count = ?, updated_at = ? WHERE id = ?`,
		r.Attached, string(r.Hooks), r.HookStatus, r.HookError, r.Mirror.Status, r.Mirror.Error,
		r.Mirror.Head, micros(r.Mirror.SyncedAt), r.Mirror.SyncCount, micros(up), r.ID)
	if err != nil {
		return fmt.Errorf("update state of repository %s: %w", r.ID, err)
	}
	r.UpdatedAt = up
	return nil
}

// DeleteRepository removes one entry; ErrNotFound when it does not exist.
func (o ops) DeleteRepository(ctx context.Context, id string) error {
	if err := o.execOne(ctx, `DELETE FROM repositories WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete repository %s: %w", id, err)
	}
	return nil
}

// DeleteRepositoriesNotSeen removes the unattached entries of an integration (of one
// installation when installation is set) last seen before cutoff, and returns how many, with
// the attached entries last seen before cutoff, which it leaves for the caller to detach.
func (o ops) DeleteRepositoriesNotSeen(ctx context.Context, integrationID, installation string, cutoff time.Time) (int, []store.Repository, error) {
	cond := `integration_id = ? AND seen_at < ?`
	args := []any{integrationID, micros(cutoff)}
	if installation != "" {
		cond += ` AND installation = ?`
		args = append(args, installation)
	}
	var (
		deleted int64
		gone    []store.Repository
	)
	err := o.atomic(ctx, func(o ops) error {
		res, err := o.exec(ctx, `DELETE FROM repositories WHERE `+cond+` AND attached = FALSE`, args...)
		if err != nil {
			return err
		}
		if deleted, err = affected(res); err != nil {
			return err
		}
		gone, err = o.listRepositories(ctx, `SELECT `+repositoryCols+` FROM repositories WHERE `+
			cond+` AND attached = TRUE ORDER BY full_name, id`, args...)
		return err
	})
	if err != nil {
		return 0, nil, fmt.Errorf("delete repositories of %s not seen since %s: %w", integrationID, cutoff.UTC().Format(time.RFC3339), err)
	}
	return int(deleted), gone, nil
}
