package giteafake

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
)

func (s *Server) version(*call) reply {
	return jsonReply(http.StatusOK, map[string]string{"version": s.opts.Version})
}

func (s *Server) getUser(c *call) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	return jsonReply(http.StatusOK, s.userJSON(c.user))
}

// myRepos is ListMyRepos: the repositories the user owns, collaborates on, or reaches through
// an organization's teams, by id.
func (s *Server) myRepos(c *call) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := c.user
	login := strings.ToLower(u.login)
	var list []*repo
	for _, r := range s.repos {
		if r.owner == u || r.collaborators[login] != "" || (r.owner.org && r.owner.members[login] != "") {
			list = append(list, r)
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].id < list[j].id })
	page, h := paginate(s, c.r, list)
	out := make([]repoJSON, 0, len(page))
	for _, r := range page {
		out = append(out, s.repoJSON(r, s.permission(u, r)))
	}
	rep := jsonReply(http.StatusOK, out)
	rep.header = h
	return rep
}

func (s *Server) getRepoByID(c *call) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, err := strconv.ParseInt(c.r.PathValue("id"), 10, 64)
	r, ok := s.repos[id]
	if err != nil || !ok || s.permission(c.user, r) == "" {
		return s.notFound()
	}
	return jsonReply(http.StatusOK, s.repoJSON(r, s.permission(c.user, r)))
}

