package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/forgeway/forgeway/internal/catalog"
	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/problem"
	"github.com/forgeway/forgeway/internal/store"
)

func repositoryResource(r store.Repository) Repository {
	out := Repository{
		ID: r.ID, IntegrationID: r.IntegrationID, HostID: r.HostID, FullName: r.FullName, Name: r.Name,
		Owner: r.Owner, Group: r.Group, DefaultBranch: r.DefaultBranch, Visibility: r.Visibility,
		Private: r.Private, Archived: r.Archived, Fork: r.Fork, CloneURL: r.CloneURL, WebURL: r.WebURL,
		Permission: r.Permission, Description: r.Description, Installation: r.Installation,
		Matched: r.Matched, Attached: r.Attached, HookStatus: r.HookStatus, HookError: r.HookError,
		Hooks: nullable(r.Hooks), Extra: r.Extra, SeenAt: r.SeenAt,
	}
	if r.Attached || r.Mirror.Status != "" && r.Mirror.Status != catalog.MirrorNone {
		m := &Mirror{Status: r.Mirror.Status, Error: r.Mirror.Error, Head: r.Mirror.Head, SyncCount: r.Mirror.SyncCount}
		if !r.Mirror.SyncedAt.IsZero() {
			t := r.Mirror.SyncedAt
			m.SyncedAt = &t
		}
		out.Mirror = m
	}
	return out
}

// page reads ?limit= and ?cursor=, answering 400 for bad values.
func page(w http.ResponseWriter, r *http.Request) (store.Page, bool) {
	p := store.Page{After: r.URL.Query().Get("cursor"), Limit: 50}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			problem.Send(w, http.StatusBadRequest, "invalid-parameter", "limit must be a number from 1 to 500", "limit="+v, "")
			return p, false
		}
		p.Limit = n
	}
	return p, true
}

func boolParam(w http.ResponseWriter, r *http.Request, name string) (*bool, bool) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return nil, true
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		problem.Send(w, http.StatusBadRequest, "invalid-parameter", name+" must be true or false", name+"="+v, "")
		return nil, false
	}
	return &b, true
}

func (s *Server) listRepositories(w http.ResponseWriter, r *http.Request) {
	p, ok := page(w, r)
	if !ok {
		return
	}
	attached, ok := boolParam(w, r, "attached")
	if !ok {
		return
	}
	matched, ok := boolParam(w, r, "matched")
	if !ok {
		return
	}
	q := r.URL.Query()
	f := store.RepositoryFilter{IntegrationID: q.Get("integration"), Query: q.Get("q"), Group: q.Get("group"), Attached: attached, Matched: matched, Page: p}
	tok := tokenFrom(r.Context())
	if f.IntegrationID != "" {
		rec, err := s.st.GetIntegration(r.Context(), f.IntegrationID)
		if err != nil || !visible(r.Context(), rec) {
			problem.Send(w, http.StatusNotFound, "not-found", "Integration not found", "no integration "+f.IntegrationID, "")
			return
		}
	} else if !tok.Admin {
		problem.Send(w, http.StatusBadRequest, "invalid-parameter", "A project token must name the integration", "add ?integration=<id>", "")
		return
	}
	items, next, err := s.st.ListRepositories(r.Context(), f)
	if err != nil {
		s.fail(w, r, "list repositories", err)
		return
	}
	out := List[Repository]{Items: make([]Repository, 0, len(items)), NextCursor: next}
	for _, it := range items {
		out.Items = append(out.Items, repositoryResource(it))
	}
	writeJSON(w, http.StatusOK, out)
}

// loadRepository fetches the path's repository (and its integration), answering 404 for one
// the token may not see.
func (s *Server) loadRepository(w http.ResponseWriter, r *http.Request) (store.Repository, store.Integration, bool) {
	repo, err := s.st.GetRepository(r.Context(), r.PathValue("id"))
	var rec store.Integration
	if err == nil {
		rec, err = s.st.GetIntegration(r.Context(), repo.IntegrationID)
	}
	if err != nil || !visible(r.Context(), rec) {
		if err == nil || errors.Is(err, store.ErrNotFound) {
			problem.Send(w, http.StatusNotFound, "not-found", "Repository not found", "no repository "+r.PathValue("id"), "List them with GET /api/v1/repositories.")
		} else {
			s.fail(w, r, "load repository", err)
		}
		return repo, rec, false
	}
	return repo, rec, true
}

