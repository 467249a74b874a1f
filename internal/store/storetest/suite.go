package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/store"
)

// Run runs the store contract suite. open must return a fresh, empty store for each subtest
// and arrange for it to be closed when that subtest ends.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st store.Store)
	}{
		{"Integrations", testIntegrations},
		{"IntegrationRoutes", testIntegrationRoutes},
		{"IntegrationDeleteCascades", testIntegrationDeleteCascades},
		{"Installations", testInstallations},
		{"RepositoryUpsertKeepsState", testRepositoryUpsertKeepsState},
		{"RepositoryBulkUpsert", testRepositoryBulkUpsert},
		{"RepositoryListAndFilters", testRepositoryList},
		{"RepositoryPagination", testRepositoryPagination},
		{"DeleteRepositoriesNotSeen", testDeleteRepositoriesNotSeen},
		{"InsertDelivery", testInsertDelivery},
		{"InsertDeliveryWithOutcome", testInsertDeliveryWithOutcome},
		{"InsertDeliveryConcurrentDuplicates", testInsertDeliveryConcurrentDuplicates},
		{"InsertDeliveryConcurrentDistinct", testInsertDeliveryConcurrentDistinct},
		{"InsertDeliveryUniqueJob", testInsertDeliveryUniqueJob},
		{"DeliveryListAndFinish", testDeliveryList},
		{"GetDeliveries", testGetDeliveries},
		{"Events", testEvents},
		{"EventFilters", testEventFilters},
		{"PullRequestHeads", testPullRequestHeads},
		{"UserCredentials", testUserCredentials},
		{"APITokensAndProjects", testAPITokensAndProjects},
		{"CacheEntries", testCacheEntries},
		{"KV", testKV},
		{"PutKVIfAbsentConcurrent", testPutKVIfAbsentConcurrent},
		{"TxRollback", testTxRollback},
		{"TxCommit", testTxCommit},
		{"RewriteSecrets", testRewriteSecrets},
		{"JobInsertAndGet", testJobInsertAndGet},
		{"JobClaimOrderAndKinds", testJobClaimOrder},
		{"JobClaimConcurrent", testJobClaimConcurrent},
		{"JobLeaseTakeover", testJobLeaseTakeover},
		{"JobLeaseExpiredOnLastAttempt", testJobLeaseExpiredLastAttempt},
		{"JobFail", testJobFail},
		{"JobUniqueKey", testJobUniqueKey},
		{"JobRetry", testJobRetry},
		{"JobListAndStats", testJobListAndStats},
		{"JobIDsNeverGoBack", testJobIDsNeverGoBack},
		{"Subscriptions", testSubscriptions},
		{"SubscriptionEnqueue", testSubscriptionEnqueue},
		{"SubscriptionClaimOrder", testSubscriptionClaimOrder},
		{"SubscriptionLeaseTakeover", testSubscriptionLeaseTakeover},
		{"SubscriptionClaimConcurrent", testSubscriptionClaimConcurrent},
		{"SubscriptionPrune", testSubscriptionPrune},
		{"Prune", testPrune},
		{"Ping", testPing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

// ok fails the test at once on an error.
func ok(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// wantErr fails the test unless err matches target.
func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

// wantUTC fails the test when a time the store returned is not in UTC.
func wantUTC(t *testing.T, what string, ts ...time.Time) {
	t.Helper()
	for _, tm := range ts {
		if !tm.IsZero() && tm.Location() != time.UTC {
			t.Errorf("%s: time %v is not UTC", what, tm)
		}
	}
}

// ts is a fixed time at microsecond precision, the store's.
func ts(s string) time.Time {
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return tm.UTC()
}

// mkIntegration creates an integration of kind with route keys and returns it.
func mkIntegration(t *testing.T, st store.Tx, kind, name string, routes ...string) store.Integration {
	t.Helper()
	in := store.Integration{Kind: kind, Name: name, BaseURL: "https://" + kind + ".example", Status: store.StatusActive, RouteKeys: routes}
	ok(t, st.CreateIntegration(context.Background(), &in), "create integration "+name)
	return in
}
