package gitea

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/forgeway/forgeway/internal/forge"
)

func TestVersionCheck(t *testing.T) {
	tests := []struct {
		raw, detail string
		ok, warning bool
	}{
		{"1.27.3", "Gitea 1.27.3", true, false},
		{"1.20.0", "Gitea 1.20.0", true, false},
		{"1.20", "Gitea 1.20", true, false},
		{"1.19.4", "Gitea 1.19.4", false, false},
		{"1.9.0", "Gitea 1.9.0", false, false},
		{"1.22.0-rc1", "Gitea 1.22.0-rc1", true, false},
		{"1.27.0+dev-12-gabc123", "Gitea 1.27.0+dev-12-gabc123", true, false},
		{"11.0.1+gitea-1.22.0", "Forgejo 11.0.1 (compatible with Gitea 1.22.0)", true, false},
		{"1.19.3-0+gitea-1.19.3", "Forgejo 1.19.3-0 (compatible with Gitea 1.19.3)", false, false},
		{"development", "Gitea development", true, true},
	}
	for _, tt := range tests {
		ch := versionCheck(tt.raw)
		if ch.Detail != tt.detail || ch.OK != tt.ok || ch.Warning != tt.warning || (!ch.OK && ch.Hint == "") {
			t.Errorf("%q: %+v", tt.raw, ch)
		}
	}
}

func TestLastPageOf(t *testing.T) {
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}
	tests := []struct {
		name     string
		header   http.Header
		firstLen int
		want     int
	}{
		{"Link last, written with another host", h("Link", `<https://public.example/api/v1/user/repos?limit=50&page=2>; rel="next",<https://public.example/api/v1/user/repos?limit=50&page=7>; rel="last"`), 50, 7},
		{"total over the page size", h("X-Total-Count", "101"), 50, 3},
		{"total fits one page", h("X-Total-Count", "12"), 12, 1},
		{"nothing", h("X-Total-Count", "0"), 0, 1},
		{"server caps the page size", h("X-Total-Count", "45"), 20, 3},
		{"no information", h(), 50, 0},
		{"bad total", h("X-Total-Count", "many"), 50, 0},
	}
	for _, tt := range tests {
		if got := lastPageOf(tt.header, tt.firstLen); got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestMissingScope(t *testing.T) {
	scoped := &forge.HostError{Status: 403, Message: "token does not have at least one of required scope(s): [read:organization read:repository]", Err: forge.ErrForbidden}
	if got := missingScope(scoped); !slices.Equal(got, []string{"read:organization", "read:repository"}) {
		t.Errorf("scopes %v", got)
	}
	notAdmin := &forge.HostError{Status: 403, Message: "user should be an owner or a collaborator with admin write of a repository", Err: forge.ErrForbidden}
	for _, err := range []error{notAdmin, errors.New("x"), &forge.HostError{Status: 404, Message: scoped.Message}} {
		if got := missingScope(err); got != nil {
			t.Errorf("%v: scopes %v", err, got)
		}
	}
}

func TestErrorText(t *testing.T) {
	tests := []struct {
		e    giteaError
		want string
	}{
		{giteaError{Message: "invalid username, password or token"}, "invalid username, password or token"},
		{giteaError{}, "Not Found"},
		{giteaError{Message: "The target couldn't be found.", Errors: raws(`"repo does not exist"`)}, "The target couldn't be found. (repo does not exist)"},
		{giteaError{Errors: raws(`"first"`, `"second"`, `{"x":1}`)}, "first (second)"},
	}
	for _, tt := range tests {
		if got := tt.e.text(404); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.e, got, tt.want)
		}
	}
}

func raws(docs ...string) []json.RawMessage {
	out := make([]json.RawMessage, 0, len(docs))
	for _, d := range docs {
		out = append(out, json.RawMessage(d))
	}
	return out
}

func TestIsWIP(t *testing.T) {
	for title, want := range map[string]bool{"WIP: x": true, "wip: x": true, "[WIP] x": true, " [wip] x": true, "Wipe x": false, "x WIP:": false} {
		if isWIP(title) != want {
			t.Errorf("%q: %v", title, !want)
		}
	}
}
