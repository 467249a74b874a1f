package storetest

import (
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/store"
)

func testPrune(t *testing.T, st store.Store) {
	ctx := t.Context()
	in := mkIntegration(t, st, "github", "prune")
	now := time.Now().UTC()
	cutoff := now.Add(time.Minute)
	insert := func(hostID string, at time.Time) store.Delivery {
		d := store.Delivery{IntegrationID: in.ID, Kind: "github", HostID: hostID, Event: "push", Body: []byte(`{}`), ReceivedAt: at}
		if _, err := st.InsertDelivery(ctx, &d, store.NewJob{Kind: "delivery.process"}); err != nil {
			t.Fatal(err)
		}
		return d
	}
	finish := func(d store.Delivery, evID string) {
		d.Status, d.EventIDs = store.DeliveryProcessed, []string{evID}
		ok(t, st.FinishDelivery(ctx, &d), "finish")
		ok(t, st.AppendEvents(ctx, []store.Event{{ID: evID, IntegrationID: in.ID, DeliveryID: d.ID, Type: "dev.forgeway.push", Time: d.ReceivedAt, Document: []byte(`{}`)}}), "append")
	}
	old := insert("old", now.Add(-48*time.Hour))
	finish(old, "evt_old")
	pending := insert("pending", now.Add(-48*time.Hour)) // never processed: kept whatever its age
	recent := insert("recent", now.Add(2*time.Hour))
	finish(recent, "evt_recent")
	jobs, err := st.ClaimJobs(ctx, "w", nil, 1, time.Minute)
	ok(t, err, "claim")
	ok(t, st.CompleteJob(ctx, jobs[0].ID, "w"), "complete")
	ok(t, st.PutCacheEntry(ctx, &store.CacheEntry{IntegrationID: in.ID, Key: "k", ETag: `"e"`, Body: []byte("b")}), "cache")
	ok(t, st.PutKV(ctx, "idem/recent", []byte("x")), "kv")

	res, err := st.Prune(ctx, cutoff)
	ok(t, err, "prune")
	if res.Deliveries != 1 || res.Events != 1 || res.Jobs != 1 || res.CacheEntries != 1 || res.KV != 0 {
		t.Errorf("prune result %+v, want 1 delivery, 1 event, 1 job, 1 cache entry, 0 kv", res)
	}
	_, err = st.GetDelivery(ctx, old.ID)
	wantErr(t, err, store.ErrNotFound, "old processed delivery")
	for _, d := range []store.Delivery{pending, recent} {
		if _, err := st.GetDelivery(ctx, d.ID); err != nil {
			t.Errorf("delivery %s pruned: %v", d.HostID, err)
		}
	}
	evs, err := st.ListEvents(ctx, store.EventFilter{IntegrationID: in.ID})
	ok(t, err, "list events")
	if len(evs) != 1 || evs[0].ID != "evt_recent" {
		t.Errorf("events after prune: %+v", evs)
	}
	if _, err := st.GetJob(ctx, jobs[0].ID); err == nil {
		t.Error("completed job kept")
	}
	stats, err := st.JobStats(ctx)
	ok(t, err, "stats")
	if stats[store.JobAvailable] != 2 {
		t.Errorf("pending jobs after prune: %v", stats)
	}
	if _, err := st.GetKV(ctx, "idem/recent"); err != nil {
		t.Errorf("a recent idempotency answer was pruned: %v", err)
	}
	again, err := st.Prune(ctx, cutoff)
	ok(t, err, "prune again")
	if again != (store.PruneResult{}) {
		t.Errorf("second prune deleted %+v", again)
	}
}
