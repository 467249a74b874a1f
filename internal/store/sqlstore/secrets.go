package sqlstore

import (
	"context"
	"fmt"
)

// RewriteSecrets calls fn with every stored encrypted value (integrations' secrets, webhook
// and previous webhook secrets, user credentials' tokens, subscriptions' signing secrets;
// empty values are skipped) and writes back what fn returns, all in one transaction: when fn
// fails nothing is rewritten.
// It returns how many values it rewrote. Errors never include the values.
func (o ops) RewriteSecrets(ctx context.Context, fn func(old []byte) ([]byte, error)) (int, error) {
	count := 0
	err := o.atomic(ctx, func(o ops) error {
		count = 0
		type integrationSecrets struct {
			id                string
			secrets, wh, prev []byte
		}
		var ins []integrationSecrets
		rows, err := o.w.QueryContext(ctx, `SELECT id, secrets_enc, webhook_enc, webhook_prev FROM integrations ORDER BY id`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var s integrationSecrets
			if err := rows.Scan(&s.id, &s.secrets, &s.wh, &s.prev); err != nil {
				rows.Close()
				return err
			}
			ins = append(ins, s)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		rewrite := func(what string, v *[]byte) error {
			if len(*v) == 0 {
				return nil
			}
			nv, err := fn(*v)
			if err != nil {
				return fmt.Errorf("rewrite %s: %w", what, err)
			}
			*v = nv
			count++
			return nil
		}
		for _, s := range ins {
			for _, f := range []struct {
				what string
				v    *[]byte
			}{{"secrets", &s.secrets}, {"webhook secret", &s.wh}, {"previous webhook secret", &s.prev}} {
				if err := rewrite(f.what+" of integration "+s.id, f.v); err != nil {
					return err
				}
			}
			if _, err := o.exec(ctx, `UPDATE integrations SET secrets_enc = ?, webhook_enc = ?, webhook_prev = ? WHERE id = ?`,
				s.secrets, s.wh, s.prev, s.id); err != nil {
				return fmt.Errorf("write secrets of integration %s: %w", s.id, err)
			}
		}

		type credential struct {
			integration, user string
			token             []byte
		}
		var creds []credential
		rows, err = o.w.QueryContext(ctx, `SELECT integration_id, user_id, token_enc FROM user_credentials ORDER BY integration_id, user_id`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var c credential
			if err := rows.Scan(&c.integration, &c.user, &c.token); err != nil {
				rows.Close()
				return err
			}
			creds = append(creds, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, c := range creds {
			if err := rewrite("token of user "+c.user+" on "+c.integration, &c.token); err != nil {
				return err
			}
			if _, err := o.exec(ctx, `UPDATE user_credentials SET token_enc = ? WHERE integration_id = ? AND user_id = ?`,
				c.token, c.integration, c.user); err != nil {
				return fmt.Errorf("write token of user %s on %s: %w", c.user, c.integration, err)
			}
		}
		return o.rewriteSubscriptionSecrets(ctx, rewrite)
	})
	if err != nil {
		return 0, fmt.Errorf("rewrite secrets: %w", err)
	}
	return count, nil
}
