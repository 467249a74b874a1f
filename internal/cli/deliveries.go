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

func (e *env) deliveriesCommand() *cobra.Command {
	g := e.group("deliveries", "Received webhook deliveries: list, inspect, replay",
		e.deliveriesList(),
		e.deliveriesGet(),
		e.deliveriesReplay(),
	)
	g.Aliases = []string{"delivery"}
	return g
}

func (e *env) deliveriesList() *cobra.Command {
	var integration, status string
	var pg pageFlags
	c := &cobra.Command{
		Use:   "list",
		Short: "List received deliveries, newest first",
		Args:  cobra.NoArgs,
	}
	c.Flags().StringVar(&integration, "integration", "", "only this integration's deliveries (required with a project token)")
	c.Flags().StringVar(&status, "status", "", "only deliveries in this status: received, processed, ignored or failed")
	pg.register(c)
	c.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		if err := pg.check(); err != nil {
			return err
		}
		q := url.Values{}
		if integration != "" {
			q.Set("integration", integration)
		}
		if status != "" {
			q.Set("status", status)
		}
		cl, err := e.client()
		if err != nil {
			return err
		}
		list, err := cl.listAll(ctx, "/deliveries", q, pg.limit, pg.cursor)
		if err != nil {
			return fmt.Errorf("list deliveries: %w", err)
		}
		if e.json {
			return printJSON(e.stdout, list)
		}
		items, err := decodeItems[api.Delivery](list.Items)
		if err != nil {
			return err
		}
		t := newTable(e.stdout, "ID", "KIND", "EVENT", "ACTION", "STATUS", "RECEIVED")
		for _, d := range items {
			t.row(d.ID, d.Kind, d.Event, d.Action, d.Status, ts(d.ReceivedAt))
		}
		if err := t.flush(); err != nil {
			return err
		}
		e.morePages(list.NextCursor)
		return nil
	})
	return c
}

func (e *env) deliveriesGet() *cobra.Command {
	return getCommand(e, "deliveries", "delivery", "Show a delivery: outcome, headers, body and the events it produced", func(d api.Delivery) error {
		f := newFields(e.stdout)
		f.add("ID", d.ID)
		f.add("Integration", d.IntegrationID)
		f.add("Kind", d.Kind)
		f.add("Host delivery id", d.HostID)
		f.add("Event", d.Event)
		f.add("Action", d.Action)
		status := d.Status
		if d.Test {
			status += " (test delivery)"
		}
		f.add("Status", status)
		f.add("Reason", d.Reason)
		f.add("Error", d.Error)
		f.add("Received", ts(d.ReceivedAt))
		f.add("Processed", tsp(d.ProcessedAt))
		f.add("Events", strings.Join(d.EventIDs, ", "))
		if err := f.flush(); err != nil {
			return err
		}
		if len(d.Headers) > 0 {
			fmt.Fprintln(e.stdout, "\nHeaders:")
			names := make([]string, 0, len(d.Headers))
			for k := range d.Headers {
				names = append(names, k)
			}
			slices.Sort(names)
			for _, k := range names {
				for _, v := range d.Headers[k] {
					fmt.Fprintf(e.stdout, "  %s: %s\n", k, v)
				}
			}
		}
		switch {
		case len(d.Body) > 0:
			fmt.Fprintf(e.stdout, "\nBody:\n%s\n", indentJSON(d.Body))
		case d.BodyText != "":
			fmt.Fprintf(e.stdout, "\nBody:\n%s\n", d.BodyText)
		}
		for _, ev := range d.Events {
			fmt.Fprintf(e.stdout, "\nEvent:\n%s\n", indentJSON(ev))
		}
		return nil
	})
}

func (e *env) deliveriesReplay() *cobra.Command {
	var wait bool
	c := &cobra.Command{
		Use:   "replay ID",
		Short: "Process a delivery again (its events keep their ids)",
		Args:  exactArgs("ID"),
	}
	c.Flags().BoolVar(&wait, "wait", false, "wait for the processing to finish")
	c.RunE = e.do(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		cl, err := e.client()
		if err != nil {
			return err
		}
		raw, err := cl.send(ctx, http.MethodPost, pathf("/deliveries/%s/replay", args[0]), nil, nil)
		if err != nil {
			return fmt.Errorf("replay delivery %s: %w", args[0], err)
		}
		return e.jobStarted(ctx, cl, raw, wait, "replay "+args[0])
	})
	return c
}
