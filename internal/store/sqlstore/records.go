package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/forgeway/forgeway/internal/store"
)

// GetPullRequestHead returns the last source head recorded for a pull request, and whether
// there was one.
func (o ops) GetPullRequestHead(ctx context.Context, integrationID, repoHostID string, number int64) (string, bool, error) {
	var sha string
	err := o.queryRow(ctx, `SELECT sha FROM pull_request_heads
		WHERE integration_id = ? AND repo_host_id = ? AND number = ?`, integrationID, repoHostID, number).Scan(&sha)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("get head of pull request %s#%d: %w", repoHostID, number, err)
	}
	return sha, true, nil
}

// SetPullRequestHead records a pull request's source head; ErrNotFound when the
// integration does not exist.
func (o ops) SetPullRequestHead(ctx context.Context, h store.PullRequestHead) error {
	_, err := o.exec(ctx, `INSERT INTO pull_request_heads (integration_id, repo_host_id, number, sha)
		VALUES (?, ?, ?, ?) ON CONFLICT (integration_id, repo_host_id, number) DO UPDATE SET sha = excluded.sha`,
		h.IntegrationID, h.RepoHostID, h.Number, h.SHA)
	if isForeignKeyViolation(err) {
		err = fmt.Errorf("integration %s: %w", h.IntegrationID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("set head of pull request %s#%d: %w", h.RepoHostID, h.Number, err)
	}
	return nil
}

const credentialCols = `integration_id, user_id, login, token_enc, expires_at, updated_at`

func scanCredential(s scanner) (store.UserCredential, error) {
	var (
		c           store.UserCredential
		expires, up int64
	)
	if err := s.Scan(&c.IntegrationID, &c.User, &c.Login, &c.TokenEnc, &expires, &up); err != nil {
		return c, err
	}
	c.Expires, c.UpdatedAt = fromMicros(expires), fromMicros(up)
	return c, nil
}

// PutUserCredential writes a person's credential on an integration, replacing the previous
// one, and sets UpdatedAt; ErrNotFound when the integration does not exist.
func (o ops) PutUserCredential(ctx context.Context, c *store.UserCredential) error {
	up := now()
	_, err := o.exec(ctx, `INSERT INTO user_credentials (`+credentialCols+`) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (integration_id, user_id) DO UPDATE SET login = excluded.login,
			token_enc = excluded.token_enc, expires_at = excluded.expires_at, updated_at = excluded.updated_at`,
		c.IntegrationID, c.User, c.Login, c.TokenEnc, micros(c.Expires), micros(up))
	if isForeignKeyViolation(err) {
		err = fmt.Errorf("integration %s: %w", c.IntegrationID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("put credential of user %s on %s: %w", c.User, c.IntegrationID, err)
	}
	c.UpdatedAt = up
	return nil
}

// GetUserCredential returns a person's credential on an integration, or ErrNotFound.
func (o ops) GetUserCredential(ctx context.Context, integrationID, user string) (store.UserCredential, error) {
	c, err := scanCredential(o.queryRow(ctx, `SELECT `+credentialCols+` FROM user_credentials
		WHERE integration_id = ? AND user_id = ?`, integrationID, user))
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return c, fmt.Errorf("get credential of user %s on %s: %w", user, integrationID, err)
	}
	return c, nil
}

// DeleteUserCredential removes a person's credential; ErrNotFound when there is none.
func (o ops) DeleteUserCredential(ctx context.Context, integrationID, user string) error {
	err := o.execOne(ctx, `DELETE FROM user_credentials WHERE integration_id = ? AND user_id = ?`, integrationID, user)
	if err != nil {
		return fmt.Errorf("delete credential of user %s on %s: %w", user, integrationID, err)
	}
	return nil
}

// DeleteUserCredentialsByLogin removes every credential of a host login on an integration
// and returns how many it removed.
func (o ops) DeleteUserCredentialsByLogin(ctx context.Context, integrationID, login string) (int, error) {
	res, err := o.exec(ctx, `DELETE FROM user_credentials WHERE integration_id = ? AND login = ?`, integrationID, login)
	var n int64
	if err == nil {
		n, err = affected(res)
	}
	if err != nil {
		return 0, fmt.Errorf("delete credentials of login %s on %s: %w", login, integrationID, err)
	}
	return int(n), nil
}

// ListUserCredentials returns an integration's credentials ordered by user.
func (o ops) ListUserCredentials(ctx context.Context, integrationID string) ([]store.UserCredential, error) {
	rows, err := o.query(ctx, `SELECT `+credentialCols+` FROM user_credentials
		WHERE integration_id = ? ORDER BY user_id`, integrationID)
	if err != nil {
		return nil, fmt.Errorf("list credentials on %s: %w", integrationID, err)
	}
	defer rows.Close()
	var out []store.UserCredential
	for rows.Next() {
		c, err := scanCredential(rows)
		if err != nil {
			return nil, fmt.Errorf("list credentials on %s: %w", integrationID, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list credentials on %s: %w", integrationID, err)
	}
	return out, nil
}

const tokenCols = `id, name, hash, admin, project_id, created_at, last_used`

func scanToken(s scanner) (store.APIToken, error) {
	var (
		t             store.APIToken
		created, used int64
	)
	if err := s.Scan(&t.ID, &t.Name, &t.Hash, &t.Admin, &t.ProjectID, &created, &used); err != nil {
		return t, err
	}
	t.CreatedAt, t.LastUsed = fromMicros(created), fromMicros(used)
	return t, nil
}

// CreateAPIToken stores a hashed token, generating its ID when empty and setting CreatedAt;
// ErrConflict when the ID or the hash is taken.
func (o ops) CreateAPIToken(ctx context.Context, t *store.APIToken) error {
	c := *t
	if c.ID == "" {
		c.ID = newID(prefixToken)
	}
	c.CreatedAt = now()
	res, err := o.exec(ctx, `INSERT INTO api_tokens (`+tokenCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`, c.ID, c.Name, c.Hash, c.Admin, c.ProjectID, micros(c.CreatedAt), micros(c.LastUsed))
	var n int64
	if err == nil {
		if n, err = affected(res); err == nil && n == 0 {
			err = store.ErrConflict
		}
	}
	if err != nil {
		return fmt.Errorf("create api token %s: %w", c.ID, err)
	}
	*t = c
	return nil
}

// FindAPIToken returns the token with the given SHA-256 hash, or ErrNotFound.
func (o ops) FindAPIToken(ctx context.Context, hash []byte) (store.APIToken, error) {
	t, err := scanToken(o.queryRow(ctx, `SELECT `+tokenCols+` FROM api_tokens WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return t, fmt.Errorf("find api token: %w", err)
	}
	return t, nil
}

// ListAPITokens returns every token, oldest first.
func (o ops) ListAPITokens(ctx context.Context) ([]store.APIToken, error) {
	rows, err := o.query(ctx, `SELECT `+tokenCols+` FROM api_tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list api tokens: %w", err)
	}
	defer rows.Close()
	var out []store.APIToken
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list api tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list api tokens: %w", err)
	}
	return out, nil
}

// DeleteAPIToken removes a token; ErrNotFound when it does not exist.
func (o ops) DeleteAPIToken(ctx context.Context, id string) error {
	if err := o.execOne(ctx, `DELETE FROM api_tokens WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete api token %s: %w", id, err)
	}
	return nil
}

// TouchAPIToken records when a token was last used; ErrNotFound when it does not exist.
func (o ops) TouchAPIToken(ctx context.Context, id string, at time.Time) error {
	if err := o.execOne(ctx, `UPDATE api_tokens SET last_used = ? WHERE id = ?`, micros(at), id); err != nil {
		return fmt.Errorf("touch api token %s: %w", id, err)
	}
	return nil
}

// CreateProject stores a project, generating its ID when empty and setting CreatedAt;
// ErrConflict when the ID or the name is taken.
func (o ops) CreateProject(ctx context.Context, p *store.Project) error {
	c := *p
	if c.ID == "" {
		c.ID = newID(prefixProject)
	}
	c.CreatedAt = now()
	res, err := o.exec(ctx, `INSERT INTO projects (id, name, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
		c.ID, c.Name, micros(c.CreatedAt))
	var n int64
	if err == nil {
		if n, err = affected(res); err == nil && n == 0 {
			err = store.ErrConflict
		}
	}
	if err != nil {
		return fmt.Errorf("create project %q: %w", c.Name, err)
	}
	*p = c
	return nil
}

// ListProjects returns every project ordered by name.
func (o ops) ListProjects(ctx context.Context) ([]store.Project, error) {
	rows, err := o.query(ctx, `SELECT id, name, created_at FROM projects ORDER BY name, id`)
	if err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	defer rows.Close()
	var out []store.Project
	for rows.Next() {
		var (
			p       store.Project
			created int64
		)
		if err := rows.Scan(&p.ID, &p.Name, &created); err != nil {
			return nil, fmt.Errorf("list projects: %w", err)
		}
		p.CreatedAt = fromMicros(created)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	return out, nil
}

// GetCacheEntry returns a conditional-request cache entry, or ErrNotFound.
func (o ops) GetCacheEntry(ctx context.Context, integrationID, key string) (store.CacheEntry, error) {
	var (
		e      store.CacheEntry
		header string
		up     int64
	)
	err := o.queryRow(ctx, `SELECT integration_id, cache_key, etag, last_modified, body, header, updated_at
		FROM cache_entries WHERE integration_id = ? AND cache_key = ?`, integrationID, key).
		Scan(&e.IntegrationID, &e.Key, &e.ETag, &e.LastModified, &e.Body, &header, &up)
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err == nil {
		err = fromJSON(header, &e.Header)
	}
	if err != nil {
		return store.CacheEntry{}, fmt.Errorf("get cache entry of %s: %w", integrationID, err)
	}
	e.UpdatedAt = fromMicros(up)
	return e, nil
}

// PutCacheEntry writes a cache entry, replacing the previous one, and sets UpdatedAt;
// ErrNotFound when the integration does not exist.
func (o ops) PutCacheEntry(ctx context.Context, e *store.CacheEntry) error {
	up := now()
	header, err := toJSON(e.Header)
	if err != nil {
		return fmt.Errorf("put cache entry of %s: encode header: %w", e.IntegrationID, err)
	}
	_, err = o.exec(ctx, `INSERT INTO cache_entries (integration_id, cache_key, etag, last_modified,
			body, header, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (integration_id, cache_key) DO UPDATE SET etag = excluded.etag,
			last_modified = excluded.last_modified, body = excluded.body, header = excluded.header,
			updated_at = excluded.updated_at`,
		e.IntegrationID, e.Key, e.ETag, e.LastModified, e.Body, header, micros(up))
	if isForeignKeyViolation(err) {
		err = fmt.Errorf("integration %s: %w", e.IntegrationID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("put cache entry of %s: %w", e.IntegrationID, err)
	}
	e.UpdatedAt = up
	return nil
}

// GetKV returns a setting's value, or ErrNotFound.
func (o ops) GetKV(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := o.queryRow(ctx, `SELECT value FROM kv WHERE name = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get setting %s: %w", key, err)
	}
	return v, nil
}

// PutKV writes a setting, replacing its value.
func (o ops) PutKV(ctx context.Context, key string, value []byte) error {
	_, err := o.exec(ctx, `INSERT INTO kv (name, value, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
		key, value, micros(now()))
	if err != nil {
		return fmt.Errorf("put setting %s: %w", key, err)
	}
	return nil
}

// PutKVIfAbsent writes a setting only when the key is absent and reports whether it wrote.
// Of concurrent callers exactly one writes.
func (o ops) PutKVIfAbsent(ctx context.Context, key string, value []byte) (bool, error) {
	res, err := o.exec(ctx, `INSERT INTO kv (name, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING`,
		key, value, micros(now()))
	var n int64
	if err == nil {
		n, err = affected(res)
	}
	if err != nil {
		return false, fmt.Errorf("put setting %s: %w", key, err)
	}
	return n == 1, nil
}

// DeleteKV removes a setting; removing an absent key is not an error.
func (o ops) DeleteKV(ctx context.Context, key string) error {
	if _, err := o.exec(ctx, `DELETE FROM kv WHERE name = ?`, key); err != nil {
		return fmt.Errorf("delete setting %s: %w", key, err)
	}
	return nil
}
