package api

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/problem"
	"github.com/forgeway/forgeway/internal/store"
)

// NewTokenValue returns a new random API token ("fwt_" + 32 random bytes, base32).
func NewTokenValue() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return "fwt_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

func tokenResource(t store.APIToken) Token {
	out := Token{ID: t.ID, Name: t.Name, Admin: t.Admin, ProjectID: t.ProjectID, CreatedAt: t.CreatedAt}
	if !t.LastUsed.IsZero() {
		lu := t.LastUsed
		out.LastUsed = &lu
	}
	return out
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	toks, err := s.st.ListAPITokens(r.Context())
	if err != nil {
		s.fail(w, r, "list tokens", err)
		return
	}
	out := List[Token]{Items: make([]Token, 0, len(toks))}
	for _, t := range toks {
		out.Items = append(out.Items, tokenResource(t))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	var in TokenCreate
	if !decode(w, r, &in) {
		return
	}
	if strings.TrimSpace(in.Name) == "" {
		problem.Send(w, http.StatusUnprocessableEntity, "invalid-token-request", "name is required", "", "")
		return
	}
	if in.Admin == (in.ProjectID != "") {
		problem.Send(w, http.StatusUnprocessableEntity, "invalid-token-request", "A token is either admin or scoped to one project", "set admin: true, or project_id", "")
		return
	}
	if in.ProjectID != "" {
		projects, err := s.st.ListProjects(r.Context())
		if err != nil {
			s.fail(w, r, "create token", err)
			return
		}
		found := false
		for _, p := range projects {
			found = found || p.ID == in.ProjectID
		}
		if !found {
			problem.Send(w, http.StatusUnprocessableEntity, "invalid-token-request", "Unknown project", "project "+in.ProjectID, "Create it first: POST /api/v1/projects.")
			return
		}
	}
	value := NewTokenValue()
	t := store.APIToken{Name: in.Name, Admin: in.Admin, ProjectID: in.ProjectID, Hash: HashToken(value)}
	if err := s.st.CreateAPIToken(r.Context(), &t); err != nil {
		s.fail(w, r, "create token", err)
		return
	}
	out := tokenResource(t)
	out.Token = value
	// The answer holds the token: never cached, and kept for Idempotency-Key replays only
	// encrypted.
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) deleteToken(w http.ResponseWriter, r *http.Request) {
	if err := s.st.DeleteAPIToken(r.Context(), r.PathValue("id")); err != nil {
		s.fail(w, r, "delete token", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listProjects(w http.ResponseWriter, r *http.Request) {
	ps, err := s.st.ListProjects(r.Context())
	if err != nil {
		s.fail(w, r, "list projects", err)
		return
	}
	out := List[Project]{Items: []Project{}}
	tok := tokenFrom(r.Context())
	for _, p := range ps {
		if tok.Admin || tok.ProjectID == p.ID {
			out.Items = append(out.Items, Project{ID: p.ID, Name: p.Name, CreatedAt: p.CreatedAt})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) createProject(w http.ResponseWriter, r *http.Request) {
	var in Project
	if !decode(w, r, &in) {
		return
	}
	if strings.TrimSpace(in.Name) == "" || in.ID != "" {
		problem.Send(w, http.StatusUnprocessableEntity, "invalid-project", "name is required (and id is chosen by the server)", "", "")
		return
	}
	p := store.Project{Name: in.Name}
	if err := s.st.CreateProject(r.Context(), &p); err != nil {
		s.fail(w, r, "create project", err)
		return
	}
	writeJSON(w, http.StatusCreated, Project{ID: p.ID, Name: p.Name, CreatedAt: p.CreatedAt})
}

func (s *Server) projectIntegrations(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	tok := tokenFrom(r.Context())
	if !tok.Admin && tok.ProjectID != id {
		problem.Send(w, http.StatusNotFound, "not-found", "Project not found", "no project "+id, "")
		return
	}
	recs, err := s.st.ListIntegrations(r.Context())
	if err != nil {
		s.fail(w, r, "list integrations", err)
		return
	}
	out := List[Integration]{Items: []Integration{}}
	for _, rec := range recs {
		if rec.ProjectID == id {
			out.Items = append(out.Items, s.integrationResource(r.Context(), rec, false))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) credentialTarget(w http.ResponseWriter, r *http.Request) (store.Integration, string, bool) {
	user := r.PathValue("user")
	if user == "" || len(user) > 200 {
		problem.Send(w, http.StatusBadRequest, "invalid-parameter", "A user id is required", "", "")
		return store.Integration{}, "", false
	}
	rec, err := s.st.GetIntegration(r.Context(), r.PathValue("integration"))
	if err != nil || !visible(r.Context(), rec) {
		problem.Send(w, http.StatusNotFound, "not-found", "Integration not found", "no integration "+r.PathValue("integration"), "")
		return rec, "", false
	}
	return rec, user, true
}

func (s *Server) putCredential(w http.ResponseWriter, r *http.Request) {
	rec, user, ok := s.credentialTarget(w, r)
	if !ok {
		return
	}
	var in CredentialPut
	if !decode(w, r, &in) {
		return
	}
	if strings.TrimSpace(in.Token) == "" {
		problem.Send(w, http.StatusUnprocessableEntity, "invalid-credential", "token is required", "", "")
		return
	}
	c := forge.UserCredential{User: user, Login: in.Login, Token: strings.TrimSpace(in.Token), RefreshToken: in.RefreshToken, Expires: in.ExpiresAt}
	if err := s.ints.PutUserCredential(r.Context(), s.st, rec.ID, user, c); err != nil {
		s.fail(w, r, "store credential", err)
		return
	}
	s.getCredential(w, r)
}

func (s *Server) getCredential(w http.ResponseWriter, r *http.Request) {
	rec, user, ok := s.credentialTarget(w, r)
	if !ok {
		return
	}
	c, err := s.st.GetUserCredential(r.Context(), rec.ID, user)
	if errors.Is(err, store.ErrNotFound) {
		writeJSON(w, http.StatusOK, Credential{User: user, IntegrationID: rec.ID, Set: false})
		return
	}
	if err != nil {
		s.fail(w, r, "load credential", err)
		return
	}
	out := Credential{User: user, IntegrationID: rec.ID, Login: c.Login, Set: true, UpdatedAt: c.UpdatedAt}
	if !c.Expires.IsZero() {
		e := c.Expires
		out.ExpiresAt = &e
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) deleteCredential(w http.ResponseWriter, r *http.Request) {
	rec, user, ok := s.credentialTarget(w, r)
	if !ok {
		return
	}
	if err := s.st.DeleteUserCredential(r.Context(), rec.ID, user); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, "delete credential", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// flowTTL bounds how long a browser flow's state is valid.
const flowTTL = time.Hour
