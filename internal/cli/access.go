package cli

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/spf13/cobra"

	"github.com/forgeway/forgeway/internal/api"
)

func (e *env) tokensCommand() *cobra.Command {
	g := e.group("tokens", "API tokens (admin)", e.tokensList(), e.tokensCreate(), e.tokensDelete())
	g.Aliases = []string{"token"}
	return g
}

func (e *env) tokensList() *cobra.Command {
	c := &cobra.Command{
		Use:   "list",
		Short: "List API tokens (their values are never shown again)",
		Args:  cobra.NoArgs,
	}
	c.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		cl, err := e.client()
		if err != nil {
			return err
		}
		list, err := cl.listAll(ctx, "/tokens", nil, 0, "")
		if err != nil {
			return fmt.Errorf("list tokens: %w", err)
		}
		if e.json {
			return printJSON(e.stdout, list)
		}
		items, err := decodeItems[api.Token](list.Items)
		if err != nil {
			return err
		}
		t := newTable(e.stdout, "ID", "NAME", "SCOPE", "CREATED", "LAST USED")
		for _, tk := range items {
			t.row(tk.ID, tk.Name, tokenScope(tk), ts(tk.CreatedAt), tsp(tk.LastUsed))
		}
		return t.flush()
	})
	return c
}

func tokenScope(t api.Token) string {
	if t.Admin {
		return "admin"
	}
	return "project " + t.ProjectID
}

func (e *env) tokensCreate() *cobra.Command {
	var in api.TokenCreate
	c := &cobra.Command{
		Use:   "create --name N (--admin | --project P)",
		Short: "Create an API token; its value is printed once",
		Args:  cobra.NoArgs,
	}
	c.Flags().StringVar(&in.Name, "name", "", "what the token is for (required)")
	c.Flags().BoolVar(&in.Admin, "admin", false, "an admin token (every integration, tokens, jobs)")
	c.Flags().StringVar(&in.ProjectID, "project", "", "a token scoped to this project's integrations")
	c.MarkFlagsMutuallyExclusive("admin", "project")
	c.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		if strings.TrimSpace(in.Name) == "" {
			return usagef("--name is required")
		}
		if !in.Admin && in.ProjectID == "" {
			return usagef("give --admin or --project")
		}
		cl, err := e.client()
		if err != nil {
			return err
		}
		var tk api.Token
		raw, err := cl.send(ctx, http.MethodPost, "/tokens", in, &tk)
		if err != nil {
			return fmt.Errorf("create token: %w", err)
		}
		if e.json {
			return printRaw(e.stdout, raw)
		}
		// The value goes to stdout alone so that it can be captured; the advice to stderr.
		fmt.Fprintln(e.stdout, tk.Token)
		fmt.Fprintf(e.stderr, "Created token %s (%s, %s). Its value is shown once: store it now.\n", tk.ID, tk.Name, tokenScope(tk))
		return nil
	})
	return c
}

func (e *env) tokensDelete() *cobra.Command {
	c := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete an API token",
		Args:  exactArgs("ID"),
	}
	c.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		cl, err := e.client()
		if err != nil {
			return err
		}
		if _, err := cl.send(ctx, http.MethodDelete, pathf("/tokens/%s", args[0]), nil, nil); err != nil {
			return fmt.Errorf("delete token %s: %w", args[0], err)
		}
		if !e.json {
			fmt.Fprintf(e.stdout, "Deleted token %s.\n", args[0])
		}
		return nil
	})
	return c
}

