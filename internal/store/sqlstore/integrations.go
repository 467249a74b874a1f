package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/forgeway/forgeway/internal/store"
)

const integrationCols = `id, kind, name, base_url, status, status_note, settings, secrets_enc,
	webhook_enc, webhook_prev, repo_filter, schedule, route_keys, project_id, created_at, updated_at`

type scanner interface {
	Scan(dest ...any) error
}

func scanIntegration(s scanner) (store.Integration, error) {
	var (
		in               store.Integration
		settings, routes string
		created, updated int64
	)
	err := s.Scan(&in.ID, &in.Kind, &in.Name, &in.BaseURL, &in.Status, &in.StatusNote, &settings,
		&in.SecretsEnc, &in.WebhookEnc, &in.WebhookPrev, &in.Filter, &in.Schedule, &routes,
		&in.ProjectID, &created, &updated)
	if err != nil {
		return in, err
	}
	if err := fromJSON(settings, &in.Settings); err != nil {
		return in, fmt.Errorf("decode settings of integration %s: %w", in.ID, err)
	}
	if err := fromJSON(routes, &in.RouteKeys); err != nil {
		return in, fmt.Errorf("decode route keys of integration %s: %w", in.ID, err)
	}
	in.CreatedAt, in.UpdatedAt = fromMicros(created), fromMicros(updated)
	return in, nil
}

