package glwebhook

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
)

// glTime reads the timestamps GitLab writes in webhook payloads: RFC 3339
// ("2013-12-03T17:23:34Z") in most, "2017-12-10 17:01:11 UTC" in older merge request
// payloads. Anything else, or null, is the zero time: a time is never guessed.
type glTime struct{ time.Time }

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05 MST",
	"2006-01-02 15:04:05 -0700",
	"2006-01-02T15:04:05.000-07:00",
}

// UnmarshalJSON reads the layouts above; it never fails, so an odd time does not make a
// delivery malformed.
func (t *glTime) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) != nil || s == "" {
		return nil
	}
	for _, layout := range timeLayouts {
		if v, err := time.Parse(layout, s); err == nil {
			t.Time = v.UTC()
			return nil
		}
	}
	return nil
}

// project is the "project" object of push, tag push and merge request payloads (and
// object_attributes.source/target).
type project struct {
	ID                int64  `json:"id"`
	Name              string `json:"name"`
	WebURL            string `json:"web_url"`
	GitHTTPURL        string `json:"git_http_url"`
	HTTPURL           string `json:"http_url"`
	Homepage          string `json:"homepage"`
	VisibilityLevel   *int   `json:"visibility_level"`
	PathWithNamespace string `json:"path_with_namespace"`
	DefaultBranch     string `json:"default_branch"`
}

// visibilityPublic is GitLab's visibility_level of a public project (private is 0,
// internal 10).
const visibilityPublic = 20

// splitPath splits "group/subgroup/name" into the namespace path and the project path.
func splitPath(full string) (namespace, name string) {
	i := strings.LastIndex(full, "/")
	if i < 0 {
		return "", full
	}
	return full[:i], full[i+1:]
}

// eventRepository maps the project of a payload; id is the payload's top-level project_id,
// used when the project object has none (system hook push events). Name is the last segment
// of path_with_namespace and Owner the namespace's full path, as discovery reports them.
func eventRepository(p *project, id int64) *forge.EventRepository {
	if p == nil {
		return nil
	}
	if p.ID != 0 {
		id = p.ID
	}
	ns, name := splitPath(p.PathWithNamespace)
	out := &forge.EventRepository{
		FullName:      p.PathWithNamespace,
		Name:          name,
		Owner:         ns,
		DefaultBranch: p.DefaultBranch,
		WebURL:        firstOf(p.WebURL, p.Homepage),
		CloneURL:      firstOf(p.GitHTTPURL, p.HTTPURL),
		Private:       p.VisibilityLevel != nil && *p.VisibilityLevel != visibilityPublic,
	}
	if id != 0 {
		out.ID = strconv.FormatInt(id, 10)
	}
	return out
}

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// pushPayload is a push or tag push event, from a project hook or a system hook.
type pushPayload struct {
	Before            string   `json:"before"`
	After             string   `json:"after"`
	Ref               string   `json:"ref"`
	UserName          string   `json:"user_name"`
	UserUsername      string   `json:"user_username"`
	UserEmail         string   `json:"user_email"`
	ProjectID         int64    `json:"project_id"`
	Project           *project `json:"project"`
	Commits           []commit `json:"commits"`
	TotalCommitsCount *int     `json:"total_commits_count"`
}

type commit struct {
	ID        string `json:"id"`
	Message   string `json:"message"`
	Timestamp string `json:"timestamp"`
	URL       string `json:"url"`
	Author    struct {
		Name  string `json:"name"`
		Email string `json:"email"`
	} `json:"author"`
}

// user is the "user" object of merge request payloads.
type user struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	Username string `json:"username"`
	Email    string `json:"email"`
}

func (u *user) actor() forge.Actor {
	if u == nil {
		return forge.Actor{}
	}
	return forge.Actor{Login: u.Username, Name: u.Name, Email: u.Email}
}

// mergeRequestPayload is a merge request event.
type mergeRequestPayload struct {
	User             *user    `json:"user"`
	Project          *project `json:"project"`
	ObjectAttributes *struct {
		IID            int64    `json:"iid"`
		Title          string   `json:"title"`
		Description    string   `json:"description"`
		State          string   `json:"state"`
		Action         string   `json:"action"`
		Oldrev         string   `json:"oldrev"`
		Draft          *bool    `json:"draft"`
		WorkInProgress bool     `json:"work_in_progress"`
		URL            string   `json:"url"`
		AuthorID       int64    `json:"author_id"`
		SourceBranch   string   `json:"source_branch"`
		TargetBranch   string   `json:"target_branch"`
		Source         *project `json:"source"`
		MergeCommitSHA string   `json:"merge_commit_sha"`
		UpdatedAt      glTime   `json:"updated_at"`
		LastCommit     *struct {
			ID string `json:"id"`
		} `json:"last_commit"`
	} `json:"object_attributes"`
}

// projectEventPayload is a project lifecycle event of a system hook, or of a group hook's
// "Project Hook".
type projectEventPayload struct {
	EventName            string `json:"event_name"`
	CreatedAt            glTime `json:"created_at"`
	UpdatedAt            glTime `json:"updated_at"`
	Name                 string `json:"name"`
	Path                 string `json:"path"`
	PathWithNamespace    string `json:"path_with_namespace"`
	OldPathWithNamespace string `json:"old_path_with_namespace"`
	ProjectID            int64  `json:"project_id"`
	ProjectVisibility    string `json:"project_visibility"`
}
