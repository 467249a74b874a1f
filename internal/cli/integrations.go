package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/forgeway/forgeway/internal/api"
)

func (e *env) integrationsCommand() *cobra.Command {
	g := e.group("integrations", "Connect hosts and manage the connections (integrations)",
		e.integrationsList(),
		e.integrationsGet(),
		e.integrationsCreate(),
		e.integrationsSet(),
		e.integrationsDelete(),
		e.integrationsTest(),
		e.integrationsJob("refresh", "Discover the integration's repositories now"),
		e.integrationsJob("reconcile", "Check the hooks of attached repositories and repair missing ones"),
		e.integrationsStatus("suspend", "Suspend an integration (no discovery, no host calls)"),
		e.integrationsStatus("resume", "Resume a suspended integration"),
		e.integrationsFlow("manifest-url", "manifest", "Print the URL that creates the host-side App (GitHub app-manifest flow)"),
		e.integrationsFlow("install-url", "install", "Print the URL that installs the App on an account"),
	)
	g.Aliases = []string{"integration", "int"}
	return g
}

func (e *env) integrationsList() *cobra.Command {
	var project string
	c := &cobra.Command{
		Use:   "list",
		Short: "List integrations",
		Args:  cobra.NoArgs,
	}
	c.Flags().StringVar(&project, "project", "", "only the integrations of this project")
	c.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		cl, err := e.client()
		if err != nil {
			return err
		}
		path := "/integrations"
		if project != "" {
			path = pathf("/projects/%s/integrations", project)
		}
		list, err := cl.listAll(ctx, path, nil, 0, "")
		if err != nil {
			return fmt.Errorf("list integrations: %w", err)
		}
		if e.json {
			return printJSON(e.stdout, list)
		}
		items, err := decodeItems[api.Integration](list.Items)
		if err != nil {
			return err
		}
		t := newTable(e.stdout, "ID", "KIND", "NAME", "STATUS", "BASE URL")
		for _, in := range items {
			t.row(in.ID, in.Kind, in.Name, in.Status, in.BaseURL)
		}
		return t.flush()
	})
	return c
}

func (e *env) integrationsGet() *cobra.Command {
	return getCommand(e, "integrations", "integration", "Show an integration", func(in api.Integration) error {
		return e.printIntegration(in)
	})
}

// printIntegration shows one integration as labelled lines, then its installations.
func (e *env) printIntegration(in api.Integration) error {
	f := newFields(e.stdout)
	f.add("ID", in.ID)
	f.add("Kind", in.Kind)
	f.add("Name", in.Name)
	f.add("Base URL", in.BaseURL)
	status := in.Status
	if in.StatusNote != "" {
		status += " (" + in.StatusNote + ")"
	}
	f.add("Status", status)
	f.add("Project", in.ProjectID)
	f.add("Filter", in.Filter)
	f.add("Schedule", in.Schedule)
	f.add("Webhook URL", in.WebhookURL)
	f.add("App webhook URL", in.AppWebhookURL)
	if in.Rotating {
		f.add("Webhook secret", "rotating: the previous secret is still accepted until the rotation is finished")
	}
	f.add("Secrets set", strings.Join(in.Secrets, ", "))
	keys := make([]string, 0, len(in.Settings))
	for k := range in.Settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	settings := make([]string, 0, len(keys))
	for _, k := range keys {
		settings = append(settings, k+"="+in.Settings[k])
	}
	f.add("Settings", strings.Join(settings, ", "))
	if in.Budget != nil {
		f.add("Rate limit", fmt.Sprintf("%d of %d left, resets %s", in.Budget.Remaining, in.Budget.Limit, ts(in.Budget.Reset)))
	}
	f.add("Created", ts(in.CreatedAt))
	f.add("Updated", ts(in.UpdatedAt))
	if err := f.flush(); err != nil {
		return err
	}
	if len(in.Installations) > 0 {
		fmt.Fprintln(e.stdout, "\nInstallations:")
		t := newTable(e.stdout, "ID", "ACCOUNT", "TYPE", "REPOSITORIES", "STATUS")
		for _, i := range in.Installations {
			t.row(i.ID, i.Account, i.AccountType, i.RepositorySelection, i.Status)
		}
		return t.flush()
	}
	return nil
}

// integrationInput is what create and set share: fields, settings and secrets.
type integrationInput struct {
	name, url, filter, schedule string
	settings                    []string
	secrets                     secretInput
	webhookSecretFile           string
}

