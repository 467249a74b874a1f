package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/forgeway/forgeway/internal/api"
)

func (e *env) subscriptionsCommand() *cobra.Command {
	g := e.group("subscriptions", "Outbound event subscriptions (admin): push events to HTTP endpoints",
		e.subscriptionsList(),
		e.subscriptionsGet(),
		e.subscriptionsCreate(),
		e.subscriptionsUpdate(),
		e.subscriptionsDelete(),
		e.subscriptionsAttempts(),
		e.subscriptionsRedeliver(),
	)
	g.Aliases = []string{"subscription", "subs"}
	return g
}

func subscriptionFilters(s api.Subscription) string {
	var parts []string
	if len(s.EventTypes) > 0 {
		parts = append(parts, "types="+strings.Join(s.EventTypes, ","))
	}
	if len(s.IntegrationIDs) > 0 {
		parts = append(parts, "integrations="+strings.Join(s.IntegrationIDs, ","))
	}
	if len(s.RepositoryIDs) > 0 {
		parts = append(parts, "repositories="+strings.Join(s.RepositoryIDs, ","))
	}
	if len(parts) == 0 {
		return "all events"
	}
	return strings.Join(parts, " ")
}

func (e *env) subscriptionsList() *cobra.Command {
	c := &cobra.Command{Use: "list", Short: "List subscriptions", Args: cobra.NoArgs}
	c.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		cl, err := e.client()
		if err != nil {
			return err
		}
		list, err := cl.listAll(ctx, "/subscriptions", nil, 0, "")
		if err != nil {
			return fmt.Errorf("list subscriptions: %w", err)
		}
		if e.json {
			return printJSON(e.stdout, list)
		}
		items, err := decodeItems[api.Subscription](list.Items)
		if err != nil {
			return err
		}
		t := newTable(e.stdout, "ID", "NAME", "URL", "ENABLED", "FILTERS")
		for _, s := range items {
			t.row(s.ID, s.Name, s.URL, yesNo(!s.Disabled), subscriptionFilters(s))
		}
		return t.flush()
	})
	return c
}

func (e *env) printSubscription(raw []byte, s api.Subscription) error {
	if e.json {
		return printRaw(e.stdout, raw)
	}
	f := newFields(e.stdout)
	f.add("ID", s.ID)
	f.add("Name", s.Name)
	f.add("URL", s.URL)
	f.add("Enabled", yesNo(!s.Disabled))
	f.add("Event types", strings.Join(s.EventTypes, ", "))
	f.add("Integrations", strings.Join(s.IntegrationIDs, ", "))
	f.add("Repositories", strings.Join(s.RepositoryIDs, ", "))
	f.add("Created", ts(s.CreatedAt))
	f.add("Updated", ts(s.UpdatedAt))
	return f.flush()
}

func (e *env) subscriptionsGet() *cobra.Command {
	c := &cobra.Command{Use: "get ID", Short: "Show a subscription", Args: exactArgs("ID")}
	c.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		cl, err := e.client()
		if err != nil {
			return err
		}
		var s api.Subscription
		raw, err := cl.get(ctx, pathf("/subscriptions/%s", args[0]), nil, &s)
		if err != nil {
			return fmt.Errorf("get subscription %s: %w", args[0], err)
		}
		return e.printSubscription(raw, s)
	})
	return c
}

// secretFlags read a signing secret from a file or stdin, never from the arguments.
type secretFlags struct {
	file  string
	stdin bool
}

func (s *secretFlags) register(c *cobra.Command, what string) {
	c.Flags().StringVar(&s.file, "secret-file", "", what+" from this file (whsec_<base64>)")
	c.Flags().BoolVar(&s.stdin, "secret-stdin", false, what+" from standard input")
	c.MarkFlagsMutuallyExclusive("secret-file", "secret-stdin")
}

func (s *secretFlags) read(e *env) (string, bool, error) {
	switch {
	case s.file != "":
		v, err := readSecretFile(s.file)
		return v, true, err
	case s.stdin:
		v, err := readSecretStdin(e)
		return v, true, err
	}
	return "", false, nil
}

