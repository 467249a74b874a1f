package server

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/forgeway/forgeway/internal/config"
	"github.com/forgeway/forgeway/internal/secrets"
	"github.com/forgeway/forgeway/internal/store/sqlstore"
)

// RotateSecrets re-encrypts every stored secret under a new key.
//
// With the key file (no FORGEWAY_SECRET_KEY) it generates the new key itself: the file first
// holds the new key and the old ones (so that a run cut short can be run again), then, once
// every value is re-encrypted, only the new key. Run it with the server stopped, or restart
// every process after it: running servers hold the old key.
//
// With FORGEWAY_SECRET_KEY, the operator chooses the key: deploy the new key as
// FORGEWAY_SECRET_KEY and the old one in FORGEWAY_SECRET_KEYS_OLD to every replica (they then
// read both), run this, and drop FORGEWAY_SECRET_KEYS_OLD. No downtime.
func RotateSecrets(ctx context.Context, cfg config.Config, out io.Writer) error {
	var ring *secrets.Keyring
	var finish func() error
	if cfg.SecretKey != "" {
		r, err := loadKeys(cfg, nil)
		if err != nil {
			return err
		}
		ring = r
		finish = func() error {
			if cfg.SecretKeysOld != "" {
				fmt.Fprintln(out, "Every secret is now encrypted under FORGEWAY_SECRET_KEY: remove FORGEWAY_SECRET_KEYS_OLD from every replica.")
			}
			return nil
		}
	} else {
		f := secrets.KeyFile{Path: filepath.Join(cfg.DataDir, "secret.key")}
		keys, created, err := f.Load()
		if err != nil {
			return err
		}
		if created {
			return fmt.Errorf("there was no key file at %s: nothing was encrypted with one (is --data-dir right?)", f.Path)
		}
		next, err := secrets.GenerateKey()
		if err != nil {
			return err
		}
		all := append([][]byte{next}, keys...)
		if err := f.Write(all); err != nil {
			return err
		}
		if ring, err = secrets.New(next, keys...); err != nil {
			return err
		}
		finish = func() error {
			if err := f.Write([][]byte{next}); err != nil {
				return err
			}
			fmt.Fprintf(out, "The key file %s now holds only the new key (%s). Restart Forgeway if it is running.\n", f.Path, ring.CurrentID())
			return nil
		}
	}
	st, err := sqlstore.Open(ctx, cfg.DatabaseDSN(), sqlstore.Options{})
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer st.Close()
	n, err := st.RewriteSecrets(ctx, ring.Reseal)
	if err != nil {
		return fmt.Errorf("re-encrypt secrets (nothing was changed): %w", err)
	}
	fmt.Fprintf(out, "Re-encrypted %d secret values under key %s.\n", n, ring.CurrentID())
	return finish()
}
