package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/forgeway/forgeway/internal/config"
	"github.com/forgeway/forgeway/internal/server"
)

func (e *env) secretsCommand() *cobra.Command {
	c := &cobra.Command{Use: "secrets", Short: "Manage the encryption of stored secrets"}
	rotate := &cobra.Command{
		Use:   "rotate [flags]",
		Short: "Re-encrypt every stored secret under a new key",
		Long: "Re-encrypt every stored secret (private keys, tokens, webhook secrets) under a new key.\n\n" +
			"With the key file in the data directory (the default), a new key is generated; stop Forgeway\n" +
			"first, or restart it afterwards. With FORGEWAY_SECRET_KEY, set the new key there and the old one\n" +
			"in FORGEWAY_SECRET_KEYS_OLD on every replica, run this, then remove FORGEWAY_SECRET_KEYS_OLD.\n" +
			"It reads the same settings as `forgeway serve` (--data-dir, --database-url, …).",
		DisableFlagParsing: true,
		RunE: e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			fs := serveFlags()
			if err := fs.Parse(args); err != nil {
				if errors.Is(err, flag.ErrHelp) {
					fmt.Fprintln(e.stdout, cmd.Long)
					return nil
				}
				return usagef("secrets rotate: %s", err)
			}
			if fs.NArg() > 0 {
				return usagef("secrets rotate takes no arguments, got %q", strings.Join(fs.Args(), " "))
			}
			cfg, err := config.Load(fs, e.getenv)
			if err != nil {
				return usagef("configuration: %s", err)
			}
			return server.RotateSecrets(ctx, cfg, e.stdout)
		}),
	}
	c.AddCommand(rotate)
	return c
}
