package catalog

import (
	"strings"
	"testing"

	"github.com/forgeway/forgeway/internal/store"
)

func TestFilter(t *testing.T) {
	repos := map[string]store.Repository{
		"acme/api":     {FullName: "acme/api", Owner: "acme", Name: "api", Visibility: "private", Private: true},
		"acme/old":     {FullName: "acme/old", Owner: "acme", Name: "old", Archived: true},
		"other/tool":   {FullName: "other/tool", Owner: "other", Name: "tool", Fork: true},
		"acme/website": {FullName: "acme/website", Owner: "acme", Name: "website", Permission: "admin"},
	}
	cases := []struct {
		expr string
		want []string
	}{
		{"", []string{"acme/api", "acme/old", "acme/website", "other/tool"}},
		{"!archived && starts_with(full_name, 'acme/')", []string{"acme/api", "acme/website"}},
		{"private", []string{"acme/api"}},
		{"permission == 'admin'", []string{"acme/website"}},
		{"contains(['tool', 'old'], name)", []string{"acme/old", "other/tool"}},
		{"!fork", []string{"acme/api", "acme/old", "acme/website"}},
		{"description", nil}, // empty string is false in JMESPath
	}
	for _, c := range cases {
		f, err := CompileFilter(c.expr)
		if err != nil {
			t.Fatalf("%q: %v", c.expr, err)
		}
		var got []string
		for _, name := range []string{"acme/api", "acme/old", "acme/website", "other/tool"} {
			ok, err := f.Match(repos[name])
			if err != nil {
				t.Fatalf("%q on %s: %v", c.expr, name, err)
			}
			if ok {
				got = append(got, name)
			}
		}
		if strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("%q matched %v, want %v", c.expr, got, c.want)
		}
	}
}

func TestFilterInvalid(t *testing.T) {
	for _, expr := range []string{"!archived &&", "starts_with(full_name,", "foo[?", "starts_with(private, 'a')"} {
		_, err := CompileFilter(expr)
		if err == nil {
			t.Errorf("%q accepted", expr)
			continue
		}
		if !strings.Contains(err.Error(), "invalid filter") {
			t.Errorf("%q: error %q does not say the filter is invalid", expr, err)
		}
	}
}
