package azurefake

import (
	"encoding/base64"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// signInPage is what Azure DevOps answers an anonymous browser-like request with (203).
const signInPage = `<!DOCTYPE html><html><head><title>Azure DevOps Services | Sign In</title></head><body>Sign in to continue.</body></html>`

// authenticate finds the user of a request's personal access token (HTTP basic, any user
// name) and checks it has scope. The failure is the answer to send.
func (s *Server) authenticate(r *http.Request, scope string) (*user, *reply) {
	raw := r.Header.Get("Authorization")
	if raw == "" {
		if strings.EqualFold(r.Header.Get("X-TFS-FedAuthRedirect"), "Suppress") {
			rep := errReply(http.StatusUnauthorized, "UnauthorizedRequestException",
				"TF400813: Resource not available for anonymous access. Client authentication required.")
			return nil, &rep
		}
		return nil, &reply{status: http.StatusNonAuthoritativeInfo, raw: []byte(signInPage)}
	}
	refused := errReply(http.StatusUnauthorized, "UnauthorizedRequestException", "TF400813: The user '' is not authorized to access this resource.")
	scheme, enc, _ := strings.Cut(raw, " ")
	if !strings.EqualFold(scheme, "Basic") {
		return nil, &refused
	}
	dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
	if err != nil {
		return nil, &refused
	}
	_, tok, ok := strings.Cut(string(dec), ":")
	if !ok {
		return nil, &refused
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pats[tok]
	if p == nil || p.revoked || (!p.expires.IsZero() && !s.now().Before(p.expires)) {
		return nil, &refused
	}
	if scope != "" && !p.has(scope) {
		rep := errReply(http.StatusUnauthorized, "UnauthorizedRequestException",
			"TF400813: The user '"+p.user.id+"' is not authorized to access this resource.")
		return nil, &rep
	}
	return p.user, nil
}

// Wire forms, as Azure DevOps' REST API 7.1 writes them.

type identityJSON struct {
	DisplayName string `json:"displayName"`
	URL         string `json:"url"`
	ID          string `json:"id"`
	UniqueName  string `json:"uniqueName"`
	ImageURL    string `json:"imageUrl"`
	Descriptor  string `json:"descriptor"`
}

func (s *Server) identityJSON(u *user) *identityJSON {
	if u == nil {
		return nil
	}
	return &identityJSON{DisplayName: u.displayName, URL: s.BaseURL + "/_apis/Identities/" + u.id, ID: u.id,
		UniqueName: u.uniqueName, ImageURL: s.BaseURL + "/_api/_common/identityImage?id=" + u.id, Descriptor: u.descriptor}
}

type projectJSON struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	Description    string `json:"description,omitempty"`
	URL            string `json:"url"`
	State          string `json:"state"`
	Revision       int64  `json:"revision"`
	Visibility     string `json:"visibility"`
	LastUpdateTime string `json:"lastUpdateTime"`
}

func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.999Z07:00") }

func (s *Server) projectJSON(p *project) projectJSON {
	return projectJSON{ID: p.id, Name: p.name, Description: p.description, URL: s.BaseURL + "/_apis/projects/" + p.id,
		State: "wellFormed", Revision: p.revision, Visibility: p.visibility, LastUpdateTime: ts(p.updated)}
}

type repoJSON struct {
	ID              string      `json:"id"`
	Name            string      `json:"name"`
	URL             string      `json:"url"`
	Project         projectJSON `json:"project"`
	DefaultBranch   string      `json:"defaultBranch,omitempty"`
	Size            int64       `json:"size"`
	RemoteURL       string      `json:"remoteUrl"`
	SSHURL          string      `json:"sshUrl"`
	WebURL          string      `json:"webUrl"`
	IsDisabled      bool        `json:"isDisabled"`
	IsInMaintenance bool        `json:"isInMaintenance"`
	IsFork          bool        `json:"isFork,omitempty"`
}

// webURL is a repository's page (and, without credentials in it, its clone URL).
func (s *Server) webURL(r *repo) string {
	return s.BaseURL + "/" + escapePath(r.project.name) + "/_git/" + escapePath(r.name)
}

// remoteURL is the clone URL Azure DevOps Services reports: the web URL with the
// organization as user name. Azure DevOps Server reports it without.
func (s *Server) remoteURL(r *repo) string {
	if s.opts.OnPremises {
		return s.webURL(r)
	}
	return strings.Replace(s.webURL(r), "://", "://"+s.opts.Organization+"@", 1)
}

func (s *Server) repoJSON(r *repo) repoJSON {
	return repoJSON{
		ID: r.id, Name: r.name, URL: s.BaseURL + "/" + r.project.id + "/_apis/git/repositories/" + r.id,
		Project: s.projectJSON(r.project), DefaultBranch: r.defaultBranch, Size: int64(len(r.commits)) * 1024,
		RemoteURL: s.remoteURL(r), SSHURL: "git@ssh.invalid:v3/" + s.opts.Organization + "/" + r.project.name + "/" + r.name,
		WebURL: s.webURL(r), IsDisabled: r.disabled, IsFork: r.fork,
	}
}

// connectionData answers GET _apis/connectionData: who the token is, and what is serving.
func (s *Server) connectionData(c *call) reply {
	kind := "hosted"
	if s.opts.OnPremises {
		kind = "onPremises"
	}
	id := map[string]any{"id": c.who.id, "descriptor": c.who.descriptor, "subjectDescriptor": c.who.descriptor,
		"providerDisplayName": c.who.displayName, "isActive": true,
		"properties":      map[string]any{"Account": map[string]any{"$type": "System.String", "$value": c.who.uniqueName}},
		"resourceVersion": 2, "metaTypeId": 0}
	return jsonReply(http.StatusOK, map[string]any{
		"authenticatedUser": id, "authorizedUser": id, "instanceId": s.collection, "deploymentId": s.collection,
		"deploymentType": kind,
		"locationServiceData": map[string]any{"serviceOwner": "00025394-6065-48ca-87d9-7f5672854ef7",
			"defaultAccessMappingMoniker": "PublicAccessMapping", "lastChangeId": 1, "lastChangeId64": 1},
	})
}

// listProjects answers GET _apis/projects: pages of $top (default 100) from continuationToken
// (or $skip), with X-MS-ContinuationToken when more remain.
func (s *Server) listProjects(c *call) reply {
	top, ok1 := query(c.r, "$top", 100)
	skip, ok2 := query(c.r, "$skip", 0)
	tok, ok3 := query(c.r, "continuationToken", skip)
	if !ok1 || !ok2 || !ok3 {
		return badRequest("The value of $top, $skip or continuationToken is not a non-negative integer.")
	}
	if top == 0 {
		top = 100
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	all := s.projects
	lo := min(tok, len(all))
	hi := min(lo+top, len(all))
	page := make([]projectJSON, 0, hi-lo)
	for _, p := range all[lo:hi] {
		page = append(page, s.projectJSON(p))
	}
	rep := listReply(page, len(page))
	if hi < len(all) {
		rep.header = http.Header{"X-Ms-Continuationtoken": {strconv.Itoa(hi)}}
	}
	return rep
}

// projectFor resolves the {project} of a request (id or name).
func (s *Server) projectFor(c *call) (*project, *reply) {
	p := s.projectOf(c.r.PathValue("project"))
	if p == nil {
		rep := notFound("TF200016: The following project does not exist: " + c.r.PathValue("project") + ". Verify that the name of the project is correct and that the project exists on the specified Azure DevOps Server.")
		return nil, &rep
	}
	return p, nil
}

// repoFor resolves the {project} and {repositoryId} (id or name) of a request.
func (s *Server) repoFor(c *call) (*repo, *reply) {
	p, rep := s.projectFor(c)
	if rep != nil {
		return nil, rep
	}
	r := s.repoOf(p, c.r.PathValue("repositoryId"))
	if r == nil {
		rep := notFound("TF401019: The Git repository with name or identifier " + c.r.PathValue("repositoryId") +
			" does not exist or you do not have permissions for the operation you are attempting.")
		return nil, &rep
	}
	return r, nil
}

func (s *Server) listRepos(c *call) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, rep := s.projectFor(c)
	if rep != nil {
		return *rep
	}
	var rs []*repo
	for _, r := range s.repos {
		if r.project == p {
			rs = append(rs, r)
		}
	}
	sort.Slice(rs, func(i, j int) bool { return strings.ToLower(rs[i].name) < strings.ToLower(rs[j].name) })
	out := make([]repoJSON, 0, len(rs))
	for _, r := range rs {
		out = append(out, s.repoJSON(r))
	}
	return listReply(out, len(out))
}

func (s *Server) getRepo(c *call) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, rep := s.repoFor(c)
	if rep != nil {
		return *rep
	}
	return jsonReply(http.StatusOK, s.repoJSON(r))
}