// showSecret prints a secret the server shows once: alone on stdout, the advice on stderr.
func (e *env) showSecret(id, secret string) {
	if secret == "" {
		return
	}
	fmt.Fprintln(e.stdout, secret)
	fmt.Fprintf(e.stderr, "Subscription %s signs with this secret. It is shown once: give it to the consumer now.\n", id)
}

func (e *env) subscriptionsCreate() *cobra.Command {
	var in api.SubscriptionCreate
	var sec secretFlags
	c := &cobra.Command{
		Use:   "create --url URL [--type T]... [--integration I]... [--repository R]...",
		Short: "Subscribe an HTTP endpoint to events; the signing secret is printed once",
		Args:  cobra.NoArgs,
	}
	c.Flags().StringVar(&in.URL, "url", "", "the consumer's endpoint, http(s) (required)")
	c.Flags().StringVar(&in.Name, "name", "", "what the subscription is for")
	c.Flags().StringArrayVar(&in.EventTypes, "type", nil, "only events of this type, or of types starting with it when it ends in \".\" (repeatable)")
	c.Flags().StringArrayVar(&in.IntegrationIDs, "integration", nil, "only this integration's events (repeatable)")
	c.Flags().StringArrayVar(&in.RepositoryIDs, "repository", nil, "only this repository's events, by the host's repository id (repeatable)")
	c.Flags().BoolVar(&in.Disabled, "disabled", false, "create it paused")
	sec.register(c, "use the signing secret")
	c.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		if strings.TrimSpace(in.URL) == "" {
			return usagef("--url is required")
		}
		secret, _, err := sec.read(e)
		if err != nil {
			return err
		}
		in.Secret = secret
		cl, err := e.client()
		if err != nil {
			return err
		}
		var s api.Subscription
		raw, err := cl.send(ctx, http.MethodPost, "/subscriptions", in, &s)
		if err != nil {
			return fmt.Errorf("create subscription: %w", err)
		}
		if e.json {
			return printRaw(e.stdout, raw)
		}
		if secret == "" {
			e.showSecret(s.ID, s.Secret)
		} else {
			fmt.Fprintf(e.stderr, "Created subscription %s, signing with the secret given.\n", s.ID)
		}
		return nil
	})
	return c
}

func (e *env) subscriptionsUpdate() *cobra.Command {
	var (
		name, target, enabled      string
		types, integrations, repos []string
		clearFilters, rotate       bool
		sec                        secretFlags
	)
	c := &cobra.Command{
		Use:   "update ID [flags]",
		Short: "Change a subscription: URL, filters, enabled, secret rotation",
		Args:  exactArgs("ID"),
	}
	c.Flags().StringVar(&name, "name", "", "new name")
	c.Flags().StringVar(&target, "url", "", "new endpoint")
	c.Flags().StringVar(&enabled, "enabled", "", "true or false: resume or pause deliveries")
	c.Flags().StringArrayVar(&types, "type", nil, "replace the event type filter (repeatable)")
	c.Flags().StringArrayVar(&integrations, "integration", nil, "replace the integration filter (repeatable)")
	c.Flags().StringArrayVar(&repos, "repository", nil, "replace the repository filter (repeatable)")
	c.Flags().BoolVar(&clearFilters, "all-events", false, "remove every filter")
	c.Flags().BoolVar(&rotate, "rotate-secret", false, "replace the signing secret with a generated one, printed once")
	sec.register(c, "replace the signing secret with the one")
	c.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		var p api.SubscriptionPatch
		fl := cmd.Flags()
		if fl.Changed("name") {
			p.Name = &name
		}
		if fl.Changed("url") {
			p.URL = &target
		}
		if fl.Changed("enabled") {
			on, err := strconv.ParseBool(enabled)
			if err != nil {
				return usagef("--enabled takes true or false")
			}
			off := !on
			p.Disabled = &off
		}
		if clearFilters && (fl.Changed("type") || fl.Changed("integration") || fl.Changed("repository")) {
			return usagef("--all-events and a filter flag contradict each other")
		}
		empty := []string{}
		for _, f := range []struct {
			flag string
			v    []string
			dst  **[]string
		}{{"type", types, &p.EventTypes}, {"integration", integrations, &p.IntegrationIDs}, {"repository", repos, &p.RepositoryIDs}} {
			switch {
			case clearFilters:
				*f.dst = &empty
			case fl.Changed(f.flag):
				v := f.v
				*f.dst = &v
			}
		}
		secret, given, err := sec.read(e)
		if err != nil {
			return err
		}
		if given && rotate {
			return usagef("--rotate-secret generates a secret: do not give one as well")
		}
		if given || rotate {
			p.RotateSecret = &secret
		}
		cl, err := e.client()
		if err != nil {
			return err
		}
		var s api.Subscription
		raw, err := cl.send(ctx, http.MethodPatch, pathf("/subscriptions/%s", args[0]), p, &s)
		if err != nil {
			return fmt.Errorf("change subscription %s: %w", args[0], err)
		}
		if rotate && !e.json {
			e.showSecret(s.ID, s.Secret)
			return nil
		}
		return e.printSubscription(raw, s)
	})
	return c
}

