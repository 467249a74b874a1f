package api

import (
	"context"
	"encoding/json"
	"html/template"
	"net/http"
	"time"

	"github.com/forgeway/forgeway/internal/catalog"
	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/problem"
	"github.com/forgeway/forgeway/internal/store"
)

// A browser flow (creating an App on the host, installing it) is bound to an integration by
// a random single-use state kept in the store for flowTTL.
type flowState struct {
	IntegrationID string    `json:"integration_id"`
	Step          string    `json:"step"` // manifest, install
	User          string    `json:"user,omitempty"`
	Expires       time.Time `json:"expires"`
}

func (s *Server) newFlow(ctx context.Context, f flowState) (string, error) {
	state := NewTokenValue()[4:]
	f.Expires = s.now().Add(flowTTL).UTC()
	raw, _ := json.Marshal(f)
	if err := s.st.PutKV(ctx, "flow/"+state, raw); err != nil {
		return "", err
	}
	return state, nil
}

// takeFlow reads and deletes a flow state; ok is false when it is unknown or expired.
func (s *Server) takeFlow(ctx context.Context, state string, keep bool) (flowState, bool) {
	var f flowState
	if state == "" || len(state) > 100 {
		return f, false
	}
	raw, err := s.st.GetKV(ctx, "flow/"+state)
	if err != nil || json.Unmarshal(raw, &f) != nil {
		return f, false
	}
	if !keep {
		_ = s.st.DeleteKV(ctx, "flow/"+state)
	}
	return f, s.now().Before(f.Expires)
}

// supports reports whether a driver offers a browser flow's step: "manifest" (creating the
// App on the host) or "install" (installing or authorizing it, as a person).
func supports(d forge.Driver, step string) bool {
	switch step {
	case "manifest":
		_, ok := d.(forge.AppManifest)
		return ok
	case "install":
		_, ok := d.(forge.Authorizer)
		return ok
	}
	return false
}

// appSetup finds the path's integration, answering for a kind whose driver lacks the step.
func (s *Server) appSetup(w http.ResponseWriter, r *http.Request, step string) (store.Integration, bool) {
	rec, ok := s.loadIntegration(w, r)
	if !ok {
		return rec, false
	}
	if rec.Kind != r.PathValue("kind") {
		problem.Send(w, http.StatusNotFound, "not-found", "No such flow for this integration", "the integration is a "+rec.Kind+" integration", "")
		return rec, false
	}
	d, err := s.ints.Driver(rec.Kind)
	if err != nil {
		s.fail(w, r, "app setup", err)
		return rec, false
	}
	if !supports(d, step) {
		what := map[string]string{"manifest": "cannot create its app for you", "install": "has no browser authorization flow"}[step]
		problem.Send(w, http.StatusNotImplemented, "unsupported", rec.Kind+" "+what, "", "See docs/hosts/"+rec.Kind+".md for how to connect it.")
		return rec, false
	}
	return rec, true
}

func (s *Server) startManifest(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.appSetup(w, r, "manifest")
	if !ok {
		return
	}
	state, err := s.newFlow(r.Context(), flowState{IntegrationID: rec.ID, Step: "manifest"})
	if err != nil {
		s.fail(w, r, "start app creation", err)
		return
	}
	writeJSON(w, http.StatusOK, AppFlow{URL: s.ints.PublicURL() + "/callback/" + rec.Kind + "/manifest?state=" + state, ExpiresAt: s.now().Add(flowTTL).UTC()})
}

func (s *Server) startInstall(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.appSetup(w, r, "install")
	if !ok {
		return
	}
	state, err := s.newFlow(r.Context(), flowState{IntegrationID: rec.ID, Step: "install", User: r.URL.Query().Get("user")})
	if err != nil {
		s.fail(w, r, "start installation", err)
		return
	}
	writeJSON(w, http.StatusOK, AppFlow{URL: s.ints.PublicURL() + "/callback/" + rec.Kind + "/install?state=" + state, ExpiresAt: s.now().Add(flowTTL).UTC()})
}

var manifestPage = template.Must(template.New("m").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Create the App — Forgeway</title></head>
<body><main>
<h1>Create the App on {{.Host}}</h1>
<p>Forgeway will ask {{.Host}} to create an App with the permissions and events it needs. You can review everything on the next page before you confirm.</p>
<form id="manifest" method="post" action="{{.Action}}">
<input type="hidden" name="manifest" value="{{.Manifest}}">
<button type="submit">Continue to {{.Host}}</button>
</form>
<script>document.getElementById('manifest').submit();</script>
</main></body></html>`))

var messagePage = template.Must(template.New("p").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} — Forgeway</title></head>
<body><main><h1>{{.Title}}</h1><p>{{.Detail}}</p>{{if .Link}}<p><a href="{{.Link}}">{{.LinkText}}</a></p>{{end}}</main></body></html>`))