func (o *integrationInput) register(c *cobra.Command) {
	fl := c.Flags()
	fl.StringVar(&o.name, "name", "", "display name")
	fl.StringVar(&o.url, "url", "", "the host's base URL (e.g. https://github.example.com)")
	fl.StringArrayVar(&o.settings, "setting", nil, "a setting as key=value (repeatable; see GET /api/v1/kinds for each kind's fields)")
	fl.StringArrayVar(&o.secrets.inline, "secret", nil, "a secret as key=value (repeatable); visible in the process list: prefer --secret-file or --secret-stdin")
	fl.StringArrayVar(&o.secrets.files, "secret-file", nil, "a secret read from a file, as key=path (repeatable), e.g. private_key=app.pem")
	fl.StringVar(&o.secrets.stdin, "secret-stdin", "", "read this secret's value (by key, e.g. token) from standard input")
	fl.StringVar(&o.filter, "filter", "", "JMESPath expression selecting the repositories to keep")
	fl.StringVar(&o.schedule, "schedule", "", "cron expression: when discovery runs")
}

func (e *env) integrationsCreate() *cobra.Command {
	var o integrationInput
	var kind, project string
	var noDiscover bool
	c := &cobra.Command{
		Use:   "create --kind KIND --url URL [flags]",
		Short: "Connect a host: create an integration (a first discovery checks its credential)",
		Example: "  forgeway integrations create --kind github --name acme --url https://github.com \\\n" +
			"      --setting auth=app --setting app_id=12345 --secret-file private_key=app.pem\n" +
			"  printf %s \"$TOKEN\" | forgeway integrations create --kind github --name me --setting auth=token --secret-stdin token",
		Args: cobra.NoArgs,
	}
	o.register(c)
	c.Flags().StringVar(&kind, "kind", "", "host kind: github, gitlab, bitbucket-dc, azure-devops or gitea (required)")
	c.Flags().StringVar(&project, "project", "", "project the integration belongs to")
	c.Flags().StringVar(&o.webhookSecretFile, "webhook-secret-file", "", "file holding the webhook secret to use (default: one is generated)")
	c.Flags().BoolVar(&noDiscover, "no-discover", false, "do not start a first discovery")
	c.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		if kind == "" {
			return usagef("--kind is required")
		}
		settings, err := parsePairs("setting", o.settings, false)
		if err != nil {
			return err
		}
		secrets, err := o.secrets.collect(e, false)
		if err != nil {
			return err
		}
		body := api.IntegrationCreate{
			Kind: kind, Name: o.name, BaseURL: o.url, Settings: settings, Secrets: secrets,
			Filter: o.filter, Schedule: o.schedule, ProjectID: project,
		}
		if o.webhookSecretFile != "" {
			if body.WebhookSecret, err = readSecretFile(o.webhookSecretFile); err != nil {
				return fmt.Errorf("webhook secret: %w", err)
			}
		}
		if noDiscover {
			f := false
			body.Discover = &f
		}
		cl, err := e.client()
		if err != nil {
			return err
		}
		var in api.Integration
		raw, err := cl.send(ctx, http.MethodPost, "/integrations", body, &in)
		if err != nil {
			return fmt.Errorf("create integration: %w", err)
		}
		if e.json {
			return printRaw(e.stdout, raw)
		}
		fmt.Fprintf(e.stdout, "Created integration %s.\n\n", in.ID)
		if err := e.printIntegration(in); err != nil {
			return err
		}
		if !noDiscover {
			fmt.Fprintf(e.stdout, "\nDiscovery started: `forgeway repos list --integration %s` lists what it finds; `forgeway integrations test %s` diagnoses the credential.\n", in.ID, in.ID)
		}
		return nil
	})
	return c
}

