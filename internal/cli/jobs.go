package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/forgeway/forgeway/internal/api"
)

func (e *env) jobsCommand() *cobra.Command {
	g := e.group("jobs", "Durable work: inspect, wait for, retry",
		e.jobsGet(),
		e.jobsList(),
		e.jobsRetry(),
		e.jobsWait(),
	)
	g.Aliases = []string{"job"}
	return g
}

// jobID checks a job id argument (jobs are numbered).
func jobID(s string) (string, error) {
	if _, err := strconv.ParseInt(s, 10, 64); err != nil {
		return "", usagef("a job id is a number, got %q", s)
	}
	return s, nil
}

func (e *env) jobsGet() *cobra.Command {
	c := &cobra.Command{
		Use:   "get ID",
		Short: "Show a job: state, progress, error",
		Args:  exactArgs("ID"),
	}
	c.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		id, err := jobID(args[0])
		if err != nil {
			return err
		}
		cl, err := e.client()
		if err != nil {
			return err
		}
		var j api.Job
		raw, err := cl.get(ctx, "/jobs/"+id, nil, &j)
		if err != nil {
			return fmt.Errorf("get job %s: %w", id, err)
		}
		if e.json {
			return printRaw(e.stdout, raw)
		}
		f := newFields(e.stdout)
		f.add("ID", strconv.FormatInt(j.ID, 10))
		f.add("Kind", j.Kind)
		f.add("State", j.State)
		f.add("Attempt", attempts(j))
		f.add("Progress", progressText(j.Progress))
		f.add("Last error", j.LastError)
		if len(j.Args) > 0 {
			f.add("Arguments", string(j.Args))
		}
		f.add("Created", ts(j.CreatedAt))
		f.add("Runs at", ts(j.RunAt))
		f.add("Finished", tsp(j.FinishedAt))
		return f.flush()
	})
	return c
}

func (e *env) jobsList() *cobra.Command {
	var state, kind string
	var pg pageFlags
	c := &cobra.Command{
		Use:   "list",
		Short: "List jobs (admin; --state dead lists the dead-lettered ones)",
		Args:  cobra.NoArgs,
	}
	c.Flags().StringVar(&state, "state", "", "only jobs in this state: available, running, completed, retryable, dead or cancelled")
	c.Flags().StringVar(&kind, "kind", "", "only jobs of this kind")
	pg.register(c)
	c.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		if err := pg.check(); err != nil {
			return err
		}
		q := url.Values{}
		if state != "" {
			q.Set("state", state)
		}
		if kind != "" {
			q.Set("kind", kind)
		}
		cl, err := e.client()
		if err != nil {
			return err
		}
		list, err := cl.listAll(ctx, "/jobs", q, pg.limit, pg.cursor)
		if err != nil {
			return fmt.Errorf("list jobs: %w", err)
		}
		if e.json {
			return printJSON(e.stdout, list)
		}
		items, err := decodeItems[api.Job](list.Items)
		if err != nil {
			return err
		}
		t := newTable(e.stdout, "ID", "KIND", "STATE", "ATTEMPT", "ERROR")
		for _, j := range items {
			t.row(strconv.FormatInt(j.ID, 10), j.Kind, j.State, attempts(j), oneLine(j.LastError, 100))
		}
		if err := t.flush(); err != nil {
			return err
		}
		e.morePages(list.NextCursor)
		return nil
	})
	return c
}

func (e *env) jobsRetry() *cobra.Command {
	var wait bool
	c := &cobra.Command{
		Use:   "retry ID",
		Short: "Run a finished (dead) job again (admin)",
		Args:  exactArgs("ID"),
	}
	c.Flags().BoolVar(&wait, "wait", false, "wait for the job to finish, showing its progress")
	c.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		id, err := jobID(args[0])
		if err != nil {
			return err
		}
		cl, err := e.client()
		if err != nil {
			return err
		}
		raw, err := cl.send(ctx, http.MethodPost, "/jobs/"+id+"/retry", nil, nil)
		if err != nil {
			return fmt.Errorf("retry job %s: %w", id, err)
		}
		return e.jobStarted(ctx, cl, raw, wait, "retry "+id)
	})
	return c
}

func (e *env) jobsWait() *cobra.Command {
	c := &cobra.Command{
		Use:   "wait ID",
		Short: "Wait for a job to finish, showing its progress (exit 1 when it is dead)",
		Args:  exactArgs("ID"),
	}
	c.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		id, err := jobID(args[0])
		if err != nil {
			return err
		}
		cl, err := e.client()
		if err != nil {
			return err
		}
		var j api.Job
		raw, err := cl.get(ctx, "/jobs/"+id, nil, &j)
		if err != nil {
			return fmt.Errorf("get job %s: %w", id, err)
		}
		return e.waitJob(ctx, cl, j, raw)
	})
	return c
}
