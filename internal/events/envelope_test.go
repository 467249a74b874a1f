package events

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/forgeway/forgeway/internal/forge"
)

// The data document holds the common fields and the event's own, once each.
func TestBuildData(t *testing.T) {
	repo := &forge.EventRepository{ID: "1", FullName: "o/r", Name: "r", Owner: "o"}
	for _, ev := range []forge.Event{
		{Type: forge.EventPush, Repository: repo, Sender: forge.Actor{Login: "u"}, Data: forge.PushData{Ref: "refs/heads/main", Commits: []forge.Commit{}}},
		{Type: forge.EventPing, Data: forge.PingData{}},
		{Type: forge.EventPing},
	} {
		ce, err := Build(DeliveryRef{ID: "dlv_1", HostID: "h", Kind: "github", IntegrationID: "int_1", ReceivedAt: time.Unix(0, 0)}, 0, ev)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(ce.Data, &got); err != nil {
			t.Fatalf("%s: %s: %v", ev.Type, ce.Data, err)
		}
		want := map[string]any{"integration_id": "int_1", "repository": nil, "sender": map[string]any{"login": "", "name": "", "email": ""}}
		if ev.Repository != nil {
			raw, _ := json.Marshal(ev.Repository)
			var r map[string]any
			json.Unmarshal(raw, &r)
			want["repository"] = r
			want["sender"] = map[string]any{"login": "u", "name": "", "email": ""}
		}
		if ev.Data != nil {
			raw, _ := json.Marshal(ev.Data)
			var d map[string]any
			json.Unmarshal(raw, &d)
			for k, v := range d {
				want[k] = v
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s data (-want +got):\n%s", ev.Type, diff)
		}
	}
}