func (s *Server) getRepo(c *call) reply {
	r, perm, rep := s.repoOf(c, permRead)
	if rep != nil {
		return *rep
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return jsonReply(http.StatusOK, s.repoJSON(r, perm))
}

func (s *Server) listHooks(c *call) reply {
	r, _, rep := s.repoOf(c, permAdmin)
	if rep != nil {
		return *rep
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	page, h := paginate(s, c.r, r.hooks)
	out := make([]hookJSON, 0, len(page))
	for _, hk := range page {
		out = append(out, s.hookJSON(hk))
	}
	res := jsonReply(http.StatusOK, out)
	res.header = h
	return res
}

// hookOf finds the {id} hook of an administered repository.
func (s *Server) hookOf(c *call) (*repo, *hook, *reply) {
	r, _, rep := s.repoOf(c, permAdmin)
	if rep != nil {
		return nil, nil, rep
	}
	id, _ := strconv.ParseInt(c.r.PathValue("id"), 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range r.hooks {
		if h.id == id {
			return r, h, nil
		}
	}
	nf := s.notFound()
	return nil, nil, &nf
}

func (s *Server) getHook(c *call) reply {
	_, h, rep := s.hookOf(c)
	if rep != nil {
		return *rep
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return jsonReply(http.StatusOK, s.hookJSON(h))
}

// hookTypes are the hook types Gitea's API creates (CreateHookOption's enum).
var hookTypes = []string{"dingtalk", "discord", "gitea", "gogs", "msteams", "slack", "telegram", "feishu", "wechatwork", "packagist"}

type createHookOption struct {
	Type                string            `json:"type"`
	Config              map[string]string `json:"config"`
	Events              []string          `json:"events"`
	BranchFilter        string            `json:"branch_filter"`
	AuthorizationHeader string            `json:"authorization_header"`
	Active              bool              `json:"active"`
}

func validContentType(ct string) bool { return ct == "json" || ct == "form" }

// createHook is AddRepoHook: the type must be known, config must hold url and content_type
// (json or form), active defaults to false and events to push.
func (s *Server) createHook(c *call) reply {
	r, _, rep := s.repoOf(c, permAdmin)
	if rep != nil {
		return *rep
	}
	var opt createHookOption
	if rep := c.decode(s, &opt); rep != nil {
		return *rep
	}
	types := hookTypes
	if s.opts.Forgejo {
		types = append(slices.Clone(types), "forgejo")
	}
	if !slices.Contains(types, opt.Type) {
		return s.errReply(http.StatusUnprocessableEntity, "Invalid hook type: "+opt.Type)
	}
	for _, k := range []string{"url", "content_type"} {
		if _, ok := opt.Config[k]; !ok {
			return s.errReply(http.StatusUnprocessableEntity, "Missing config option: "+k)
		}
	}
	if !validContentType(opt.Config["content_type"]) {
		return s.errReply(http.StatusUnprocessableEntity, "Invalid content type")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	h := &hook{
		id: s.nextID(), typ: opt.Type, url: opt.Config["url"], contentType: opt.Config["content_type"],
		secret: opt.Config["secret"], branchFilter: opt.BranchFilter, authHeader: opt.AuthorizationHeader,
		events: hookEventsFrom(opt.Events), active: opt.Active, created: now, updated: now,
	}
	r.hooks = append(r.hooks, h)
	return jsonReply(http.StatusCreated, s.hookJSON(h))
}

type editHookOption struct {
	Config              map[string]string `json:"config"`
	Events              []string          `json:"events"`
	BranchFilter        string            `json:"branch_filter"`
	AuthorizationHeader string            `json:"authorization_header"`
	Active              *bool             `json:"active"`
}

// editHook is EditRepoHook: config keys present replace the url, content type and secret;
// events, branch filter and authorization header are always replaced with what is sent
// (events default to push); active only when sent.
func (s *Server) editHook(c *call) reply {
	_, h, rep := s.hookOf(c)
	if rep != nil {
		return *rep
	}
	var opt editHookOption
	if rep := c.decode(s, &opt); rep != nil {
		return *rep
	}
	if ct, ok := opt.Config["content_type"]; ok && !validContentType(ct) {
		return s.errReply(http.StatusUnprocessableEntity, "Invalid content type")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := opt.Config["url"]; ok {
		h.url = v
	}
	if v, ok := opt.Config["content_type"]; ok {
		h.contentType = v
	}
	if v, ok := opt.Config["secret"]; ok {
		h.secret = v
	}
	h.events = hookEventsFrom(opt.Events)
	h.branchFilter = opt.BranchFilter
	h.authHeader = opt.AuthorizationHeader
	if opt.Active != nil {
		h.active = *opt.Active
	}
	h.updated = s.now()
	return jsonReply(http.StatusOK, s.hookJSON(h))
}

func (s *Server) deleteHook(c *call) reply {
	r, h, rep := s.hookOf(c)
	if rep != nil {
		return *rep
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r.hooks = slices.DeleteFunc(r.hooks, func(x *hook) bool { return x == h })
	return reply{status: http.StatusNoContent}
}

// testHook is TestHook: a push of the default branch's head onto itself, to this hook only
// (and only when it is active, as Gitea then skips the task). An empty repository sends
// nothing.
func (s *Server) testHook(c *call) reply {
	r, h, rep := s.hookOf(c)
	if rep != nil {
		return *rep
	}
	s.mu.Lock()
	head := s.headOf(r)
	if head == "" {
		s.mu.Unlock()
		return reply{status: http.StatusNoContent}
	}
	ref := "refs/heads/" + r.defaultBranch
	if v := c.r.URL.Query().Get("ref"); v != "" {
		ref = v
	}
	commit := s.commitJSON(r, head)
	p := pushPayload{
		Ref: ref, Before: head, After: head, CompareURL: s.URL + "/" + r.fullName() + "/compare/" + head + "..." + head,
		Commits: []payloadCommitJSON{commit}, TotalCommits: 1, HeadCommit: &commit,
		Repository: s.repoJSON(r, ""), Pusher: s.userJSON(c.user), Sender: s.userJSON(c.user),
	}
	out := s.prepareLocked(r, "push", p, "", h.id)
	s.mu.Unlock()
	s.send(out)
	return reply{status: http.StatusNoContent}
}

func (s *Server) branchJSONLocked(r *repo, name, sha string, perm string) branchJSON {
	return branchJSON{
		Name:                name,
		Commit:              s.commitJSON(r, sha),
		StatusCheckContexts: []string{},
		UserCanPush:         roles[perm] >= roles[permWrite],
		UserCanMerge:        roles[perm] >= roles[permWrite],
	}
}

func (s *Server) listBranches(c *call) reply {
	r, perm, rep := s.repoOf(c, permRead)
	if rep != nil {
		return *rep
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	branches, err := s.branchesOf(r)
	if err != nil {
		return s.errReply(http.StatusInternalServerError, err.Error())
	}
	names := make([]string, 0, len(branches))
	for n := range branches {
		names = append(names, n)
	}
	sort.Strings(names)
	page, h := paginate(s, c.r, names)
	out := make([]branchJSON, 0, len(page))
	for _, n := range page {
		out = append(out, s.branchJSONLocked(r, n, branches[n], perm))
	}
	res := jsonReply(http.StatusOK, out)
	res.header = h
	return res
}

func (s *Server) getBranch(c *call) reply {
	r, perm, rep := s.repoOf(c, permRead)
	if rep != nil {
		return *rep
	}
	name := pathValue(c.r, "branch")
	s.mu.Lock()
	defer s.mu.Unlock()
	branches, err := s.branchesOf(r)
	if err != nil {
		return s.errReply(http.StatusInternalServerError, err.Error())
	}
	sha, ok := branches[name]
	if !ok {
		return s.errReply(http.StatusNotFound, "Branch Not Found")
	}
	return jsonReply(http.StatusOK, s.branchJSONLocked(r, name, sha, perm))
}

type createBranchOption struct {
	BranchName    string `json:"new_branch_name"`
	OldBranchName string `json:"old_branch_name"`
	OldRefName    string `json:"old_ref_name"`
}

// createBranch is CreateBranch: from old_ref_name (a branch, tag or commit), else
// old_branch_name, else the default branch. As in Gitea, a ref it cannot resolve is a 500, an
// unknown old_branch_name a 404, an existing branch a 409. The branch is created by a push,
// so Gitea sends its create and push deliveries.
func (s *Server) createBranch(c *call) reply {
	r, perm, rep := s.repoOf(c, permWrite)
	if rep != nil {
		return *rep
	}
	var opt createBranchOption
	if rep := c.decode(s, &opt); rep != nil {
		return *rep
	}
	if opt.BranchName == "" || strings.ContainsAny(opt.BranchName, " ~^:?*[\\") || strings.Contains(opt.BranchName, "..") {
		return s.errReply(http.StatusUnprocessableEntity, "[BranchName]: Required")
	}
	s.mu.Lock()
	if s.headOf(r) == "" {
		s.mu.Unlock()
		return s.errReply(http.StatusNotFound, "Git Repository is empty.")
	}
	branches, err := s.branchesOf(r)
	if err != nil {
		s.mu.Unlock()
		return s.errReply(http.StatusInternalServerError, err.Error())
	}
	var from string
	switch {
	case opt.OldRefName != "":
		sha, ok := s.resolveCommit(r, opt.OldRefName)
		if !ok {
			s.mu.Unlock()
			return s.errReply(http.StatusInternalServerError, "GetCommit: object does not exist [id: "+opt.OldRefName+", rel_path: ]")
		}
		from = sha
	case opt.OldBranchName != "":
		sha, ok := branches[opt.OldBranchName]
		if !ok {
			s.mu.Unlock()
			return s.errReply(http.StatusNotFound, "The old branch does not exist")
		}
		from = sha
	default:
		from = branches[r.defaultBranch]
	}
	if _, exists := branches[opt.BranchName]; exists {
		s.mu.Unlock()
		return s.errReply(http.StatusConflict, "The branch already exists.")
	}
	if err := s.setBranchLocked(r, opt.BranchName, from); err != nil {
		s.mu.Unlock()
		return s.errReply(http.StatusInternalServerError, err.Error())
	}
	out := s.refChangedLocked(r, c.user, "refs/heads/"+opt.BranchName, "", from)
	res := jsonReply(http.StatusCreated, s.branchJSONLocked(r, opt.BranchName, from, perm))
	s.mu.Unlock()
	s.send(out)
	return res
}

func (s *Server) deleteBranch(c *call) reply {
	r, _, rep := s.repoOf(c, permWrite)
	if rep != nil {
		return *rep
	}
	name := pathValue(c.r, "branch")
	s.mu.Lock()
	branches, err := s.branchesOf(r)
	if err != nil {
		s.mu.Unlock()
		return s.errReply(http.StatusInternalServerError, err.Error())
	}
	sha, ok := branches[name]
	switch {
	case !ok:
		s.mu.Unlock()
		return s.errReply(http.StatusNotFound, "Branch Not Found")
	case name == r.defaultBranch:
		s.mu.Unlock()
		return s.errReply(http.StatusForbidden, "can not delete default branch")
	}
	if err := s.deleteBranchLocked(r, name); err != nil {
		s.mu.Unlock()
		return s.errReply(http.StatusInternalServerError, err.Error())
	}
	out := s.refChangedLocked(r, c.user, "refs/heads/"+name, sha, "")
	s.mu.Unlock()
	s.send(out)
	return reply{status: http.StatusNoContent}
}

type createPullOption struct {
	Title string `json:"title"`
	Body  string `json:"body"`
	Head  string `json:"head"`
	Base  string `json:"base"`
}

// createPull is CreatePullRequest for a head branch of the same repository ("branch" or
// "owner:branch"); it sends Gitea's pull_request "opened" delivery.
func (s *Server) createPull(c *call) reply {
	r, _, rep := s.repoOf(c, permRead)
	if rep != nil {
		return *rep
	}
	var opt createPullOption
	if rep := c.decode(s, &opt); rep != nil {
		return *rep
	}
	if strings.TrimSpace(opt.Title) == "" {
		return s.errReply(http.StatusUnprocessableEntity, "[Title]: Required")
	}
	s.mu.Lock()
	head := opt.Head
	if owner, branch, ok := strings.Cut(head, ":"); ok {
		if !strings.EqualFold(owner, r.owner.login) {
			s.mu.Unlock()
			return s.notFound() // the fake has no forks
		}
		head = branch
	}
	branches, err := s.branchesOf(r)
	if err != nil {
		s.mu.Unlock()
		return s.errReply(http.StatusInternalServerError, err.Error())
	}
	headSHA, okHead := branches[head]
	baseSHA, okBase := branches[opt.Base]
	switch {
	case !okHead || !okBase:
		s.mu.Unlock()
		return s.notFound()
	case head == opt.Base:
		s.mu.Unlock()
		return s.errReply(http.StatusUnprocessableEntity, "Invalid PullRequest: There are no changes between the head and the base")
	}
	for _, p := range r.pulls {
		if p.state == "open" && p.head == head && p.base == opt.Base {
			s.mu.Unlock()
			return s.errReply(http.StatusConflict, fmt.Sprintf("pull request already exists for these targets [id: %d, issue_id: %d, head_repo_id: %d, base_repo_id: %d, head_branch: %s, base_branch: %s]",
				p.id, p.id, r.id, r.id, p.head, p.base))
		}
	}
	now := s.now()
	r.nextIndex++
	p := &pull{
		id: s.nextID(), number: r.nextIndex, title: opt.Title, body: opt.Body, head: head, base: opt.Base,
		headSHA: headSHA, baseSHA: baseSHA, state: "open", author: c.user, created: now, updated: now,
	}
	r.pulls = append(r.pulls, p)
	out := s.prepareLocked(r, "pull_request", s.pullPayloadLocked(r, p, "opened", c.user), "", 0)
	res := jsonReply(http.StatusCreated, s.pullJSON(r, p))
	s.mu.Unlock()
	s.send(out)
	return res
}

func (s *Server) getPull(c *call) reply {
	r, _, rep := s.repoOf(c, permRead)
	if rep != nil {
		return *rep
	}
	n, _ := strconv.ParseInt(c.r.PathValue("index"), 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range r.pulls {
		if p.number == n {
			return jsonReply(http.StatusOK, s.pullJSON(r, p))
		}
	}
	return s.notFound()
}