type pageData struct{ Title, Detail, Link, LinkText string }

func htmlPage(w http.ResponseWriter, status int, p pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = messagePage.Execute(w, p)
}

// flowTarget loads what a browser flow acts on: its integration (of the path's kind), its
// driver (which offers the step), and the integration's opened secrets; it answers the
// browser itself when one is missing.
func (s *Server) flowTarget(w http.ResponseWriter, r *http.Request, f flowState, step string) (store.Integration, forge.Driver, forge.Integration, bool) {
	rec, err := s.st.GetIntegration(r.Context(), f.IntegrationID)
	if err != nil || rec.Kind != r.PathValue("kind") {
		htmlPage(w, http.StatusNotFound, pageData{Title: "Integration not found", Detail: "The integration this link was made for no longer exists."})
		return rec, nil, forge.Integration{}, false
	}
	d, _ := s.ints.Driver(rec.Kind)
	if d == nil || !supports(d, step) {
		htmlPage(w, http.StatusNotFound, pageData{Title: "Not available", Detail: rec.Kind + " has no such browser flow."})
		return rec, nil, forge.Integration{}, false
	}
	fi, _, err := s.ints.Open(rec)
	if err != nil {
		htmlPage(w, http.StatusInternalServerError, pageData{Title: "Cannot continue", Detail: "The integration's secrets could not be read; see the server log."})
		return rec, nil, fi, false
	}
	return rec, d, fi, true
}

// flowPage is the browser side: the manifest form and the redirect to installation.
func (s *Server) flowPage(step string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f, ok := s.takeFlow(r.Context(), r.URL.Query().Get("state"), true)
		if !ok || f.Step != step {
			htmlPage(w, http.StatusBadRequest, pageData{Title: "This link has expired", Detail: "Start again from Forgeway: links for creating or installing an App are valid for one hour."})
			return
		}
		rec, d, fi, ok := s.flowTarget(w, r, f, step)
		if !ok {
			return
		}
		state := r.URL.Query().Get("state")
		if step == "install" {
			u, err := d.(forge.Authorizer).InstallURL(fi, state)
			if err != nil {
				htmlPage(w, http.StatusConflict, pageData{Title: "The App is not created yet", Detail: err.Error()})
				return
			}
			http.Redirect(w, r, u, http.StatusFound)
			return
		}
		base := s.ints.PublicURL()
		action, manifest, err := d.(forge.AppManifest).ManifestForm(fi, forge.AppURLs{
			Homepage: base, Callback: base + "/callback/" + rec.Kind, Setup: base + "/callback/" + rec.Kind,
			Webhook: s.ints.AppWebhookURL(rec.Kind), State: state,
		})
		if err != nil {
			htmlPage(w, http.StatusConflict, pageData{Title: "Cannot create the App", Detail: err.Error()})
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_ = manifestPage.Execute(w, map[string]string{"Host": fi.BaseURL, "Action": action, "Manifest": string(manifest)})
	}
}