func (e *env) subscriptionsDelete() *cobra.Command {
	c := &cobra.Command{Use: "delete ID", Short: "Delete a subscription and its attempts", Args: exactArgs("ID")}
	c.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		cl, err := e.client()
		if err != nil {
			return err
		}
		if _, err := cl.call(ctx, http.MethodDelete, pathf("/subscriptions/%s", args[0]), nil, nil); err != nil {
			return fmt.Errorf("delete subscription %s: %w", args[0], err)
		}
		fmt.Fprintf(e.stderr, "Deleted subscription %s.\n", args[0])
		return nil
	})
	return c
}

func (e *env) subscriptionsAttempts() *cobra.Command {
	var status string
	var pg pageFlags
	c := &cobra.Command{
		Use:   "attempts ID",
		Short: "List a subscription's delivery attempts, newest first (--status dead: the dead letters)",
		Args:  exactArgs("ID"),
	}
	c.Flags().StringVar(&status, "status", "", "only attempts in this status: pending, delivered or dead")
	pg.register(c)
	c.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		if err := pg.check(); err != nil {
			return err
		}
		q := url.Values{}
		if status != "" {
			q.Set("status", status)
		}
		cl, err := e.client()
		if err != nil {
			return err
		}
		list, err := cl.listAll(ctx, pathf("/subscriptions/%s/attempts", args[0]), q, pg.limit, pg.cursor)
		if err != nil {
			return fmt.Errorf("list attempts of subscription %s: %w", args[0], err)
		}
		if e.json {
			return printJSON(e.stdout, list)
		}
		items, err := decodeItems[api.SubscriptionAttempt](list.Items)
		if err != nil {
			return err
		}
		t := newTable(e.stdout, "N", "EVENT", "TYPE", "STATUS", "TRIES", "NEXT TRY", "LAST ERROR")
		for _, a := range items {
			t.row(strconv.FormatInt(a.N, 10), a.EventID, a.EventType, a.Status, strconv.Itoa(a.Tries), tsp(a.NextTryAt), a.Error)
		}
		if err := t.flush(); err != nil {
			return err
		}
		e.morePages(list.NextCursor)
		return nil
	})
	return c
}

func (e *env) subscriptionsRedeliver() *cobra.Command {
	c := &cobra.Command{Use: "redeliver ID N", Short: "Send attempt N's event again now, with a fresh retry schedule", Args: exactArgs("ID", "N")}
	c.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		if _, err := strconv.ParseInt(args[1], 10, 64); err != nil {
			return usagef("N is an attempt number (see `forgeway subscriptions attempts %s`)", args[0])
		}
		cl, err := e.client()
		if err != nil {
			return err
		}
		var a api.SubscriptionAttempt
		raw, err := cl.send(ctx, http.MethodPost, pathf("/subscriptions/%s/attempts/%s/redeliver", args[0], args[1]), nil, &a)
		if err != nil {
			return fmt.Errorf("redeliver attempt %s of subscription %s: %w", args[1], args[0], err)
		}
		if e.json {
			return printRaw(e.stdout, raw)
		}
		fmt.Fprintf(e.stderr, "Attempt %d (event %s) is queued to be sent again.\n", a.N, a.EventID)
		return nil
	})
	return c
}
