package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/forgeway/forgeway/internal/catalog"
	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/integrations"
	"github.com/forgeway/forgeway/internal/jobs"
	"github.com/forgeway/forgeway/internal/problem"
	"github.com/forgeway/forgeway/internal/store"
)

func (s *Server) integrationResource(ctx context.Context, rec store.Integration, detail bool) Integration {
	out := Integration{
		ID: rec.ID, Kind: rec.Kind, Name: rec.Name, BaseURL: rec.BaseURL, Status: rec.Status,
		StatusNote: rec.StatusNote, Settings: rec.Settings, Secrets: s.ints.SecretKeys(rec),
		Filter: rec.Filter, Schedule: rec.Schedule, ProjectID: rec.ProjectID,
		WebhookURL: s.ints.WebhookURL(rec), Rotating: len(rec.WebhookPrev) > 0,
		CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt,
	}
	slices.Sort(out.Secrets)
	if out.Settings == nil {
		out.Settings = map[string]string{}
	}
	if out.Secrets == nil {
		out.Secrets = []string{}
	}
	for _, k := range rec.RouteKeys {
		if forge.IsAppRoute(k) {
			out.AppWebhookURL = s.ints.AppWebhookURL(rec.Kind)
		}
	}
	if b, ok := s.ints.Budgets()[rec.ID]; ok && b.Limit > 0 {
		out.Budget = &Budget{Limit: b.Limit, Remaining: b.Remaining, Reset: b.Reset}
	}
	if detail {
		insts, _ := s.st.ListInstallations(ctx, rec.ID)
		for _, in := range insts {
			out.Installations = append(out.Installations, Installation{ID: in.ID, Account: in.Account, AccountType: in.AccountType, RepositorySelection: in.RepositorySelection, Status: in.Status})
		}
	}
	return out
}

// validateIntegration is the core's own check of the filter and schedule.
func validateIntegration(filter, schedule string) error {
	if _, err := catalog.CompileFilter(filter); err != nil {
		return err
	}
	if err := jobs.ValidateSchedule(schedule); err != nil {
		return err
	}
	return nil
}