func (s *Server) getRepository(w http.ResponseWriter, r *http.Request) {
	repo, _, ok := s.loadRepository(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, repositoryResource(repo))
}

func (s *Server) repoAction(op string, do func(ctx context.Context, id string) (store.Job, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		repo, _, ok := s.loadRepository(w, r)
		if !ok {
			return
		}
		j, err := do(r.Context(), repo.ID)
		if err != nil {
			s.fail(w, r, op+" "+repo.FullName, err)
			return
		}
		accepted(w, j)
	}
}

func (s *Server) pushRepository(w http.ResponseWriter, r *http.Request) {
	repo, _, ok := s.loadRepository(w, r)
	if !ok {
		return
	}
	var in PushRequest
	if !decode(w, r, &in) {
		return
	}
	if len(in.Refspecs) == 0 {
		problem.Send(w, http.StatusUnprocessableEntity, "invalid-push", "refspecs is required", "name the refs to push, e.g. [\"refs/heads/feature:refs/heads/feature\"]", "")
		return
	}
	for _, rs := range in.Refspecs {
		if strings.HasPrefix(rs, "-") || strings.ContainsAny(rs, " \t\n\x00") || rs == "" {
			problem.Send(w, http.StatusUnprocessableEntity, "invalid-push", "A refspec is not valid", "refspec "+strconv.Quote(rs), "")
			return
		}
	}
	j, err := s.cat.Push(r.Context(), repo.ID, in.Refspecs, in.User)
	if err != nil {
		s.fail(w, r, "push "+repo.FullName, err)
		return
	}
	accepted(w, j)
}

// actingUser loads the acting person's credential when the request names one.
func (s *Server) actingUser(w http.ResponseWriter, r *http.Request, rec store.Integration, user string) (*forge.UserCredential, bool) {
	if user == "" {
		return nil, true
	}
	cred, err := s.ints.UserCredential(r.Context(), rec, user)
	if errors.Is(err, store.ErrNotFound) {
		problem.Send(w, http.StatusConflict, "no-user-credential", "The person has no credential on this integration", "user "+user, "Store one with PUT /api/v1/users/{user}/credentials/{integration}.")
		return nil, false
	}
	if err != nil {
		s.fail(w, r, "load credential of "+user, err)
		return nil, false
	}
	return cred, true
}

func (s *Server) listBranches(w http.ResponseWriter, r *http.Request) {
	repo, rec, ok := s.loadRepository(w, r)
	if !ok {
		return
	}
	client, err := s.ints.Client(r.Context(), rec)
	if err != nil {
		s.fail(w, r, "list branches", err)
		return
	}
	refs, err := client.Branches(r.Context(), catalog.ToForge(repo))
	if err != nil {
		s.fail(w, r, "list branches of "+repo.FullName, err)
		return
	}
	if refs == nil {
		refs = []forge.Ref{}
	}
	writeJSON(w, http.StatusOK, List[forge.Ref]{Items: refs})
}

