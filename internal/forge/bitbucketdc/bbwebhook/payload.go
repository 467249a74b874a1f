package bbwebhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// bbID is a Bitbucket numeric id kept as its decimal text: Bitbucket sends ids as JSON
// integers, and the contract wants strings.
type bbID string

// UnmarshalJSON accepts a JSON integer or null; anything else is a malformed payload.
func (id *bbID) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*id = ""
		return nil
	}
	if _, err := strconv.ParseUint(string(b), 10, 64); err != nil {
		return fmt.Errorf("id %.40s is not an unsigned integer", b)
	}
	*id = bbID(b)
	return nil
}

// bbTime is a timestamp as Bitbucket writes it: "2018-07-05T18:22:00+0000" for a payload's
// date, epoch milliseconds for pull request dates up to 10.2, ISO 8601 strings from 10.3. A
// value in no known form (or null) leaves the zero time: the time is informative, the core
// falls back to the receipt time, so an odd format must not cost the event.
type bbTime struct{ time.Time }

// timeLayouts are the string forms Bitbucket has been seen to use.
var timeLayouts = []string{"2006-01-02T15:04:05-0700", "2006-01-02T15:04:05.000-0700", time.RFC3339Nano}

// UnmarshalJSON never fails; see bbTime.
func (t *bbTime) UnmarshalJSON(b []byte) error {
	t.Time = time.Time{}
	if len(b) == 0 {
		return nil
	}
	if b[0] == '"' {
		var s string
		if json.Unmarshal(b, &s) != nil {
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
	if ms, err := strconv.ParseInt(string(b), 10, 64); err == nil && ms > 0 {
		t.Time = time.UnixMilli(ms).UTC()
	}
	return nil
}

// user is an actor, author or project owner.
type user struct {
	Name         string `json:"name"`
	EmailAddress string `json:"emailAddress"`
	DisplayName  string `json:"displayName"`
	Slug         string `json:"slug"`
}

// link is one entry of a links object.
type link struct {
	Href string `json:"href"`
	Name string `json:"name"`
}

type project struct {
	Key string `json:"key"`
}

// repository is a payload's repository object. links are present from Bitbucket 5.x on
// captures that include them; older captures lack them.
type repository struct {
	ID      bbID     `json:"id"`
	Slug    string   `json:"slug"`
	Name    string   `json:"name"`
	Public  bool     `json:"public"`
	Project *project `json:"project"`
	Links   struct {
		Clone []link `json:"clone"`
		Self  []link `json:"self"`
	} `json:"links"`
}

// refChange is one entry of repo:refs_changed's changes.
type refChange struct {
	Ref *struct {
		ID        string `json:"id"`
		DisplayID string `json:"displayId"`
		Type      string `json:"type"`
	} `json:"ref"`
	RefID    string `json:"refId"`
	FromHash string `json:"fromHash"`
	ToHash   string `json:"toHash"`
	Type     string `json:"type"` // ADD, UPDATE, DELETE
}

// prRef is a pull request's fromRef or toRef.
type prRef struct {
	ID           string      `json:"id"`
	DisplayID    string      `json:"displayId"`
	LatestCommit string      `json:"latestCommit"`
	Repository   *repository `json:"repository"`
}

type pullRequest struct {
	ID          int64  `json:"id"`
	Title       string `json:"title"`
	Description string `json:"description"`
	State       string `json:"state"` // OPEN, DECLINED, MERGED
	Draft       bool   `json:"draft"`
	UpdatedDate bbTime `json:"updatedDate"`
	FromRef     prRef  `json:"fromRef"`
	ToRef       prRef  `json:"toRef"`
	Author      *struct {
		User *user `json:"user"`
	} `json:"author"`
	Links struct {
		Self []link `json:"self"`
	} `json:"links"`
	Properties struct {
		MergeCommit *struct {
			ID string `json:"id"`
		} `json:"mergeCommit"`
	} `json:"properties"`
}

// payload holds the fields of every event Normalize maps.
type payload struct {
	EventKey    string       `json:"eventKey"`
	Date        bbTime       `json:"date"`
	Actor       *user        `json:"actor"`
	Repository  *repository  `json:"repository"`
	Changes     []refChange  `json:"changes"`
	PullRequest *pullRequest `json:"pullRequest"`
}

// fullName is PROJECTKEY/slug, Bitbucket's path for a repository ("" when the payload does
// not say both).
func (r *repository) fullName() string {
	if r == nil || r.Project == nil || r.Project.Key == "" || r.Slug == "" {
		return ""
	}
	return r.Project.Key + "/" + r.Slug
}

// cloneURL is the HTTP(S) clone link ("http" is Bitbucket's name for it whatever the scheme).
func (r *repository) cloneURL() string {
	for _, l := range r.Links.Clone {
		if strings.EqualFold(l.Name, "http") || strings.EqualFold(l.Name, "https") {
			return l.Href
		}
	}
	return ""
}

func firstHref(links []link) string {
	for _, l := range links {
		if l.Href != "" {
			return l.Href
		}
	}
	return ""
}
