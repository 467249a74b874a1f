package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/forgeway/forgeway/internal/api"
	"github.com/forgeway/forgeway/internal/forge"
)

func (e *env) reposCommand() *cobra.Command {
	g := e.group("repos", "The catalog: list, attach, sync, push, branches and pull requests",
		e.reposList(),
		e.reposGet(),
		e.reposJob("attach", "Attach: create the hooks on the host and mirror the repository"),
		e.reposJob("detach", "Detach: remove the hooks from the host and the mirror"),
		e.reposJob("sync", "Fetch the mirror now"),
		e.reposPush(),
		e.reposBranches(),
		e.reposBranch(),
		e.reposPR(),
	)
	g.Aliases = []string{"repositories", "repo"}
	return g
}

// pageFlags are --limit and --cursor of paginated lists.
type pageFlags struct {
	limit  int
	cursor string
}

func (p *pageFlags) register(c *cobra.Command) {
	c.Flags().IntVar(&p.limit, "limit", 0, "fetch one page of at most this many items (default: every page)")
	c.Flags().StringVar(&p.cursor, "cursor", "", "start at this cursor (next_cursor of a previous page)")
}

func (p *pageFlags) check() error {
	if p.limit < 0 {
		return usagef("--limit must be positive")
	}
	if p.cursor != "" && p.limit == 0 {
		return usagef("--cursor needs --limit (without it every page is fetched)")
	}
	return nil
}

// morePages tells, after one page of a table, how to fetch the next one.
func (e *env) morePages(next string) {
	if next != "" {
		fmt.Fprintf(e.stderr, "More items: add --cursor %s\n", next)
	}
}

func (e *env) reposList() *cobra.Command {
	var integration, q, group string
	var attached, matched bool
	var pg pageFlags
	c := &cobra.Command{
		Use:   "list",
		Short: "List the catalog",
		Args:  cobra.NoArgs,
	}
	c.Flags().StringVar(&integration, "integration", "", "only this integration's repositories (required with a project token)")
	c.Flags().StringVar(&q, "q", "", "only names containing this text")
	c.Flags().StringVar(&group, "group", "", "only this org, group or project")
	c.Flags().BoolVar(&attached, "attached", false, "only attached repositories (--attached=false: only the others)")
	c.Flags().BoolVar(&matched, "matched", false, "only repositories the filter keeps (--matched=false: only the others)")
	pg.register(c)
	c.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		if err := pg.check(); err != nil {
			return err
		}
		v := url.Values{}
		for k, s := range map[string]string{"integration": integration, "q": q, "group": group} {
			if s != "" {
				v.Set(k, s)
			}
		}
		if cmd.Flags().Changed("attached") {
			v.Set("attached", strconv.FormatBool(attached))
		}
		if cmd.Flags().Changed("matched") {
			v.Set("matched", strconv.FormatBool(matched))
		}
		cl, err := e.client()
		if err != nil {
			return err
		}
		list, err := cl.listAll(ctx, "/repositories", v, pg.limit, pg.cursor)
		if err != nil {
			return fmt.Errorf("list repositories: %w", err)
		}
		if e.json {
			return printJSON(e.stdout, list)
		}
		items, err := decodeItems[api.Repository](list.Items)
		if err != nil {
			return err
		}
		t := newTable(e.stdout, "ID", "FULL NAME", "DEFAULT BRANCH", "VISIBILITY", "ATTACHED", "HOOKS", "MIRROR")
		for _, r := range items {
			mirror := ""
			if r.Mirror != nil {
				mirror = r.Mirror.Status
			}
			t.row(r.ID, r.FullName, r.DefaultBranch, r.Visibility, yesNo(r.Attached), r.HookStatus, mirror)
		}
		if err := t.flush(); err != nil {
			return err
		}
		e.morePages(list.NextCursor)
		return nil
	})
	return c
}

func (e *env) reposGet() *cobra.Command {
	return getCommand(e, "repositories", "repository", "Show a repository", func(r api.Repository) error {
		f := newFields(e.stdout)
		f.add("ID", r.ID)
		f.add("Full name", r.FullName)
		f.add("Integration", r.IntegrationID)
		f.add("Host id", r.HostID)
		f.add("Group", r.Group)
		f.add("Default branch", r.DefaultBranch)
		f.add("Visibility", r.Visibility)
		f.add("Archived", yesNo(r.Archived))
		f.add("Fork", yesNo(r.Fork))
		f.add("Permission", r.Permission)
		f.add("Description", r.Description)
		f.add("Web URL", r.WebURL)
		f.add("Clone URL", r.CloneURL)
		f.add("Installation", r.Installation)
		f.add("Matched by filter", yesNo(r.Matched))
		f.add("Attached", yesNo(r.Attached))
		hooks := r.HookStatus
		if r.HookError != "" {
			hooks += ": " + r.HookError
		}
		f.add("Hooks", hooks)
		if m := r.Mirror; m != nil {
			mirror := m.Status
			if m.Head != "" {
				mirror += ", head " + m.Head
			}
			if m.SyncedAt != nil {
				mirror += fmt.Sprintf(", synced %s (%d syncs)", tsp(m.SyncedAt), m.SyncCount)
			}
			if m.Error != "" {
				mirror += ": " + m.Error
			}
			f.add("Mirror", mirror)
		}
		f.add("Seen", ts(r.SeenAt))
		return f.flush()
	})
}

