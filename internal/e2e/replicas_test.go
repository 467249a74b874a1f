package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/api"
	"github.com/forgeway/forgeway/internal/store"
	"github.com/forgeway/forgeway/internal/store/storetest"
	"github.com/forgeway/forgeway/internal/testserver"
)

// TestReplicasShareWorkOnPostgres runs two `forgeway serve` processes on one PostgreSQL
// database, sends deliveries to both, and checks that both processed jobs, every job ran
// exactly once (one attempt, one processing of each delivery), and every delivery gave one
// event.
func TestReplicasShareWorkOnPostgres(t *testing.T) {
	if os.Getenv(storetest.EnvPostgres) == "" {
		t.Skip("set " + storetest.EnvPostgres + " to run replicas on PostgreSQL")
	}
	if testing.Short() {
		t.Skip("builds and runs two server processes")
	}
	bin := buildBinary(t)
	dsn := storetest.PostgresDSN(t)
	token := "fwt_replicatestadmintoken"
	procEnv := []string{"FORGEWAY_DATABASE_URL=" + dsn, "FORGEWAY_SECRET_KEY=" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}
	a := startProcess(t, bin, t.TempDir(), freeAddr(t), token, append(procEnv, "FORGEWAY_INSTANCE_ID=replica-a")...)
	b := startProcess(t, bin, t.TempDir(), freeAddr(t), token, append(procEnv, "FORGEWAY_INSTANCE_ID=replica-b")...)
	ea := newEnv(t, a.URL, token)
	eb := newEnv(t, b.URL, token)
	id := ea.githubTokenIntegration(nil)
	body := corpusFile(t, "github", "push.json")
	sig := sign(hookSecret, body)
	const n = 300
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			target := ea
			if i%2 == 1 {
				target = eb
			}
			status, out := target.post("/webhooks/github/"+id, delivery{event: "push", id: fmt.Sprintf("replica-%d", i), body: body, signature: sig})
			if status != http.StatusAccepted {
				t.Errorf("delivery %d: %d %v", i, status, out)
			}
		}()
		if i%20 == 19 {
			wg.Wait()
		}
	}
	wg.Wait()
	testserver.Eventually(t, 60*time.Second, "every delivery processed", func() bool {
		var page api.List[api.Delivery]
		eb.MustCall("GET", "/api/v1/deliveries?status=received&integration="+id, nil, &page, 200)
		return len(page.Items) == 0
	})

	st := storetest.OpenPostgres(t, dsn)
	ctx := context.Background()
	owners := map[string]int{}
	f := store.JobFilter{Kind: "delivery.process", Page: store.Page{Limit: 500}}
	covered := map[string]int{} // delivery id -> processing jobs naming it
	for {
		jobs, next, err := st.ListJobs(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			var args store.DeliveryJobArgs
			if err := json.Unmarshal(j.Args, &args); err != nil {
				t.Fatalf("job %d args %s: %v", j.ID, j.Args, err)
			}
			for _, d := range args.IDs() {
				covered[d]++
			}
			owners[j.LeaseOwner]++
			if j.State != store.JobCompleted || j.Attempt != 1 {
				t.Errorf("job %d: state %s after %d attempts", j.ID, j.State, j.Attempt)
			}
		}
		if next == "" {
			break
		}
		f.After = next
	}
	// Deliveries committed together share a job: every delivery is in exactly one.
	if len(covered) != n {
		t.Errorf("processing jobs name %d deliveries, want %d", len(covered), n)
	}
	for d, times := range covered {
		if times != 1 {
			t.Errorf("delivery %s is in %d processing jobs", d, times)
		}
	}
	if owners["replica-a"] == 0 || owners["replica-b"] == 0 {
		t.Errorf("work was not shared: %v", owners)
	}
	t.Logf("processing jobs by replica: %v", owners)
	dl := store.DeliveryFilter{IntegrationID: id, Page: store.Page{Limit: 500}}
	for {
		ds, next, err := st.ListDeliveries(ctx, dl)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if d.Attempts != 1 || len(d.EventIDs) != 1 {
				t.Errorf("delivery %s processed %d times, %d events", d.HostID, d.Attempts, len(d.EventIDs))
			}
		}
		if next == "" {
			break
		}
		dl.After = next
	}
}