type refJSON struct {
	Name     string        `json:"name"`
	ObjectID string        `json:"objectId"`
	Creator  *identityJSON `json:"creator,omitempty"`
	URL      string        `json:"url"`
}

// listRefs answers GET …/refs: refs whose name starts with refs/{filter}, by name, in pages
// of $top (all when absent) from continuationToken.
func (s *Server) listRefs(c *call) reply {
	top, ok1 := query(c.r, "$top", 0)
	from, ok2 := query(c.r, "continuationToken", 0)
	if !ok1 || !ok2 {
		return badRequest("The value of $top or continuationToken is invalid.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, rep := s.repoFor(c)
	if rep != nil {
		return *rep
	}
	prefix := "refs/" + c.r.URL.Query().Get("filter")
	refs := s.refsLocked(r)
	names := make([]string, 0, len(refs))
	for n := range refs {
		if strings.HasPrefix(n, prefix) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	lo := min(from, len(names))
	hi := len(names)
	if top > 0 {
		hi = min(lo+top, len(names))
	}
	out := make([]refJSON, 0, hi-lo)
	for _, n := range names[lo:hi] {
		out = append(out, refJSON{Name: n, ObjectID: refs[n],
			URL: s.BaseURL + "/" + r.project.id + "/_apis/git/repositories/" + r.id + "/refs?filter=" + strings.TrimPrefix(n, "refs/")})
	}
	rep2 := listReply(out, len(out))
	if hi < len(names) {
		rep2.header = http.Header{"X-Ms-Continuationtoken": {strconv.Itoa(hi)}}
	}
	return rep2
}

// refUpdate is a GitRefUpdate of POST …/refs.
type refUpdate struct {
	Name        string `json:"name"`
	OldObjectID string `json:"oldObjectId"`
	NewObjectID string `json:"newObjectId"`
}

type refUpdateResultJSON struct {
	RepositoryID  string  `json:"repositoryId"`
	Name          string  `json:"name"`
	OldObjectID   string  `json:"oldObjectId"`
	NewObjectID   string  `json:"newObjectId"`
	IsLocked      bool    `json:"isLocked"`
	UpdateStatus  string  `json:"updateStatus"`
	Success       bool    `json:"success"`
	CustomMessage *string `json:"customMessage,omitempty"`
}

const zeroSHA = "0000000000000000000000000000000000000000"

func isSHA(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// updateRefs answers POST …/refs: each update applies when oldObjectId is the ref's current
// value (all zeros: the ref must not exist) and newObjectId a known commit (all zeros
// deletes); the answer says, per ref, whether it succeeded and why not. Branches and tags
// created or moved are delivered as git.push.
func (s *Server) updateRefs(c *call) reply {
	var ups []refUpdate
	if rep := c.decode(&ups); rep != nil {
		return *rep
	}
	s.mu.Lock()
	r, rep := s.repoFor(c)
	if rep != nil {
		s.mu.Unlock()
		return *rep
	}
	refs := s.refsLocked(r)
	var results []refUpdateResultJSON
	var applied []pushedRef
	for _, u := range ups {
		res := refUpdateResultJSON{RepositoryID: r.id, Name: u.Name, OldObjectID: u.OldObjectID, NewObjectID: u.NewObjectID}
		cur, exists := refs[u.Name]
		switch {
		case !strings.HasPrefix(u.Name, "refs/") || strings.Contains(u.Name, "..") || !isSHA(u.OldObjectID) || !isSHA(u.NewObjectID):
			res.UpdateStatus = "invalidRefName"
		case (u.OldObjectID == zeroSHA && exists) || (u.OldObjectID != zeroSHA && cur != u.OldObjectID):
			res.UpdateStatus = "staleOldObjectId"
		case u.NewObjectID != zeroSHA && !s.hasCommitLocked(r, u.NewObjectID):
			res.UpdateStatus = "unresolvableToCommit"
		default:
			if err := s.setRefLocked(r, u.Name, u.NewObjectID, u.OldObjectID); err != nil {
				msg := err.Error()
				res.UpdateStatus, res.CustomMessage = "rejectedByPlugin", &msg
				break
			}
			res.Success, res.UpdateStatus = true, "succeeded"
			refs[u.Name] = u.NewObjectID
			applied = append(applied, pushedRef{name: u.Name, old: u.OldObjectID, new: u.NewObjectID})
		}
		results = append(results, res)
	}
	who := c.who
	repoID := r.id
	s.mu.Unlock()
	if len(applied) > 0 {
		s.deliverPush(c.r.Context(), repoID, who, applied, nil)
	}
	return listReply(results, len(results))
}

type commitRefJSON struct {
	CommitID string `json:"commitId"`
	URL      string `json:"url"`
}

type pullJSON struct {
	Repository            repoJSON       `json:"repository"`
	PullRequestID         int64          `json:"pullRequestId"`
	CodeReviewID          int64          `json:"codeReviewId"`
	Status                string         `json:"status"`
	CreatedBy             *identityJSON  `json:"createdBy"`
	CreationDate          string         `json:"creationDate"`
	ClosedBy              *identityJSON  `json:"closedBy,omitempty"`
	ClosedDate            string         `json:"closedDate,omitempty"`
	Title                 string         `json:"title"`
	Description           string         `json:"description,omitempty"`
	SourceRefName         string         `json:"sourceRefName"`
	TargetRefName         string         `json:"targetRefName"`
	MergeStatus           string         `json:"mergeStatus"`
	IsDraft               bool           `json:"isDraft"`
	MergeID               string         `json:"mergeId"`
	LastMergeSourceCommit *commitRefJSON `json:"lastMergeSourceCommit,omitempty"`
	LastMergeTargetCommit *commitRefJSON `json:"lastMergeTargetCommit,omitempty"`
	LastMergeCommit       *commitRefJSON `json:"lastMergeCommit,omitempty"`
	Reviewers             []any          `json:"reviewers"`
	URL                   string         `json:"url"`
	SupportsIterations    bool           `json:"supportsIterations"`
	ArtifactID            string         `json:"artifactId"`
}

func (s *Server) commitRef(r *repo, sha string) *commitRefJSON {
	if sha == "" {
		return nil
	}
	return &commitRefJSON{CommitID: sha, URL: s.BaseURL + "/" + r.project.id + "/_apis/git/repositories/" + r.id + "/commits/" + sha}
}

func (s *Server) pullJSON(p *pull) pullJSON {
	r := p.repo
	out := pullJSON{
		Repository: s.repoJSON(r), PullRequestID: p.id, CodeReviewID: p.codeReviewID, Status: p.status,
		CreatedBy: s.identityJSON(p.createdBy), CreationDate: ts(p.created), Title: p.title, Description: p.description,
		SourceRefName: p.source, TargetRefName: p.target, MergeStatus: p.mergeStatus, IsDraft: p.draft, MergeID: p.mergeID,
		LastMergeSourceCommit: s.commitRef(r, p.sourceSHA), LastMergeTargetCommit: s.commitRef(r, p.targetSHA),
		LastMergeCommit: s.commitRef(r, p.mergeSHA), Reviewers: []any{},
		URL:                s.BaseURL + "/" + r.project.id + "/_apis/git/repositories/" + r.id + "/pullRequests/" + strconv.FormatInt(p.id, 10),
		SupportsIterations: true,
		ArtifactID:         "vstfs:///Git/PullRequestId/" + r.project.id + "%2f" + r.id + "%2f" + strconv.FormatInt(p.id, 10),
	}
	if p.status != "active" {
		out.ClosedBy, out.ClosedDate = s.identityJSON(p.closedBy), ts(p.closed)
	}
	return out
}

// createPull answers POST …/pullrequests (201): both branches must exist and differ, and no
// active pull request may join them already. The new pull request is delivered as
// git.pullrequest.created.
func (s *Server) createPull(c *call) reply {
	var in struct {
		SourceRefName string `json:"sourceRefName"`
		TargetRefName string `json:"targetRefName"`
		Title         string `json:"title"`
		Description   string `json:"description"`
		IsDraft       bool   `json:"isDraft"`
	}
	if rep := c.decode(&in); rep != nil {
		return *rep
	}
	s.mu.Lock()
	r, rep := s.repoFor(c)
	if rep != nil {
		s.mu.Unlock()
		return *rep
	}
	refs := s.refsLocked(r)
	src, okSrc := refs[in.SourceRefName]
	tgt, okTgt := refs[in.TargetRefName]
	switch {
	case strings.TrimSpace(in.Title) == "":
		s.mu.Unlock()
		return badRequest("The pull request title cannot be empty.")
	case !strings.HasPrefix(in.SourceRefName, "refs/heads/") || !strings.HasPrefix(in.TargetRefName, "refs/heads/") || !okSrc || !okTgt:
		s.mu.Unlock()
		return errReply(http.StatusBadRequest, "GitPullRequestBranchNotFoundException",
			"TF401398: The pull request cannot be activated because the source and/or the target branch no longer exists, or the requested refs are not branches")
	case in.SourceRefName == in.TargetRefName:
		s.mu.Unlock()
		return badRequest("The source and target branch of a pull request cannot be the same.")
	}
	for _, p := range s.pulls {
		if p.repo == r && p.status == "active" && p.source == in.SourceRefName && p.target == in.TargetRefName {
			s.mu.Unlock()
			return errReply(http.StatusConflict, "GitPullRequestExistsException",
				"TF401179: An active pull request for the source and target branch already exists.")
		}
	}
	s.nextPull++
	p := &pull{id: s.nextPull, codeReviewID: s.nextPull, repo: r, title: in.Title, description: in.Description,
		source: in.SourceRefName, target: in.TargetRefName, status: "active", draft: in.IsDraft, createdBy: c.who,
		created: s.now().UTC(), sourceSHA: src, targetSHA: tgt, mergeID: newGUID(), mergeStatus: "succeeded"}
	s.pulls[p.id] = p
	out := s.pullJSON(p)
	s.mu.Unlock()
	s.deliverPull(c.r.Context(), p.id, "git.pullrequest.created", "")
	return jsonReply(http.StatusCreated, out)
}