func (s *Server) listIntegrations(w http.ResponseWriter, r *http.Request) {
	recs, err := s.st.ListIntegrations(r.Context())
	if err != nil {
		s.fail(w, r, "list integrations", err)
		return
	}
	out := List[Integration]{Items: []Integration{}}
	for _, rec := range recs {
		if visible(r.Context(), rec) {
			out.Items = append(out.Items, s.integrationResource(r.Context(), rec, false))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) createIntegration(w http.ResponseWriter, r *http.Request) {
	var in IntegrationCreate
	if !decode(w, r, &in) {
		return
	}
	tok := tokenFrom(r.Context())
	if !tok.Admin {
		if in.ProjectID != "" && in.ProjectID != tok.ProjectID {
			problem.Send(w, http.StatusForbidden, "forbidden", "A project token can create integrations only in its project", "", "")
			return
		}
		in.ProjectID = tok.ProjectID
	}
	if in.Kind == "" {
		problem.Write(w, &problem.Details{Type: problem.TypeBase + "invalid-integration", Title: "The integration is not valid", Status: http.StatusUnprocessableEntity, Detail: "kind is required", Errors: []problem.FieldError{{Field: "kind", Detail: "one of the host kinds: github, gitlab, bitbucket-dc, azure-devops, gitea"}}})
		return
	}
	rec, err := s.ints.Prepare(integrations.Input{
		Kind: in.Kind, Name: in.Name, BaseURL: in.BaseURL, Settings: in.Settings, Secrets: in.Secrets,
		WebhookSecret: in.WebhookSecret, Filter: in.Filter, Schedule: in.Schedule, ProjectID: in.ProjectID,
	}, validateIntegration)
	if err != nil {
		s.fail(w, r, "create integration", err)
		return
	}
	if slices.ContainsFunc(rec.RouteKeys, forge.IsAppRoute) {
		rec.Status = store.StatusInstalling
	}
	discover := in.Discover == nil || *in.Discover
	err = s.st.Tx(r.Context(), func(tx store.Tx) error {
		if err := tx.CreateIntegration(r.Context(), &rec); err != nil {
			return err
		}
		if discover {
			_, _, err := tx.InsertJob(r.Context(), catalog.DiscoverJob(rec.ID))
			return err
		}
		return nil
	})
	if err != nil {
		s.fail(w, r, "create integration", err)
		return
	}
	s.notify()
	w.Header().Set("Location", Prefix+"/integrations/"+rec.ID)
	writeJSON(w, http.StatusCreated, s.integrationResource(r.Context(), rec, true))
}

// loadIntegration fetches the path's integration, answering 404 for one the token may not see.
func (s *Server) loadIntegration(w http.ResponseWriter, r *http.Request) (store.Integration, bool) {
	rec, err := s.st.GetIntegration(r.Context(), r.PathValue("id"))
	if err != nil || !visible(r.Context(), rec) {
		if err == nil || errors.Is(err, store.ErrNotFound) {
			problem.Send(w, http.StatusNotFound, "not-found", "Integration not found", "no integration "+r.PathValue("id"), "List them with GET /api/v1/integrations.")
		} else {
			s.fail(w, r, "load integration", err)
		}
		return rec, false
	}
	return rec, true
}

func (s *Server) getIntegration(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.loadIntegration(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.integrationResource(r.Context(), rec, true))
}

func (s *Server) patchIntegration(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.loadIntegration(w, r)
	if !ok {
		return
	}
	var p IntegrationPatch
	if !decode(w, r, &p) {
		return
	}
	if p.Name != nil {
		rec.Name = *p.Name
	}
	if p.BaseURL != nil {
		rec.BaseURL = *p.BaseURL
	}
	if p.Filter != nil {
		rec.Filter = *p.Filter
	}
	if p.Schedule != nil {
		rec.Schedule = *p.Schedule
	}
	if err := validateIntegration(rec.Filter, rec.Schedule); err != nil {
		s.fail(w, r, "update integration", errors.Join(integrations.ErrInvalid, err))
		return
	}
	if err := s.ints.ApplyChanges(&rec, p.Settings, p.Secrets); err != nil {
		s.fail(w, r, "update integration", err)
		return
	}
	if p.RotateWebhookSecret != nil {
		if err := s.ints.RotateWebhookSecret(&rec, *p.RotateWebhookSecret); err != nil {
			s.fail(w, r, "rotate webhook secret", err)
			return
		}
	} else if p.FinishRotation {
		rec.WebhookPrev = nil
	}
	filterChanged, rotating := p.Filter != nil, p.RotateWebhookSecret != nil
	err := s.st.Tx(r.Context(), func(tx store.Tx) error {
		if err := tx.UpdateIntegration(r.Context(), &rec); err != nil {
			return err
		}
		if rotating {
			// Give the hooks on the host the new secret; the job ends the rotation when done.
			if _, _, err := tx.InsertJob(r.Context(), catalog.RotateJob(rec.ID)); err != nil {
				return err
			}
		}
		if filterChanged {
			// Re-evaluate the filter on the catalog through a discovery.
			_, _, err := tx.InsertJob(r.Context(), catalog.DiscoverJob(rec.ID))
			return err
		}
		return nil
	})
	if err != nil {
		s.fail(w, r, "update integration", err)
		return
	}
	s.ints.Forget(rec.ID)
	s.notify()
	rec, _ = s.st.GetIntegration(r.Context(), rec.ID)
	writeJSON(w, http.StatusOK, s.integrationResource(r.Context(), rec, true))
}

func (s *Server) deleteIntegration(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.loadIntegration(w, r)
	if !ok {
		return
	}
	if err := s.st.DeleteIntegration(r.Context(), rec.ID); err != nil {
		s.fail(w, r, "delete integration", err)
		return
	}
	s.ints.Forget(rec.ID)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) testIntegration(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.loadIntegration(w, r)
	if !ok {
		return
	}
	client, err := s.ints.Client(r.Context(), rec)
	if err != nil {
		writeJSON(w, http.StatusOK, Diagnosis{Checks: []forge.Check{{Name: "configuration", Detail: err.Error(), Hint: "Fix the integration's settings (PATCH /api/v1/integrations/{id})."}}})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
	defer cancel()
	checks := client.Diagnose(ctx)
	if rec.Settings[integrations.SettingInsecureSkipTLS] == "true" {
		checks = append(checks, forge.Check{Name: "tls verification", OK: true, Warning: true, Detail: "TLS certificate verification is switched off for this integration", Hint: "Add the host's CA bundle (settings.ca_bundle) and remove insecure_skip_tls."})
	}
	d := Diagnosis{OK: true, Checks: checks}
	for _, c := range checks {
		if !c.OK {
			d.OK = false
		}
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) setIntegrationStatus(status string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rec, ok := s.loadIntegration(w, r)
		if !ok {
			return
		}
		if status == store.StatusActive && rec.Status != store.StatusSuspended {
			problem.Send(w, http.StatusConflict, "not-suspended", "The integration is not suspended", "its status is "+rec.Status, "")
			return
		}
		rec.Status, rec.StatusNote = status, ""
		if status == store.StatusSuspended {
			rec.StatusNote = "suspended in Forgeway"
		}
		if err := s.st.UpdateIntegration(r.Context(), &rec); err != nil {
			s.fail(w, r, "update integration", err)
			return
		}
		s.ints.Forget(rec.ID)
		writeJSON(w, http.StatusOK, s.integrationResource(r.Context(), rec, true))
	}
}

func (s *Server) refreshIntegration(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.loadIntegration(w, r)
	if !ok {
		return
	}
	if rec.Status == store.StatusSuspended {
		s.fail(w, r, "refresh", catalog.ErrSuspended)
		return
	}
	j, err := s.cat.Refresh(r.Context(), rec.ID)
	if err != nil {
		s.fail(w, r, "refresh", err)
		return
	}
	accepted(w, j)
}

func (s *Server) reconcileIntegration(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.loadIntegration(w, r)
	if !ok {
		return
	}
	j, _, err := s.st.InsertJob(r.Context(), catalog.ReconcileJob(rec.ID))
	if err != nil {
		s.fail(w, r, "reconcile", err)
		return
	}
	s.notify()
	accepted(w, j)
}

// Kind describes a host kind, the fields its integrations take, and its browser flows.
type Kind struct {
	Kind   string        `json:"kind"`
	Fields []forge.Field `json:"fields"`
	// AppManifest: Forgeway can create the host-side App (GET …/{kind}/manifest).
	AppManifest bool `json:"app_manifest"`
	// Authorize: a person can install or authorize the App in a browser (GET …/{kind}/install).
	Authorize bool `json:"authorize"`
}

func (s *Server) listKinds(w http.ResponseWriter, r *http.Request) {
	out := List[Kind]{Items: []Kind{}}
	for _, k := range s.ints.KindNames() {
		d, _ := s.ints.Driver(k)
		out.Items = append(out.Items, Kind{Kind: k, Fields: d.Fields(), AppManifest: supports(d, "manifest"), Authorize: supports(d, "install")})
	}
	writeJSON(w, http.StatusOK, out)
}