func (s *Server) createBranch(w http.ResponseWriter, r *http.Request) {
	repo, rec, ok := s.loadRepository(w, r)
	if !ok {
		return
	}
	var in BranchCreate
	if !decode(w, r, &in) {
		return
	}
	in.Name = strings.TrimPrefix(in.Name, "refs/heads/")
	if !validRefName(in.Name) {
		problem.Send(w, http.StatusUnprocessableEntity, "invalid-branch", "The branch name is not valid", "name "+strconv.Quote(in.Name), "Use git's branch name rules (no spaces, '..', '~', '^', ':', leading '-').")
		return
	}
	if in.SHA != "" && !isHex40(in.SHA) {
		problem.Send(w, http.StatusUnprocessableEntity, "invalid-branch", "sha must be a 40-digit commit id", "sha "+strconv.Quote(in.SHA), "")
		return
	}
	as, ok := s.actingUser(w, r, rec, in.User)
	if !ok {
		return
	}
	client, err := s.ints.Client(r.Context(), rec)
	if err != nil {
		s.fail(w, r, "create branch", err)
		return
	}
	fr := catalog.ToForge(repo)
	if in.SHA == "" {
		refs, err := client.Branches(r.Context(), fr)
		if err != nil {
			s.fail(w, r, "find the default branch of "+repo.FullName, err)
			return
		}
		for _, ref := range refs {
			if ref.Name == "refs/heads/"+repo.DefaultBranch || ref.Name == repo.DefaultBranch {
				in.SHA = ref.SHA
			}
		}
		if in.SHA == "" {
			problem.Send(w, http.StatusUnprocessableEntity, "invalid-branch", "sha is required", "the default branch "+repo.DefaultBranch+" was not found", "")
			return
		}
	}
	ref, err := client.CreateBranch(r.Context(), fr, in.Name, in.SHA, as)
	if err != nil {
		s.fail(w, r, "create branch on "+repo.FullName, err)
		return
	}
	writeJSON(w, http.StatusCreated, ref)
}

func (s *Server) createPull(w http.ResponseWriter, r *http.Request) {
	repo, rec, ok := s.loadRepository(w, r)
	if !ok {
		return
	}
	var in PullCreate
	if !decode(w, r, &in) {
		return
	}
	var fields []problem.FieldError
	if strings.TrimSpace(in.Title) == "" {
		fields = append(fields, problem.FieldError{Field: "title", Detail: "required"})
	}
	in.Source = strings.TrimPrefix(in.Source, "refs/heads/")
	if !validRefName(in.Source) {
		fields = append(fields, problem.FieldError{Field: "source", Detail: "a branch name is required"})
	}
	if in.Target == "" {
		in.Target = repo.DefaultBranch
	}
	in.Target = strings.TrimPrefix(in.Target, "refs/heads/")
	if !validRefName(in.Target) {
		fields = append(fields, problem.FieldError{Field: "target", Detail: "not a valid branch name"})
	}
	if len(fields) > 0 {
		problem.Write(w, &problem.Details{Type: problem.TypeBase + "invalid-pull-request", Title: "The pull request is not valid", Status: http.StatusUnprocessableEntity, Errors: fields})
		return
	}
	as, ok := s.actingUser(w, r, rec, in.User)
	if !ok {
		return
	}
	client, err := s.ints.Client(r.Context(), rec)
	if err != nil {
		s.fail(w, r, "create pull request", err)
		return
	}
	pr, err := client.CreatePullRequest(r.Context(), catalog.ToForge(repo), forge.NewPullRequest{Title: in.Title, Body: in.Body, Source: in.Source, Target: in.Target, Draft: in.Draft}, as)
	if err != nil {
		s.fail(w, r, "create pull request on "+repo.FullName, err)
		return
	}
	writeJSON(w, http.StatusCreated, pr)
}

func isHex40(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

// validRefName applies git check-ref-format's rules to a branch name.
func validRefName(n string) bool {
	if n == "" || len(n) > 255 || strings.HasPrefix(n, "-") || strings.HasPrefix(n, "/") || strings.HasSuffix(n, "/") ||
		strings.HasSuffix(n, ".") || strings.HasSuffix(n, ".lock") || strings.Contains(n, "..") ||
		strings.Contains(n, "//") || strings.Contains(n, "@{") || n == "@" {
		return false
	}
	for _, c := range n {
		if c < 0x20 || c == 0x7f || strings.ContainsRune(" ~^:?*[\\", c) {
			return false
		}
	}
	for _, part := range strings.Split(n, "/") {
		if strings.HasPrefix(part, ".") {
			return false
		}
	}
	return true
}