func (e *env) integrationsSet() *cobra.Command {
	var o integrationInput
	var rotate, finish bool
	c := &cobra.Command{
		Use:   "set ID [flags]",
		Short: "Change an integration: fields, settings, secrets, webhook secret rotation",
		Long: "Change an integration. Only the flags given change; `--setting key=` and `--secret key=` remove a key.\n" +
			"A webhook secret rotation keeps the previous secret valid until --finish-rotation.",
		Args: exactArgs("ID"),
	}
	o.register(c)
	c.Flags().BoolVar(&rotate, "rotate-webhook-secret", false, "start a webhook secret rotation with a generated secret")
	c.Flags().StringVar(&o.webhookSecretFile, "webhook-secret-file", "", "start a webhook secret rotation with the secret in this file")
	c.Flags().BoolVar(&finish, "finish-rotation", false, "finish a webhook secret rotation: stop accepting the previous secret")
	c.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		var p api.IntegrationPatch
		fl := cmd.Flags()
		str := func(name, v string) *string {
			if fl.Changed(name) {
				return &v
			}
			return nil
		}
		p.Name, p.BaseURL, p.Filter, p.Schedule = str("name", o.name), str("url", o.url), str("filter", o.filter), str("schedule", o.schedule)
		settings, err := parsePairs("setting", o.settings, true)
		if err != nil {
			return err
		}
		secrets, err := o.secrets.collect(e, true)
		if err != nil {
			return err
		}
		p.Settings, p.Secrets = patchMap(settings), patchMap(secrets)
		if rotate && o.webhookSecretFile != "" {
			return usagef("--rotate-webhook-secret and --webhook-secret-file are exclusive")
		}
		if (rotate || o.webhookSecretFile != "") && finish {
			return usagef("a rotation cannot be started and finished at once")
		}
		if rotate {
			generated := ""
			p.RotateWebhookSecret = &generated
		}
		if o.webhookSecretFile != "" {
			v, err := readSecretFile(o.webhookSecretFile)
			if err != nil {
				return fmt.Errorf("webhook secret: %w", err)
			}
			p.RotateWebhookSecret = &v
		}
		p.FinishRotation = finish
		if p.Name == nil && p.BaseURL == nil && p.Filter == nil && p.Schedule == nil && p.Settings == nil &&
			p.Secrets == nil && p.RotateWebhookSecret == nil && !p.FinishRotation {
			return usagef("nothing to change: give at least one of the flags (see --help)")
		}
		cl, err := e.client()
		if err != nil {
			return err
		}
		var in api.Integration
		raw, err := cl.send(ctx, http.MethodPatch, pathf("/integrations/%s", args[0]), p, &in)
		if err != nil {
			return fmt.Errorf("update integration %s: %w", args[0], err)
		}
		if e.json {
			return printRaw(e.stdout, raw)
		}
		fmt.Fprintf(e.stdout, "Updated integration %s.\n", in.ID)
		if p.RotateWebhookSecret != nil {
			fmt.Fprintf(e.stdout, "Webhook secret rotation started: the hooks get the new secret; the previous one is accepted until `forgeway integrations set %s --finish-rotation`.\n", in.ID)
		}
		if p.Filter != nil {
			fmt.Fprintln(e.stdout, "The filter changed: a discovery re-evaluates the catalog.")
		}
		return nil
	})
	return c
}

// patchMap turns key=value pairs into a patch: an empty value removes the key (null).
func patchMap(m map[string]string) map[string]*string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]*string, len(m))
	for k, v := range m {
		if v == "" {
			out[k] = nil
			continue
		}
		out[k] = &v
	}
	return out
}

func (e *env) integrationsDelete() *cobra.Command {
	c := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete an integration and its catalog",
		Args:  exactArgs("ID"),
	}
	c.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		cl, err := e.client()
		if err != nil {
			return err
		}
		if _, err := cl.send(ctx, http.MethodDelete, pathf("/integrations/%s", args[0]), nil, nil); err != nil {
			return fmt.Errorf("delete integration %s: %w", args[0], err)
		}
		if !e.json {
			fmt.Fprintf(e.stdout, "Deleted integration %s.\n", args[0])
		}
		return nil
	})
	return c
}

func (e *env) integrationsTest() *cobra.Command {
	c := &cobra.Command{
		Use:   "test ID",
		Short: "Diagnose an integration: each check ok or failed, with what to do (exit 1 when one failed)",
		Args:  exactArgs("ID"),
	}
	c.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		cl, err := e.client()
		if err != nil {
			return err
		}
		var d api.Diagnosis
		raw, err := cl.send(ctx, http.MethodPost, pathf("/integrations/%s/test", args[0]), nil, &d)
		if err != nil {
			return fmt.Errorf("test integration %s: %w", args[0], err)
		}
		failed := 0
		for _, ch := range d.Checks {
			if !ch.OK {
				failed++
			}
		}
		if e.json {
			if err := printRaw(e.stdout, raw); err != nil {
				return err
			}
		} else {
			t := newTable(e.stdout, "", "CHECK", "DETAIL", "HINT")
			for _, ch := range d.Checks {
				mark := "✓"
				switch {
				case !ch.OK:
					mark = "✗"
				case ch.Warning:
					mark = "!"
				}
				t.row(mark, ch.Name, ch.Detail, ch.Hint)
			}
			if err := t.flush(); err != nil {
				return err
			}
		}
		if failed > 0 || !d.OK {
			return &exitError{code: ExitFailure, msg: fmt.Sprintf("%d of %d checks failed", failed, len(d.Checks))}
		}
		return nil
	})
	return c
}