func (o ops) listIntegrations(ctx context.Context, q string, args ...any) ([]store.Integration, error) {
	rows, err := o.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Integration
	for rows.Next() {
		in, err := scanIntegration(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

// CreateIntegration inserts in, generating its ID when empty and setting CreatedAt and
// UpdatedAt; ErrConflict when the ID is taken. Its RouteKeys are indexed for
// FindIntegrationsByRoute.
func (o ops) CreateIntegration(ctx context.Context, in *store.Integration) error {
	c := *in
	if c.ID == "" {
		c.ID = newID(prefixIntegration)
	}
	c.CreatedAt = now()
	c.UpdatedAt = c.CreatedAt
	settings, err := toJSON(c.Settings)
	if err != nil {
		return fmt.Errorf("create integration: encode settings: %w", err)
	}
	routes, err := toJSON(c.RouteKeys)
	if err != nil {
		return fmt.Errorf("create integration: encode route keys: %w", err)
	}
	err = o.atomic(ctx, func(o ops) error {
		res, err := o.exec(ctx, `INSERT INTO integrations (`+integrationCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			c.ID, c.Kind, c.Name, c.BaseURL, c.Status, c.StatusNote, settings, c.SecretsEnc,
			c.WebhookEnc, c.WebhookPrev, c.Filter, c.Schedule, routes, c.ProjectID,
			micros(c.CreatedAt), micros(c.UpdatedAt))
		if err != nil {
			return err
		}
		if n, err := affected(res); err != nil {
			return err
		} else if n == 0 {
			return store.ErrConflict
		}
		return o.writeRoutes(ctx, c.ID, c.Kind, c.RouteKeys)
	})
	if err != nil {
		return fmt.Errorf("create integration %s: %w", c.ID, err)
	}
	*in = c
	return nil
}

// writeRoutes replaces the route index of one integration.
func (o ops) writeRoutes(ctx context.Context, id, kind string, keys []string) error {
	if _, err := o.exec(ctx, `DELETE FROM integration_routes WHERE integration_id = ?`, id); err != nil {
		return fmt.Errorf("clear routes: %w", err)
	}
	keys = slices.Clone(keys)
	slices.Sort(keys)
	for _, k := range slices.Compact(keys) {
		if k == "" {
			continue
		}
		if _, err := o.exec(ctx, `INSERT INTO integration_routes (kind, route_key, integration_id)
			VALUES (?, ?, ?)`, kind, k, id); err != nil {
			return fmt.Errorf("write route: %w", err)
		}
	}
	return nil
}

// GetIntegration returns the integration with id, or ErrNotFound.
func (o ops) GetIntegration(ctx context.Context, id string) (store.Integration, error) {
	in, err := scanIntegration(o.queryRow(ctx, `SELECT `+integrationCols+` FROM integrations WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return in, fmt.Errorf("get integration %s: %w", id, err)
	}
	return in, nil
}

// ListIntegrations returns every integration, oldest first.
func (o ops) ListIntegrations(ctx context.Context) ([]store.Integration, error) {
	out, err := o.listIntegrations(ctx, `SELECT `+integrationCols+` FROM integrations ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list integrations: %w", err)
	}
	return out, nil
}

// FindIntegrationsByRoute returns the integrations of kind whose RouteKeys contain routeKey,
// oldest first; none is not an error.
func (o ops) FindIntegrationsByRoute(ctx context.Context, kind, routeKey string) ([]store.Integration, error) {
	out, err := o.listIntegrations(ctx, `SELECT `+prefixCols("i.", integrationCols)+`
		FROM integrations i JOIN integration_routes r ON r.integration_id = i.id
		WHERE r.kind = ? AND r.route_key = ? AND i.kind = ?
		ORDER BY i.created_at, i.id`, kind, routeKey, kind)
	if err != nil {
		return nil, fmt.Errorf("find %s integrations by route: %w", kind, err)
	}
	return out, nil
}

// UpdateIntegration writes every field of in but ID and CreatedAt, sets UpdatedAt and
// re-indexes its RouteKeys; ErrNotFound when it does not exist.
func (o ops) UpdateIntegration(ctx context.Context, in *store.Integration) error {
	updated := now()
	settings, err := toJSON(in.Settings)
	if err != nil {
		return fmt.Errorf("update integration %s: encode settings: %w", in.ID, err)
	}
	routes, err := toJSON(in.RouteKeys)
	if err != nil {
		return fmt.Errorf("update integration %s: encode route keys: %w", in.ID, err)
	}
	err = o.atomic(ctx, func(o ops) error {
		err := o.execOne(ctx, `UPDATE integrations SET kind = ?, name = ?, base_url = ?, status = ?,
			status_note = ?, settings = ?, secrets_enc = ?, webhook_enc = ?, webhook_prev = ?,
			repo_filter = ?, schedule = ?, route_keys = ?, project_id = ?, updated_at = ?
			WHERE id = ?`,
			in.Kind, in.Name, in.BaseURL, in.Status, in.StatusNote, settings, in.SecretsEnc,
			in.WebhookEnc, in.WebhookPrev, in.Filter, in.Schedule, routes, in.ProjectID,
			micros(updated), in.ID)
		if err != nil {
			return err
		}
		return o.writeRoutes(ctx, in.ID, in.Kind, in.RouteKeys)
	})
	if err != nil {
		return fmt.Errorf("update integration %s: %w", in.ID, err)
	}
	in.UpdatedAt = updated
	return nil
}

// DeleteIntegration removes an integration with its installations, repositories, user
// credentials, cache entries, pull request heads and routes; deliveries, events and jobs
// stay as history. ErrNotFound when it does not exist.
func (o ops) DeleteIntegration(ctx context.Context, id string) error {
	if err := o.execOne(ctx, `DELETE FROM integrations WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete integration %s: %w", id, err)
	}
	return nil
}

// UpsertInstallation writes an installation keyed by (IntegrationID, ID) and sets UpdatedAt;
// ErrNotFound when the integration does not exist.
func (o ops) UpsertInstallation(ctx context.Context, in *store.Installation) error {
	updated := now()
	_, err := o.exec(ctx, `INSERT INTO installations (integration_id, id, account, account_type,
			repository_selection, status, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (integration_id, id) DO UPDATE SET account = excluded.account,
			account_type = excluded.account_type, repository_selection = excluded.repository_selection,
			status = excluded.status, updated_at = excluded.updated_at`,
		in.IntegrationID, in.ID, in.Account, in.AccountType, in.RepositorySelection, in.Status, micros(updated))
	if isForeignKeyViolation(err) {
		err = fmt.Errorf("integration %s: %w", in.IntegrationID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("upsert installation %s: %w", in.ID, err)
	}
	in.UpdatedAt = updated
	return nil
}

// ListInstallations returns an integration's installations ordered by ID.
func (o ops) ListInstallations(ctx context.Context, integrationID string) ([]store.Installation, error) {
	rows, err := o.query(ctx, `SELECT integration_id, id, account, account_type, repository_selection,
		status, updated_at FROM installations WHERE integration_id = ? ORDER BY id`, integrationID)
	if err != nil {
		return nil, fmt.Errorf("list installations of %s: %w", integrationID, err)
	}
	defer rows.Close()
	var out []store.Installation
	for rows.Next() {
		var (
			in store.Installation
			up int64
		)
		if err := rows.Scan(&in.IntegrationID, &in.ID, &in.Account, &in.AccountType,
			&in.RepositorySelection, &in.Status, &up); err != nil {
			return nil, fmt.Errorf("list installations of %s: %w", integrationID, err)
		}
		in.UpdatedAt = fromMicros(up)
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list installations of %s: %w", integrationID, err)
	}
	return out, nil
}

// DeleteInstallation removes one installation; ErrNotFound when it does not exist.
func (o ops) DeleteInstallation(ctx context.Context, integrationID, id string) error {
	if err := o.execOne(ctx, `DELETE FROM installations WHERE integration_id = ? AND id = ?`, integrationID, id); err != nil {
		return fmt.Errorf("delete installation %s of %s: %w", id, integrationID, err)
	}
	return nil
}