// callback is where the host sends the browser back: after the App was created from the
// manifest (code + state), and after installation (installation_id, setup_action, and with
// "Request user authorization (OAuth) during installation" a code).
func (s *Server) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if errCode := q.Get("error"); errCode != "" {
		htmlPage(w, http.StatusBadRequest, pageData{Title: "The host refused", Detail: errCode + ": " + q.Get("error_description")})
		return
	}
	f, ok := s.takeFlow(r.Context(), q.Get("state"), false)
	if !ok {
		if q.Get("installation_id") != "" {
			htmlPage(w, http.StatusOK, pageData{Title: "Installation received", Detail: "The App was installed outside a Forgeway link; its installation webhook will record it. To store your own authorization, start the installation from Forgeway."})
			return
		}
		htmlPage(w, http.StatusBadRequest, pageData{Title: "This link has expired", Detail: "Start again from Forgeway: the state in this link is unknown, used or older than one hour."})
		return
	}
	step := "install"
	if f.Step == "manifest" && q.Get("installation_id") == "" {
		step = "manifest"
	}
	rec, d, fi, ok := s.flowTarget(w, r, f, step)
	if !ok {
		return
	}
	env, err := s.ints.Env(rec)
	if err != nil {
		htmlPage(w, http.StatusUnprocessableEntity, pageData{Title: "Cannot reach the host", Detail: err.Error()})
		return
	}
	code := q.Get("code")
	switch step {
	case "manifest":
		if code == "" {
			htmlPage(w, http.StatusBadRequest, pageData{Title: "No code", Detail: "The host sent no code to convert."})
			return
		}
		settings, secrets, err := d.(forge.AppManifest).ConvertManifest(r.Context(), fi, env, code)
		if err != nil {
			htmlPage(w, http.StatusBadGateway, pageData{Title: "The App could not be created", Detail: err.Error()})
			return
		}
		if err := s.storeApp(r.Context(), &rec, settings, secrets); err != nil {
			htmlPage(w, http.StatusUnprocessableEntity, pageData{Title: "The App's credentials were refused", Detail: err.Error()})
			return
		}
		state, err := s.newFlow(r.Context(), flowState{IntegrationID: rec.ID, Step: "install", User: f.User})
		if err != nil {
			htmlPage(w, http.StatusInternalServerError, pageData{Title: "Cannot continue", Detail: "see the server log"})
			return
		}
		htmlPage(w, http.StatusOK, pageData{Title: "App created", Detail: "The App's credentials are stored, encrypted. Install it on the accounts whose repositories Forgeway should reach.", Link: s.ints.PublicURL() + "/callback/" + rec.Kind + "/install?state=" + state, LinkText: "Install the App"})
	default:
		installation := q.Get("installation_id")
		if installation != "" {
			if err := s.recordInstallation(r.Context(), rec.ID, installation); err != nil {
				s.log.Error("record installation", "integration", rec.ID, "err", err)
				htmlPage(w, http.StatusInternalServerError, pageData{Title: "Cannot record the installation", Detail: "see the server log"})
				return
			}
		}
		login := ""
		if code != "" {
			cred, err := d.(forge.Authorizer).ExchangeCode(r.Context(), fi, env, code)
			if err != nil {
				htmlPage(w, http.StatusBadGateway, pageData{Title: "Your authorization could not be completed", Detail: err.Error()})
				return
			}
			user := f.User
			if user == "" {
				user = cred.Login
			}
			if err := s.ints.PutUserCredential(r.Context(), s.st, rec.ID, user, cred); err != nil {
				htmlPage(w, http.StatusInternalServerError, pageData{Title: "Cannot store your authorization", Detail: "see the server log"})
				return
			}
			login = cred.Login
		}
		detail := "Forgeway is discovering the repositories it can reach."
		if login != "" {
			detail = "Your authorization as " + login + " is stored. " + detail
		}
		htmlPage(w, http.StatusOK, pageData{Title: "Installed", Detail: detail})
	}
}

// storeApp keeps the App's credentials from the manifest conversion; the App's webhook
// secret becomes the integration's.
func (s *Server) storeApp(ctx context.Context, rec *store.Integration, settings, sec map[string]string) error {
	changes := map[string]*string{}
	for k, v := range settings {
		changes[k] = &v
	}
	secChanges := map[string]*string{}
	for k, v := range sec {
		if k != forge.SecretWebhook {
			secChanges[k] = &v
		}
	}
	if err := s.ints.ApplyChanges(rec, changes, secChanges); err != nil {
		return err
	}
	if ws := sec[forge.SecretWebhook]; ws != "" {
		if err := s.ints.RotateWebhookSecret(rec, ws); err != nil {
			return err
		}
		rec.WebhookPrev = nil
	}
	rec.Status = store.StatusInstalling
	defer s.ints.Forget(rec.ID)
	return s.st.UpdateIntegration(ctx, rec)
}

func (s *Server) recordInstallation(ctx context.Context, integrationID, installation string) error {
	err := s.st.Tx(ctx, func(tx store.Tx) error {
		rec, err := tx.GetIntegration(ctx, integrationID)
		if err != nil {
			return err
		}
		if err := tx.UpsertInstallation(ctx, &store.Installation{IntegrationID: integrationID, ID: installation, Status: "active"}); err != nil {
			return err
		}
		catalog.AddRoute(&rec, forge.InstallationRoute(installation))
		rec.Status, rec.StatusNote = store.StatusActive, ""
		if err := tx.UpdateIntegration(ctx, &rec); err != nil {
			return err
		}
		_, _, err = tx.InsertJob(ctx, catalog.DiscoverJob(integrationID))
		return err
	})
	if err != nil {
		return err
	}
	s.ints.Forget(integrationID)
	s.notify()
	return nil
}