// reposJob is attach, detach or sync: a POST answered by a job.
func (e *env) reposJob(verb, short string) *cobra.Command {
	return e.jobVerb("repositories", "repository", verb, short)
}

func (e *env) reposPush() *cobra.Command {
	var user string
	var wait bool
	c := &cobra.Command{
		Use:     "push ID REFSPEC...",
		Short:   "Push refs from the mirror to the host",
		Example: "  forgeway repos push rep_123 refs/heads/feature:refs/heads/feature --user alice --wait",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return fmt.Errorf("%s takes a repository ID and at least one REFSPEC", cmd.CommandPath())
			}
			return nil
		},
	}
	c.Flags().StringVar(&user, "user", "", "push as this person (their stored credential)")
	c.Flags().BoolVar(&wait, "wait", false, "wait for the push to finish, showing its progress")
	c.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		cl, err := e.client()
		if err != nil {
			return err
		}
		body := api.PushRequest{Refspecs: args[1:], User: user}
		raw, err := cl.send(ctx, http.MethodPost, pathf("/repositories/%s/push", args[0]), body, nil)
		if err != nil {
			return fmt.Errorf("push to repository %s: %w", args[0], err)
		}
		return e.jobStarted(ctx, cl, raw, wait, "push "+args[0])
	})
	return c
}

func (e *env) reposBranches() *cobra.Command {
	c := &cobra.Command{
		Use:   "branches ID",
		Short: "List a repository's branches on the host",
		Args:  exactArgs("ID"),
	}
	c.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		cl, err := e.client()
		if err != nil {
			return err
		}
		list, err := cl.listAll(ctx, pathf("/repositories/%s/branches", args[0]), nil, 0, "")
		if err != nil {
			return fmt.Errorf("list branches of %s: %w", args[0], err)
		}
		if e.json {
			return printJSON(e.stdout, list)
		}
		refs, err := decodeItems[forge.Ref](list.Items)
		if err != nil {
			return err
		}
		t := newTable(e.stdout, "NAME", "SHA")
		for _, r := range refs {
			t.row(r.Name, r.SHA)
		}
		return t.flush()
	})
	return c
}

func (e *env) reposBranch() *cobra.Command {
	var sha, user string
	c := &cobra.Command{
		Use:   "branch ID NAME",
		Short: "Create a branch on the host (from the default branch's head unless --sha)",
		Args:  exactArgs("ID", "NAME"),
	}
	c.Flags().StringVar(&sha, "sha", "", "commit the branch starts at (40 hex digits)")
	c.Flags().StringVar(&user, "user", "", "create it as this person (their stored credential)")
	c.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		cl, err := e.client()
		if err != nil {
			return err
		}
		var ref forge.Ref
		body := api.BranchCreate{Name: args[1], SHA: sha, User: user}
		raw, err := cl.send(ctx, http.MethodPost, pathf("/repositories/%s/branches", args[0]), body, &ref)
		if err != nil {
			return fmt.Errorf("create branch %s on %s: %w", args[1], args[0], err)
		}
		if e.json {
			return printRaw(e.stdout, raw)
		}
		fmt.Fprintf(e.stdout, "Created %s at %s.\n", ref.Name, ref.SHA)
		return nil
	})
	return c
}

func (e *env) reposPR() *cobra.Command {
	var body api.PullCreate
	c := &cobra.Command{
		Use:   "pr ID --title T --source BRANCH [flags]",
		Short: "Open a pull request (merge request)",
		Args:  exactArgs("ID"),
	}
	fl := c.Flags()
	fl.StringVar(&body.Title, "title", "", "title (required)")
	fl.StringVar(&body.Source, "source", "", "branch with the changes (required)")
	fl.StringVar(&body.Target, "target", "", "branch to merge into (default: the default branch)")
	fl.StringVar(&body.Body, "body", "", "description")
	fl.BoolVar(&body.Draft, "draft", false, "open it as a draft")
	fl.StringVar(&body.User, "user", "", "open it as this person (their stored credential)")
	c.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		if body.Title == "" || body.Source == "" {
			return usagef("--title and --source are required")
		}
		cl, err := e.client()
		if err != nil {
			return err
		}
		var pr forge.PullRequest
		raw, err := cl.send(ctx, http.MethodPost, pathf("/repositories/%s/pulls", args[0]), body, &pr)
		if err != nil {
			return fmt.Errorf("open pull request on %s: %w", args[0], err)
		}
		if e.json {
			return printRaw(e.stdout, raw)
		}
		fmt.Fprintf(e.stdout, "Opened pull request #%d: %s\n", pr.Number, pr.URL)
		return nil
	})
	return c
}