func (e *env) projectsCommand() *cobra.Command {
	list := &cobra.Command{
		Use:   "list",
		Short: "List projects",
		Args:  cobra.NoArgs,
	}
	list.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		cl, err := e.client()
		if err != nil {
			return err
		}
		l, err := cl.listAll(ctx, "/projects", nil, 0, "")
		if err != nil {
			return fmt.Errorf("list projects: %w", err)
		}
		if e.json {
			return printJSON(e.stdout, l)
		}
		items, err := decodeItems[api.Project](l.Items)
		if err != nil {
			return err
		}
		t := newTable(e.stdout, "ID", "NAME", "CREATED")
		for _, p := range items {
			t.row(p.ID, p.Name, ts(p.CreatedAt))
		}
		return t.flush()
	})
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a project (admin)",
		Args:  exactArgs("NAME"),
	}
	create.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		cl, err := e.client()
		if err != nil {
			return err
		}
		var p api.Project
		raw, err := cl.send(ctx, http.MethodPost, "/projects", api.Project{Name: args[0]}, &p)
		if err != nil {
			return fmt.Errorf("create project %s: %w", args[0], err)
		}
		if e.json {
			return printRaw(e.stdout, raw)
		}
		fmt.Fprintf(e.stdout, "Created project %s (%s).\n", p.ID, p.Name)
		return nil
	})
	g := e.group("projects", "Projects (tenants): integrations and tokens belong to them", list, create)
	g.Aliases = []string{"project"}
	return g
}

func (e *env) credentialsCommand() *cobra.Command {
	get := &cobra.Command{
		Use:   "get USER INTEGRATION",
		Short: "Whether a person has a credential on an integration, and whose it is",
		Args:  exactArgs("USER", "INTEGRATION"),
	}
	get.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		cl, err := e.client()
		if err != nil {
			return err
		}
		var c api.Credential
		raw, err := cl.get(ctx, pathf("/users/%s/credentials/%s", args[0], args[1]), nil, &c)
		if err != nil {
			return fmt.Errorf("get the credential of %s on %s: %w", args[0], args[1], err)
		}
		if e.json {
			return printRaw(e.stdout, raw)
		}
		return e.printCredential(c)
	})

	var tokenFile, login string
	set := &cobra.Command{
		Use:   "set USER INTEGRATION [--token-file PATH] [--login L]",
		Short: "Store a person's own token on an integration (read from --token-file or standard input)",
		Args:  exactArgs("USER", "INTEGRATION"),
	}
	set.Flags().StringVar(&tokenFile, "token-file", "", "file holding the token (default: standard input)")
	set.Flags().StringVar(&login, "login", "", "the person's login on the host")
	set.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		var tok string
		var err error
		if tokenFile != "" {
			tok, err = readSecretFile(tokenFile)
		} else {
			tok, err = readSecretStdin(e)
		}
		if err != nil {
			return fmt.Errorf("read the token: %w", err)
		}
		cl, err := e.client()
		if err != nil {
			return err
		}
		var c api.Credential
		raw, err := cl.send(ctx, http.MethodPut, pathf("/users/%s/credentials/%s", args[0], args[1]), api.CredentialPut{Token: tok, Login: login}, &c)
		if err != nil {
			return fmt.Errorf("store the credential of %s on %s: %w", args[0], args[1], err)
		}
		if e.json {
			return printRaw(e.stdout, raw)
		}
		return e.printCredential(c)
	})

	del := &cobra.Command{
		Use:   "delete USER INTEGRATION",
		Short: "Delete a person's credential",
		Args:  exactArgs("USER", "INTEGRATION"),
	}
	del.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		cl, err := e.client()
		if err != nil {
			return err
		}
		if _, err := cl.send(ctx, http.MethodDelete, pathf("/users/%s/credentials/%s", args[0], args[1]), nil, nil); err != nil {
			return fmt.Errorf("delete the credential of %s on %s: %w", args[0], args[1], err)
		}
		if !e.json {
			fmt.Fprintf(e.stdout, "Deleted the credential of %s on %s.\n", args[0], args[1])
		}
		return nil
	})
	g := e.group("credentials", "People's own tokens, used to act as them", get, set, del)
	g.Aliases = []string{"credential"}
	return g
}

func (e *env) printCredential(c api.Credential) error {
	t := newTable(e.stdout, "USER", "INTEGRATION", "SET", "LOGIN", "EXPIRES", "UPDATED")
	t.row(c.User, c.IntegrationID, yesNo(c.Set), c.Login, tsp(c.ExpiresAt), ts(c.UpdatedAt))
	return t.flush()
}
