package catalog

import (
	"context"
	"errors"
	"fmt"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/store"
)

// Apply writes what a delivery means for the catalog, inside the transaction that records
// the delivery's events, and enqueues the follow-up work (mirror syncs for pushes to attached
// repositories, a discovery when an installation gained repositories). Everything it does is
// idempotent, so a delivery processed again changes nothing more.
func (s *Service) Apply(ctx context.Context, tx store.Tx, rec store.Integration, res forge.Result) error {
	filter, err := CompileFilter(rec.Filter)
	if err != nil {
		filter = &Filter{}
	}
	upsert := func(fr forge.Repository) error {
		r := FromForge(rec.ID, fr)
		r.SeenAt = s.now().UTC()
		r.Matched, _ = filter.Match(r)
		if r.CloneURL == "" || r.Name == "" {
			// Partial entries (installation_repositories gives id and name) keep what the
			// catalog already knows; a discovery fills in the rest.
			if cur, err := tx.GetRepositoryByHostID(ctx, rec.ID, fr.HostID); err == nil {
				cur.FullName = orKeep(fr.FullName, cur.FullName)
				cur.Name = orKeep(fr.Name, cur.Name)
				cur.SeenAt = r.SeenAt
				cur.Matched, _ = filter.Match(cur)
				return tx.UpsertRepository(ctx, &cur)
			}
		}
		return tx.UpsertRepository(ctx, &r)
	}
	remove := func(hostID string) error {
		r, err := tx.GetRepositoryByHostID(ctx, rec.ID, hostID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if r.Attached {
			// The host no longer delivers for it: a detach removes hooks and mirror, then the entry.
			_, _, err := tx.InsertJob(ctx, store.NewJob{Kind: JobDetach, Args: repoArgs{RepositoryID: r.ID, Forget: true}, UniqueKey: "forget:" + r.ID})
			return err
		}
		return tx.DeleteRepository(ctx, r.ID)
	}
	status, statusChanged := rec.Status, false
	for _, e := range res.Effects {
		switch e := e.(type) {
		case forge.InstallationChanged:
			in := e.Installation
			if e.Status == "deleted" {
				if err := tx.DeleteInstallation(ctx, rec.ID, in.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
					return err
				}
				if err := s.removeInstallationRepos(ctx, tx, rec.ID, in.ID, remove); err != nil {
					return err
				}
			} else if err := tx.UpsertInstallation(ctx, &store.Installation{IntegrationID: rec.ID, ID: in.ID, Account: in.Account, AccountType: in.AccountType, RepositorySelection: in.RepositorySelection, Status: e.Status}); err != nil {
				return err
			}
			AddRoute(&rec, forge.InstallationRoute(in.ID))
			insts, err := tx.ListInstallations(ctx, rec.ID)
			if err != nil {
				return err
			}
			status, statusChanged = installationsStatus(insts), true
		case forge.RepositoriesAdded:
			for _, fr := range e.Repositories {
				fr.Installation = orKeep(fr.Installation, e.Installation)
				if err := upsert(fr); err != nil {
					return err
				}
			}
			if _, _, err := tx.InsertJob(ctx, DiscoverJob(rec.ID)); err != nil {
				return err
			}
		case forge.RepositoriesRemoved:
			for _, id := range e.HostIDs {
				if err := remove(id); err != nil {
					return err
				}
			}
		case forge.RepositoryChanged:
			if err := upsert(e.Repository); err != nil {
				return err
			}
		case forge.RepositoryDeleted:
			if err := remove(e.HostID); err != nil {
				return err
			}
		case forge.UserCredentialRevoked:
			if _, err := tx.DeleteUserCredentialsByLogin(ctx, rec.ID, e.Login); err != nil {
				return err
			}
		}
	}
	if statusChanged {
		cur, err := tx.GetIntegration(ctx, rec.ID)
		if err != nil {
			return err
		}
		cur.RouteKeys = rec.RouteKeys
		cur.Status = status
		if status == store.StatusSuspended {
			cur.StatusNote = "suspended on the host"
		} else {
			cur.StatusNote = ""
		}
		if err := tx.UpdateIntegration(ctx, &cur); err != nil {
			return err
		}
	}
	// A push to an attached repository moves its mirror.
	for _, ev := range res.Events {
		if ev.Type != forge.EventPush || ev.Repository == nil {
			continue
		}
		r, err := tx.GetRepositoryByHostID(ctx, rec.ID, ev.Repository.ID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("find pushed repository: %w", err)
		}
		if r.Attached {
			if _, _, err := tx.InsertJob(ctx, SyncJob(r.ID)); err != nil {
				return fmt.Errorf("enqueue sync of %s: %w", r.FullName, err)
			}
		}
	}
	return nil
}

// installationsStatus is an App integration's status from its installations: active while any
// is active, suspended when all are suspended, installing when none is left.
func installationsStatus(insts []store.Installation) string {
	if len(insts) == 0 {
		return store.StatusInstalling
	}
	for _, in := range insts {
		if in.Status != "suspended" {
			return store.StatusActive
		}
	}
	return store.StatusSuspended
}

func (s *Service) removeInstallationRepos(ctx context.Context, tx store.Tx, integrationID, installation string, remove func(string) error) error {
	f := store.RepositoryFilter{IntegrationID: integrationID, Page: store.Page{Limit: 500}}
	var ids []string
	for {
		items, next, err := tx.ListRepositories(ctx, f)
		if err != nil {
			return err
		}
		for _, r := range items {
			if r.Installation == installation {
				ids = append(ids, r.HostID)
			}
		}
		if next == "" {
			break
		}
		f.After = next
	}
	for _, id := range ids {
		if err := remove(id); err != nil {
			return err
		}
	}
	return nil
}

func orKeep(v, keep string) string {
	if v == "" {
		return keep
	}
	return v
}
