package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/forgeway/forgeway/internal/config"
	"github.com/forgeway/forgeway/internal/server"
)

func (e *env) serveCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "serve [flags]",
		Short: "Run the Forgeway server",
		Long: "Run the Forgeway server: API, webhooks, jobs, scheduler and metrics.\n" +
			"Settings come from flags, FORGEWAY_* environment variables or a YAML file; see `forgeway serve --help`\n" +
			"and `forgeway docs config`.",
		// The settings are the stdlib flags of internal/config, parsed in RunE.
		DisableFlagParsing: true,
		RunE: e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			return e.serve(ctx, args)
		}),
	}
	c.SetHelpFunc(func(*cobra.Command, []string) { serveUsage(e.stdout, serveFlags()) })
	return c
}

// serveFlags is the flag set of serve: every setting of internal/config.
func serveFlags() *flag.FlagSet {
	fs := flag.NewFlagSet("forgeway serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors and help are printed by serve itself
	config.Register(fs)
	return fs
}

func serveUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, "Usage: forgeway serve [flags]\n\n"+
		"Runs the Forgeway server until SIGINT or SIGTERM. Every flag can also be set with its environment\n"+
		"variable or in the YAML file named by --config; secrets belong in the environment (flags show in\n"+
		"the process list).\n\nFlags:\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

func (e *env) serve(ctx context.Context, args []string) error {
	fs := serveFlags()
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			serveUsage(e.stdout, fs)
			return nil
		}
		return usagef("serve: %s", err)
	}
	if fs.NArg() > 0 {
		return usagef("serve takes no arguments, got %q", strings.Join(fs.Args(), " "))
	}
	cfg, err := config.Load(fs, e.getenv)
	if err != nil {
		return usagef("configuration: %s", err)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop) // a second signal during the graceful shutdown ends at once
	app, err := server.New(ctx, cfg, server.Options{Out: e.stdout})
	if err != nil {
		return fmt.Errorf("start the server: %w", err)
	}
	defer app.Close()
	if err := app.Run(ctx); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

func (e *env) docsCommand() *cobra.Command {
	cfg := &cobra.Command{
		Use:   "config",
		Short: "Print the configuration reference (Markdown)",
		Args:  cobra.NoArgs,
		RunE: e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			_, err := io.WriteString(e.stdout, config.Markdown())
			return err
		}),
	}
	return e.group("docs", "Print reference documentation", cfg)
}

func (e *env) openapiCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "openapi",
		Short: "Print the server's OpenAPI document",
		Args:  cobra.NoArgs,
		RunE: e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			cl, err := e.client()
			if err != nil {
				return err
			}
			raw, err := cl.call(ctx, "GET", "/openapi.json", nil, nil)
			if err != nil {
				return fmt.Errorf("get the OpenAPI document: %w", err)
			}
			return printRaw(e.stdout, raw)
		}),
	}
}
