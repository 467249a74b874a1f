// Package cli owns Forgeway's command line: `forgeway serve` (the server, configured by the
// settings table of internal/config) and the client verbs that talk to a running server over
// its REST API (integrations, repositories, deliveries, events, jobs, tokens, projects and
// user credentials). It renders API answers as aligned tables or raw JSON, problem+json errors
// as "error:"/"hint:" lines, and long jobs as progress. Exit codes: 0 ok, 1 failure, 2 usage.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/forgeway/forgeway/internal/server"
)

// Exit codes of the forgeway binary.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// Defaults of the global client flags.
const (
	defaultServer  = "http://localhost:8080"
	defaultTimeout = 2 * time.Minute
)

// env is one invocation's surroundings: its streams, environment and the knobs tests turn.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string

	// httpClient sends API requests; its own Timeout must be zero (timeouts are per call).
	httpClient *http.Client
	// terminal reports whether stderr is a terminal: progress then updates one line in place.
	terminal bool
	// poll is how often a waited-for job is fetched.
	poll time.Duration
	// reconnect is the delay before the n-th (from 1) consecutive reconnect of an event stream.
	reconnect func(n int) time.Duration
	// idle is how long an event stream may stay silent (the server sends keepalives every
	// 15 s) before it is considered dead and reconnected.
	idle time.Duration

	// Global flags.
	server  string
	token   string
	json    bool
	timeout time.Duration

	// ran is set once a command's own code starts: errors before that are cobra's parsing of
	// the command line, which are usage errors.
	ran bool
}

// Main runs the forgeway command line with args (without the program name) and returns the
// process exit code: 0 ok, 1 failure, 2 usage error. getenv supplies FORGEWAY_URL,
// FORGEWAY_TOKEN and, for serve, every FORGEWAY_* setting.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	e := &env{
		stdin:      stdin,
		stdout:     stdout,
		stderr:     stderr,
		getenv:     getenv,
		httpClient: &http.Client{},
		terminal:   isTerminal(stderr),
		poll:       time.Second,
		reconnect:  backoff,
		idle:       time.Minute,
	}
	return e.run(ctx, args)
}

// backoff is the event stream's reconnect delay: 1 s, 2 s, 4 s … up to 30 s.
func backoff(n int) time.Duration {
	d := time.Second << min(n-1, 5)
	return min(d, 30*time.Second)
}

// isTerminal reports whether the stream is a character device (a terminal, not a pipe or
// file).
func isTerminal(stream any) bool {
	f, ok := stream.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// run executes args and maps the outcome to an exit code, printing any error.
func (e *env) run(ctx context.Context, args []string) int {
	root := e.rootCommand()
	if args == nil {
		args = []string{} // cobra falls back to os.Args on nil
	}
	root.SetArgs(args)
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	var ex *exitError
	if errors.As(err, &ex) {
		if ex.msg != "" {
			fmt.Fprintf(e.stderr, "error: %s\n", ex.msg)
		}
		return ex.code
	}
	var ue *usageError
	if !e.ran || errors.As(err, &ue) {
		fmt.Fprintf(e.stderr, "error: %s\n", err)
		path := root.CommandPath()
		if cmd != nil {
			path = cmd.CommandPath()
		}
		fmt.Fprintf(e.stderr, "Run '%s --help' for usage.\n", path)
		return ExitUsage
	}
	e.printError(err)
	return ExitFailure
}

// printError renders a failure: a problem answer as title, detail, field errors and hint;
// anything else as its message (plus its hint when it carries one).
func (e *env) printError(err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		p := ae.problem
		msg := p.Title
		if p.Detail != "" {
			msg += ": " + p.Detail
		}
		fmt.Fprintf(e.stderr, "error: %s\n", msg)
		for _, fe := range p.Errors {
			fmt.Fprintf(e.stderr, "  %s: %s\n", fe.Field, fe.Detail)
		}
		if ae.hint != "" {
			fmt.Fprintf(e.stderr, "hint: %s\n", ae.hint)
		}
		return
	}
	var he *hintError
	if errors.As(err, &he) {
		fmt.Fprintf(e.stderr, "error: %s\n", he.err)
		fmt.Fprintf(e.stderr, "hint: %s\n", he.hint)
		return
	}
	fmt.Fprintf(e.stderr, "error: %s\n", err)
}

// usageError is a command line mistake found by a command itself (exit code 2).
type usageError struct{ msg string }

func (u *usageError) Error() string { return u.msg }

func usagef(format string, a ...any) error { return &usageError{msg: fmt.Sprintf(format, a...)} }

// exitError ends the process with code after its output was already printed; msg, when set,
// is printed as an error line.
type exitError struct {
	code int
	msg  string
}

func (x *exitError) Error() string {
	if x.msg != "" {
		return x.msg
	}
	return fmt.Sprintf("exit status %d", x.code)
}

// hintError is a failure with what to do about it.
type hintError struct {
	err  error
	hint string
}

func (h *hintError) Error() string { return h.err.Error() }
func (h *hintError) Unwrap() error { return h.err }

// runner is a command body; ctx is the invocation's context (cancelled on SIGINT in main).
type runner func(ctx context.Context, cmd *cobra.Command, args []string) error

// do adapts a runner to cobra and marks that command-line parsing is over.
func (e *env) do(f runner) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		e.ran = true
		return f(cmd.Context(), cmd, args)
	}
}

// group is a command that only holds subcommands; an unknown subcommand is a usage error
// (cobra would print the help and exit 0).
func (e *env) group(use, short string, children ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return cmd.Help()
		},
	}
	c.AddCommand(children...)
	return c
}

// exactArgs is cobra.ExactArgs with the argument names in the message.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return fmt.Errorf("%s takes %d argument(s): %s (got %d)", cmd.CommandPath(), len(names), strings.Join(names, " "), len(args))
		}
		return nil
	}
}

func (e *env) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "forgeway",
		Short: "Connect a platform to Git hosts",
		Long: "Forgeway connects a platform to Git hosts (GitHub, GitLab, Bitbucket DC, Azure DevOps, Gitea).\n\n" +
			"`forgeway serve` runs the server; the other commands talk to a running server through its API.\n" +
			"Point them at it with --server (or FORGEWAY_URL) and authenticate with FORGEWAY_TOKEN.",
		Version:       server.Version,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&e.server, "server", "", "URL of the Forgeway server (env FORGEWAY_URL, default "+defaultServer+")")
	pf.StringVar(&e.token, "token", "", "API token (env FORGEWAY_TOKEN; prefer the environment: flags are visible in the process list)")
	pf.BoolVar(&e.json, "json", false, "print the raw JSON answer instead of a table")
	pf.DurationVar(&e.timeout, "timeout", defaultTimeout, "longest a single API request may take (waiting for jobs and following events are not bounded by it)")

	root.AddCommand(
		e.serveCommand(),
		e.docsCommand(),
		e.openapiCommand(),
		e.integrationsCommand(),
		e.reposCommand(),
		e.deliveriesCommand(),
		e.eventsCommand(),
		e.jobsCommand(),
		e.tokensCommand(),
		e.projectsCommand(),
		e.credentialsCommand(),
		e.secretsCommand(),
		e.subscriptionsCommand(),
	)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return &usageError{msg: err.Error()} })
	return root
}