// getCommand is `get ID`: it reads /<resource>/ID and prints it, raw with --json, else with
// show.
func getCommand[T any](e *env, resource, noun, short string, show func(T) error) *cobra.Command {
	c := &cobra.Command{Use: "get ID", Short: short, Args: exactArgs("ID")}
	c.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		cl, err := e.client()
		if err != nil {
			return err
		}
		var v T
		raw, err := cl.get(ctx, pathf("/"+resource+"/%s", args[0]), nil, &v)
		if err != nil {
			return fmt.Errorf("get %s %s: %w", noun, args[0], err)
		}
		if e.json {
			return printRaw(e.stdout, raw)
		}
		return show(v)
	})
	return c
}

// integrationsJob is a verb that starts a job on an integration (refresh, reconcile).
func (e *env) integrationsJob(verb, short string) *cobra.Command {
	return e.jobVerb("integrations", "integration", verb, short)
}

// jobVerb is a command `VERB ID` that POSTs /<resource>/ID/<verb> and is answered by a job,
// waited for with --wait.
func (e *env) jobVerb(resource, noun, verb, short string) *cobra.Command {
	var wait bool
	c := &cobra.Command{
		Use:   verb + " ID",
		Short: short,
		Args:  exactArgs("ID"),
	}
	c.Flags().BoolVar(&wait, "wait", false, "wait for the job to finish, showing its progress")
	c.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		cl, err := e.client()
		if err != nil {
			return err
		}
		raw, err := cl.send(ctx, http.MethodPost, pathf("/"+resource+"/%s/"+verb, args[0]), nil, nil)
		if err != nil {
			return fmt.Errorf("%s %s %s: %w", verb, noun, args[0], err)
		}
		return e.jobStarted(ctx, cl, raw, wait, verb+" "+args[0])
	})
	return c
}

// integrationsStatus is suspend or resume.
func (e *env) integrationsStatus(verb, short string) *cobra.Command {
	c := &cobra.Command{
		Use:   verb + " ID",
		Short: short,
		Args:  exactArgs("ID"),
	}
	c.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		cl, err := e.client()
		if err != nil {
			return err
		}
		var in api.Integration
		raw, err := cl.send(ctx, http.MethodPost, pathf("/integrations/%s/"+verb, args[0]), nil, &in)
		if err != nil {
			return fmt.Errorf("%s integration %s: %w", verb, args[0], err)
		}
		if e.json {
			return printRaw(e.stdout, raw)
		}
		fmt.Fprintf(e.stdout, "Integration %s is %s.\n", in.ID, in.Status)
		return nil
	})
	return c
}

// integrationsFlow prints the browser URL of an App flow (manifest, install).
func (e *env) integrationsFlow(use, step, short string) *cobra.Command {
	var user string
	c := &cobra.Command{
		Use:   use + " ID",
		Short: short,
		Args:  exactArgs("ID"),
	}
	if step == "install" {
		c.Flags().StringVar(&user, "user", "", "the person installing (their credential is stored when the host returns one)")
	}
	c.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		cl, err := e.client()
		if err != nil {
			return err
		}
		var in api.Integration
		if _, err := cl.get(ctx, pathf("/integrations/%s", args[0]), nil, &in); err != nil {
			return fmt.Errorf("get integration %s: %w", args[0], err)
		}
		var q url.Values
		if user != "" {
			q = url.Values{"user": {user}}
		}
		var flow api.AppFlow
		raw, err := cl.get(ctx, pathf("/integrations/%s/%s/"+step, in.ID, in.Kind), q, &flow)
		if err != nil {
			return fmt.Errorf("start the %s flow of integration %s: %w", step, args[0], err)
		}
		if e.json {
			return printRaw(e.stdout, raw)
		}
		fmt.Fprintln(e.stdout, flow.URL)
		fmt.Fprintf(e.stderr, "Open this URL in a browser before %s.\n", ts(flow.ExpiresAt))
		return nil
	})
	return c
}
