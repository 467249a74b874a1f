package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/store"
)

const deliveryCols = `id, integration_id, kind, host_id, event, event_action, headers, body, status,
	reason, error, attempts, test, event_ids, received_at, processed_at, body_encoding`

// skipDuplicate ends an insert of deliveries: one whose host delivery id is already stored
// for its integration is not inserted again (deduplication, DESIGN.md's second invariant).
const skipDuplicate = ` ON CONFLICT (kind, integration_id, dedup_key) WHERE dedup_key <> '' DO NOTHING`

// batchTimeout bounds one group commit, so that Close cannot hang on a dead database.
const batchTimeout = 30 * time.Second

func scanDelivery(s scanner) (store.Delivery, error) {
	var (
		d                   store.Delivery
		headers, eventIDs   string
		received, processed int64
		encoding            string
	)
	err := s.Scan(&d.ID, &d.IntegrationID, &d.Kind, &d.HostID, &d.Event, &d.Action, &headers,
		&d.Body, &d.Status, &d.Reason, &d.Error, &d.Attempts, &d.Test, &eventIDs, &received, &processed,
		&encoding)
	if err != nil {
		return d, err
	}
	if d.Body, err = decodeBody(d.Body, encoding); err != nil {
		return d, fmt.Errorf("read body of delivery %s: %w", d.ID, err)
	}
	if err := fromJSON(headers, &d.Headers); err != nil {
		return d, fmt.Errorf("decode headers of delivery %s: %w", d.ID, err)
	}
	if err := fromJSON(eventIDs, &d.EventIDs); err != nil {
		return d, fmt.Errorf("decode event ids of delivery %s: %w", d.ID, err)
	}
	d.ReceivedAt, d.ProcessedAt = fromMicros(received), fromMicros(processed)
	return d, nil
}

// deliveryRequest is one InsertDelivery call waiting for the group committer. The committer
// owns d and job; the caller reads only the answer.
type deliveryRequest struct {
	ctx     context.Context
	d       store.Delivery
	headers string
	events  string
	body    []byte // d.Body as stored, encoded as bodyEnc says
	bodyEnc string
	// bodyBuf holds body when it was compressed; the committer releases it after the commit.
	bodyBuf *[]byte
	// dedupKey is what the deduplication index holds for d.HostID (dedupkey.go).
	dedupKey string
	// keys hands out the delivery's row key on SQLite (deliverykey.go); nil on PostgreSQL.
	// The committer takes a key as it writes the row, so that keys grow in the order rows
	// are written and every row appends to the table. When the caller gave no id, the id is
	// made then, from the key and idRand; otherwise delivery_keys maps the given id to it.
	keys   *deliveryKeys
	idRand [8]byte
	madeID bool // d.ID was made from key
	// jobOfID: job is not shareable and its args are the delivery's id, written once known.
	jobOfID bool
	job     jobRow
	answer  chan deliveryAnswer // buffered: the committer never blocks on a caller gone away
}

type deliveryAnswer struct {
	id       string
	inserted bool
	err      error
}

// InsertDelivery writes a verified delivery and, when it is new, its processing job, in the
// same transaction, and returns once that transaction is durable. Concurrent callers are
// committed together by one goroutine (group commit). It generates d.ID when empty and sets
// d.ReceivedAt (now when zero) and d.Status (received when empty). A delivery whose (Kind,
// IntegrationID, HostID) is stored already is a duplicate: nothing is written, inserted is
// false and d.ID is set to the stored delivery's id. Deliveries with an empty HostID are never
// duplicates.
//
// The job's Kind is required. When job.Args is nil the job's args are
// store.DeliveryJobArgs{DeliveryID: d.ID}; otherwise job.Args is marshalled as given. Such a
// default job (nil Args, no UniqueKey, no RunAt) is shared by the deliveries of one group
// commit that have one (same Kind and MaxAttempts): its args then list them all in
// DeliveryIDs, in the order they were committed.
//
// An error means the delivery may or may not have been committed (the context ended, the
// database failed): the host's retry is then deduplicated.
func (db *DB) InsertDelivery(ctx context.Context, d *store.Delivery, job store.NewJob) (bool, error) {
	req := &deliveryRequest{ctx: ctx, d: *d, answer: make(chan deliveryAnswer, 1)}
	req.d.ReceivedAt = orNow(req.d.ReceivedAt)
	switch {
	case !db.dialect.postgres:
		req.keys = &db.keys
		if req.d.ID == "" {
			// crypto/rand.Read never returns an error (it panics if the system source fails).
			_, _ = rand.Read(req.idRand[:])
		}
	case req.d.ID == "":
		req.d.ID = newIDAt(prefixDelivery, req.d.ReceivedAt)
	}
	if req.d.Status == "" {
		req.d.Status = store.DeliveryReceived
	}
	if job.Kind == "" {
		return false, fmt.Errorf("insert delivery %s: the processing job has no kind", req.d.HostID)
	}
	var err error
	if job.Args == nil && job.UniqueKey == "" && job.RunAt.IsZero() {
		// Shareable: writeDeliveryJobs writes its args, once per batch.
		req.job = jobRow{kind: job.Kind, maxAttempts: attemptsOr(job.MaxAttempts), shareable: true}
	} else {
		req.jobOfID = job.Args == nil // the id may be made by the committer
		if req.job, err = newJobRow(job); err != nil {
			return false, fmt.Errorf("insert delivery %s: %w", req.d.HostID, err)
		}
	}
	req.headers = headersJSON(req.d.Headers)
	req.events = "null"
	if req.d.EventIDs != nil {
		if req.events, err = toJSON(req.d.EventIDs); err != nil {
			return false, fmt.Errorf("insert delivery %s: encode event ids: %w", req.d.HostID, err)
		}
	}
	// Compressed here, in the caller's goroutine, not by the single committer.
	req.body, req.bodyEnc, req.bodyBuf = db.bodies.encode(req.d.Body)
	req.dedupKey = dedupKey(req.d.HostID)
	select {
	case db.commits <- req:
	case <-db.stop:
		db.bodies.release(req.bodyBuf)
		return false, fmt.Errorf("insert delivery %s: %w", req.d.HostID, ErrClosed)
	case <-ctx.Done():
		db.bodies.release(req.bodyBuf)
		return false, fmt.Errorf("insert delivery %s: %w", req.d.HostID, ctx.Err())
	}
	select {
	case a := <-req.answer:
		if a.err != nil {
			return false, fmt.Errorf("insert delivery %s: %w", req.d.HostID, a.err)
		}
		d.ID = a.id
		d.ReceivedAt = req.d.ReceivedAt
		d.Status = req.d.Status
		return a.inserted, nil
	case <-ctx.Done():
		return false, fmt.Errorf("insert delivery %s: %w", req.d.HostID, ctx.Err())
	}
}

// CommitStats reports how many group commits ran and how many deliveries they carried
// together, for metrics: their ratio is the mean batch size.
func (db *DB) CommitStats() (batches, deliveries int64) {
	return db.batches.Load(), db.batched.Load()
}

// commitLoop is the group committer: it takes the first waiting request, every other one
// already queued (up to maxBatch), and commits them in one transaction, so that one fsync
// serves them all. On SQLite the flush of one batch overlaps the next (commitOverlapped).
func (db *DB) commitLoop() {
	defer close(db.stopped)
	var flushing <-chan struct{} // SQLite: closed when the batch being flushed is answered
	defer func() {
		if flushing != nil {
			<-flushing
		}
	}()
	for {
		var first *deliveryRequest
		select {
		case <-db.stop:
			return
		case first = <-db.commits:
		}
		batch := []*deliveryRequest{first}
	fill:
		for len(batch) < db.maxBatch {
			select {
			case r := <-db.commits:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		if db.dialect.postgres {
			db.commitBatch(batch)
			continue
		}
		flushing = db.commitOverlapped(batch, flushing)
	}
}

// commitOverlapped commits a batch on SQLite while the previous one is still being flushed,
// and returns a channel closed once this batch is flushed and answered. It inserts the batch,
// and whatever arrives meanwhile, in a transaction it commits only when the previous flush
// is over, and hands the flush of its own commit to a goroutine. On a busy machine the flush
// of the WAL (its fsync, and the wake-up after it) is most of a commit's time: this way the
// committer spends it inserting the next batch, and every batch still holds what arrived
// during one flush. Each delivery is answered only after the flush that covers it. When the
// transaction fails, each member is committed alone, as commitBatch does.
func (db *DB) commitOverlapped(batch []*deliveryRequest, prev <-chan struct{}) <-chan struct{} {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	b := &overlappedBatch{batch: batch, prev: prev}
	defer func() {
		for _, r := range b.batch {
			db.bodies.release(r.bodyBuf)
		}
	}()
	db.batches.Add(1)
	// Before the transaction: with every frame copied, it starts the WAL over.
	db.ckpt.catchUp(ctx, db.writer)
	conn, err := db.writer.Conn(ctx)
	if err == nil {
		err = conn.Raw(func(dc any) error {
			db.raw.on(dc)
			return db.writeOverlapped(ctx, &db.raw, b)
		})
		err = errors.Join(err, conn.Close())
	}
	if b.prev != nil { // the transaction did not get that far: the flush still orders answers
		<-b.prev
	}
	live, answers := b.live, b.answers
	db.batched.Add(int64(len(live)))
	if err != nil {
		db.commitOneByOne(ctx, append(live, b.batch[b.added:]...), err)
		return nil
	}
	if len(live) == 0 {
		return nil
	}
	db.ckpt.poke()
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := db.flush()
		for i, r := range live {
			if err != nil {
				r.answer <- deliveryAnswer{err: err}
			} else {
				r.answer <- answers[i]
			}
		}
	}()
	return done
}

// overlappedBatch is the batch commitOverlapped is writing.
type overlappedBatch struct {
	batch   []*deliveryRequest // grows while prev is being flushed
	live    []*deliveryRequest // inserted, or failed while being inserted
	answers []deliveryAnswer   // live's
	added   int                // members of batch given to add
	prev    <-chan struct{}    // the previous batch's flush; nil once it is over
}

// writeOverlapped writes b in one transaction through w and commits it, once the previous
// batch's flush is over; what arrives until then joins b. It rolls back on any error.
func (db *DB) writeOverlapped(ctx context.Context, w *rawWriter, b *overlappedBatch) error {
	// Nothing here watches a context: the driver would start a goroutine per statement to
	// do it, which cost more than an insert's bind. An in-process statement cannot hang
	// (busy_timeout bounds its waits).
	ctx = context.WithoutCancel(ctx)
	if _, err := w.execCount(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	add := func(r *deliveryRequest) error {
		b.added++
		if err := r.ctx.Err(); err != nil {
			r.answer <- deliveryAnswer{err: err}
			return nil
		}
		b.live = append(b.live, r)
		a, err := writeDelivery(ctx, w, r)
		b.answers = append(b.answers, a)
		return err
	}
	var err error
	for err == nil && b.added < len(b.batch) {
		err = add(b.batch[b.added])
	}
	// While the previous batch is flushed, what arrives joins this one.
	for b.prev != nil {
		commits := db.commits
		if err != nil || len(b.batch) >= db.maxBatch {
			commits = nil
		}
		select {
		case <-b.prev:
			b.prev = nil
		case r := <-commits:
			b.batch = append(b.batch, r)
			err = add(r)
		}
	}
	if err == nil && len(b.live) > 0 {
		err = writeDeliveryJobs(ctx, w, b.live, b.answers)
	}
	if err != nil || len(b.live) == 0 {
		_, _ = w.execCount(ctx, "ROLLBACK")
		return err
	}
	if _, err := w.execCount(ctx, "COMMIT"); err != nil {
		_, _ = w.execCount(ctx, "ROLLBACK") // when the failed COMMIT left the transaction open
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// commitBatch commits a batch and answers every member. When the batch transaction fails,
// each member is retried alone so that one bad row does not fail the others.
func (db *DB) commitBatch(batch []*deliveryRequest) {
	// The committer is the last to read each request's stored body; its caller never does.
	defer func() {
		for _, r := range batch {
			db.bodies.release(r.bodyBuf)
		}
	}()
	live := make([]*deliveryRequest, 0, len(batch))
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.answer <- deliveryAnswer{err: err}
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	db.batches.Add(1)
	db.batched.Add(int64(len(live)))
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	var answers []deliveryAnswer
	err := db.inTx(ctx, func(o ops) error {
		var err error
		answers, err = o.insertDeliveries(ctx, live)
		return err
	})
	if err == nil {
		for i, r := range live {
			r.answer <- answers[i]
		}
		return
	}
	if len(live) == 1 {
		live[0].answer <- deliveryAnswer{err: err}
		return
	}
	db.commitOneByOne(ctx, live, err)
}

// commitOneByOne commits and answers each member of a batch whose transaction failed (with
// err) in a transaction of its own, so that one bad row does not fail the others.
func (db *DB) commitOneByOne(ctx context.Context, reqs []*deliveryRequest, err error) {
	if len(reqs) > 1 {
		db.log.Warn("group commit failed; committing its deliveries one by one", "size", len(reqs), "err", err)
	}
	for _, r := range reqs {
		var a deliveryAnswer
		a.err = db.inTx(ctx, func(o ops) error {
			var err error
			a, err = o.insertDelivery(ctx, r)
			return err
		})
		r.answer <- a
	}
}

// deliveriesPerStatement keeps a multi-row insert under both engines' parameter limits.
const deliveriesPerStatement = 256

// insertDeliveries writes a batch of deliveries (in chunks under the engines' parameter
// limits) and their processing jobs; duplicates are looked up one by one, as they are rare.
func (o ops) insertDeliveries(ctx context.Context, reqs []*deliveryRequest) ([]deliveryAnswer, error) {
	answers := make([]deliveryAnswer, 0, len(reqs))
	for len(reqs) > 0 {
		n := min(len(reqs), deliveriesPerStatement)
		a, err := o.insertDeliveryChunk(ctx, reqs[:n])
		if err != nil {
			return nil, err
		}
		answers = append(answers, a...)
		reqs = reqs[n:]
	}
	return answers, nil
}

func (o ops) insertDeliveryChunk(ctx context.Context, reqs []*deliveryRequest) ([]deliveryAnswer, error) {
	var answers []deliveryAnswer
	var err error
	if len(reqs) == 1 || !o.db.dialect.postgres {
		// SQLite runs in-process: its prepared single-row statements cost less than parsing
		// a multi-row one. PostgreSQL saves round trips with one statement.
		answers = make([]deliveryAnswer, len(reqs))
		for i, r := range reqs {
			if answers[i], err = writeDelivery(ctx, o, r); err != nil {
				return nil, err
			}
		}
	} else if answers, err = o.insertDeliveryRows(ctx, reqs); err != nil {
		return nil, err
	}
	if err := writeDeliveryJobs(ctx, o, reqs, answers); err != nil {
		return nil, err
	}
	return answers, nil
}

// insertDeliveryRows writes deliveries with one multi-row statement (PostgreSQL) and finds
// the stored duplicates of those it did not insert.
func (o ops) insertDeliveryRows(ctx context.Context, reqs []*deliveryRequest) ([]deliveryAnswer, error) {
	var b strings.Builder
	b.WriteString(`INSERT INTO deliveries (` + deliveryCols + `, dedup_key) VALUES `)
	args := make([]any, 0, len(reqs)*18)
	for i, r := range reqs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
		d := &r.d
		args = append(args, d.ID, d.IntegrationID, d.Kind, d.HostID, d.Event, d.Action, r.headers, r.body, d.Status,
			d.Reason, d.Error, d.Attempts, d.Test, r.events, micros(d.ReceivedAt), micros(d.ProcessedAt), r.bodyEnc,
			r.dedupKey)
	}
	b.WriteString(skipDuplicate + ` RETURNING id`)
	rows, err := o.writeQuery(ctx, b.String(), args...)
	if err != nil {
		return nil, err
	}
	inserted := make(map[string]bool, len(reqs))
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		inserted[id] = true
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	answers := make([]deliveryAnswer, len(reqs))
	for i, r := range reqs {
		if inserted[r.d.ID] {
			answers[i] = deliveryAnswer{id: r.d.ID, inserted: true}
			continue
		}
		id, err := duplicateOf(ctx, o, r)
		if err != nil {
			return nil, err
		}
		answers[i] = deliveryAnswer{id: id}
	}
	return answers, nil
}

// deliveryWriter runs the statements that write a batch of deliveries: ops through
// database/sql, or the SQLite group committer's rawWriter. Both write with writeDelivery and
// writeDeliveryJobs.
type deliveryWriter interface {
	// execCount runs q and returns how many rows it changed.
	execCount(ctx context.Context, q string, args ...any) (int64, error)
	// queryText runs q, which selects one text column, and returns its first row
	// (sql.ErrNoRows when there is none).
	queryText(ctx context.Context, q string, args ...any) (string, error)
	// writeJob writes a job whose id nobody needs.
	writeJob(ctx context.Context, j jobRow) error
}

var (
	_ deliveryWriter = ops{}
	_ deliveryWriter = (*rawWriter)(nil)
)

func (o ops) execCount(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := o.exec(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return affected(res)
}

func (o ops) queryText(ctx context.Context, q string, args ...any) (string, error) {
	var s string
	err := o.writeRow(ctx, q, args...).Scan(&s)
	return s, err
}

func (o ops) writeJob(ctx context.Context, j jobRow) error { return o.insertSimpleJob(ctx, j) }

// writeDeliveryJobs writes the processing jobs of the deliveries a batch inserted
// (deliveryJobs).
func writeDeliveryJobs(ctx context.Context, w deliveryWriter, reqs []*deliveryRequest, answers []deliveryAnswer) error {
	jobs, err := deliveryJobs(reqs, answers)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		if err := w.writeJob(ctx, j); err != nil {
			return fmt.Errorf("insert job: %w", err)
		}
	}
	return nil
}

// deliveryJobs returns the processing jobs of the deliveries a batch inserted. Those whose
// job is the default one (see InsertDelivery) share one job per kind and attempt bound: a
// batch then costs the writer one job row instead of one per delivery, and the processor one
// claim and one completion.
func deliveryJobs(reqs []*deliveryRequest, answers []deliveryAnswer) ([]jobRow, error) {
	type shared struct {
		row jobRow
		ids []string
	}
	var (
		jobs   []jobRow
		groups []*shared
	)
next:
	for i, r := range reqs {
		if !answers[i].inserted {
			continue
		}
		if !r.job.shareable {
			j := r.job
			if r.jobOfID {
				b, err := json.Marshal(store.DeliveryJobArgs{DeliveryID: r.d.ID})
				if err != nil {
					return nil, fmt.Errorf("insert job: %w", err)
				}
				j.args = string(b)
			}
			jobs = append(jobs, j)
			continue
		}
		for _, g := range groups {
			if g.row.kind == r.job.kind && g.row.maxAttempts == r.job.maxAttempts {
				g.ids = append(g.ids, r.d.ID)
				continue next
			}
		}
		groups = append(groups, &shared{row: r.job, ids: []string{r.d.ID}})
	}
	for _, g := range groups {
		args := store.DeliveryJobArgs{DeliveryIDs: g.ids}
		if len(g.ids) == 1 {
			args = store.DeliveryJobArgs{DeliveryID: g.ids[0]}
		}
		b, err := json.Marshal(args)
		if err != nil {
			return nil, fmt.Errorf("insert job: %w", err)
		}
		g.row.args = string(b)
		g.row.runAt = now()
		jobs = append(jobs, g.row)
	}
	return jobs, nil
}

// writeDelivery writes one delivery through w, or finds the stored duplicate.
func writeDelivery(ctx context.Context, w deliveryWriter, r *deliveryRequest) (deliveryAnswer, error) {
	d := &r.d
	var key int64
	if r.keys != nil { // a new key at each attempt, so that keys grow as rows are written
		key = r.keys.next(d.ReceivedAt)
		if d.ID == "" || r.madeID {
			d.ID, r.madeID = deliveryID(key, r.idRand), true
		}
	}
	// Every value is of a type the SQLite driver binds as it is (int64, not int): rawWriter
	// hands them over without database/sql's conversion.
	args := make([]any, 0, 19)
	received := asReceived(r)
	q := sqlInsertDelivery
	if received {
		q = sqlInsertReceived
		args = append(args, d.ID, d.IntegrationID, d.Kind, d.HostID, d.Event, d.Action, r.headers, r.body,
			d.Test, micros(d.ReceivedAt), r.bodyEnc, r.dedupKey)
	} else {
		args = append(args, d.ID, d.IntegrationID, d.Kind, d.HostID, d.Event, d.Action, r.headers, r.body,
			d.Status, d.Reason, d.Error, int64(d.Attempts), d.Test, r.events, micros(d.ReceivedAt),
			micros(d.ProcessedAt), r.bodyEnc, r.dedupKey)
	}
	if r.keys != nil {
		q = sqlInsertDeliveryKeyed
		if received {
			q = sqlInsertReceivedKeyed
		}
		args = append(args, key)
	}
	n, err := w.execCount(ctx, q, args...)
	if err != nil {
		return deliveryAnswer{}, err
	}
	if n == 0 {
		id, err := duplicateOf(ctx, w, r)
		return deliveryAnswer{id: id}, err
	}
	if r.keys != nil && !r.madeID {
		if _, err := w.execCount(ctx, sqlMapKey, d.ID, key); err != nil {
			return deliveryAnswer{}, fmt.Errorf("map delivery id to its key: %w", err)
		}
	}
	return deliveryAnswer{id: d.ID, inserted: true}, nil
}

// asReceived reports whether r's delivery is as ingest stores every one: the columns not yet
// set keep their defaults, and the six values fewer to box, convert and bind are a tenth of
// the insert's own time.
func asReceived(r *deliveryRequest) bool {
	d := &r.d
	return d.Status == store.DeliveryReceived && d.Reason == "" && d.Error == "" && d.Attempts == 0 &&
		r.events == "null" && d.ProcessedAt.IsZero()
}

// duplicateOf returns the id of the stored delivery r duplicates.
func duplicateOf(ctx context.Context, w deliveryWriter, r *deliveryRequest) (string, error) {
	id, err := w.queryText(ctx, sqlDuplicateOf, r.d.Kind, r.d.IntegrationID, r.dedupKey)
	if err != nil {
		return "", fmt.Errorf("find duplicate: %w", err)
	}
	return id, nil
}

// insertDelivery writes one delivery and its job, or finds the stored duplicate.
func (o ops) insertDelivery(ctx context.Context, r *deliveryRequest) (deliveryAnswer, error) {
	a, err := writeDelivery(ctx, o, r)
	if err != nil || !a.inserted {
		return a, err
	}
	if err := writeDeliveryJobs(ctx, o, []*deliveryRequest{r}, []deliveryAnswer{a}); err != nil {
		return deliveryAnswer{}, err
	}
	return a, nil
}

func (o ops) GetDelivery(ctx context.Context, id string) (store.Delivery, error) {
	q, args := `SELECT `+deliveryCols+` FROM deliveries WHERE id = ?`, []any{id}
	if !o.db.dialect.postgres {
		q, args = `SELECT `+deliveryCols+` FROM deliveries WHERE n = `+keyOf+` AND id = ?`, append(keyArgs(id), id)
	}
	d, err := scanDelivery(o.queryRow(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return d, fmt.Errorf("get delivery %s: %w", id, err)
	}
	return d, nil
}

// maxGetDeliveries is the most ids one GetDeliveries statement names: a group commit's worth
// (the processor reads a batch at once), and few enough distinct statements to keep prepared.
const maxGetDeliveries = 64

// GetDeliveries returns the deliveries among ids in the order of ids, read maxGetDeliveries
// at a time.
func (o ops) GetDeliveries(ctx context.Context, ids []string) ([]store.Delivery, error) {
	byID := make(map[string]store.Delivery, len(ids))
	for start := 0; start < len(ids); start += maxGetDeliveries {
		chunk := ids[start:min(start+maxGetDeliveries, len(ids))]
		args := make([]any, len(chunk), 2*len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		q := `SELECT ` + deliveryCols + ` FROM deliveries WHERE id IN (` + placeholders(len(chunk)) + `)`
		if !o.db.dialect.postgres {
			// By the keys the ids hold, and by those delivery_keys maps them to; rows of
			// another id are left out below.
			for _, id := range chunk {
				args = append(args, idKey(id))
			}
			q = `SELECT ` + deliveryCols + ` FROM deliveries WHERE n IN (SELECT k.n FROM delivery_keys k WHERE k.id IN (` +
				placeholders(len(chunk)) + `)) UNION ALL SELECT ` + deliveryCols + ` FROM deliveries WHERE n IN (` +
				placeholders(len(chunk)) + `)`
		}
		rows, err := o.query(ctx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("get %d deliveries: %w", len(ids), err)
		}
		for rows.Next() {
			d, err := scanDelivery(rows)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("get %d deliveries: %w", len(ids), err)
			}
			byID[d.ID] = d
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("get %d deliveries: %w", len(ids), err)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("get %d deliveries: %w", len(ids), err)
		}
	}
	out := make([]store.Delivery, 0, len(byID))
	for _, id := range ids {
		if d, ok := byID[id]; ok {
			out = append(out, d)
			delete(byID, id) // an id named twice is returned once
		}
	}
	return out, nil
}

// ListDeliveries returns a page of deliveries, newest first, and the cursor of the next
// page, empty on the last. A cursor not made by this method gives ErrBadCursor. Newest first
// is id order on PostgreSQL, key order on SQLite: both begin with the millisecond the
// delivery was received (newIDAt, deliverykey.go).
func (o ops) ListDeliveries(ctx context.Context, f store.DeliveryFilter) ([]store.Delivery, string, error) {
	var (
		where []string
		args  []any
	)
	if f.IntegrationID != "" {
		where, args = append(where, "integration_id = ?"), append(args, f.IntegrationID)
	}
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, f.Status)
	}
	if f.After != "" {
		c, err := decodeCursor(f.After, 1)
		if err != nil {
			return nil, "", fmt.Errorf("list deliveries: %w", err)
		}
		if !strings.HasPrefix(c[0], prefixDelivery+"_") {
			// A cursor of another list (or of this one before ids ordered it).
			return nil, "", fmt.Errorf("list deliveries: %w", ErrBadCursor)
		}
		if o.db.dialect.postgres {
			where, args = append(where, "id < ?"), append(args, c[0])
		} else {
			where, args = append(where, "n < "+keyOf), append(args, keyArgs(c[0])...)
		}
	}
	limit := pageLimit(f.Limit)
	q := `SELECT ` + deliveryCols + ` FROM deliveries`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	order := "id"
	if !o.db.dialect.postgres {
		order = "n" // in the order of ids the store makes (deliverykey.go)
	}
	q += ` ORDER BY ` + order + ` DESC LIMIT ` + strconv.Itoa(limit+1)
	rows, err := o.query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list deliveries: %w", err)
	}
	defer rows.Close()
	var items []store.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, "", fmt.Errorf("list deliveries: %w", err)
		}
		items = append(items, d)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list deliveries: %w", err)
	}
	next := ""
	if len(items) > limit {
		items = items[:limit]
		last := items[limit-1]
		next = encodeCursor(last.ID)
	}
	return items, next, nil
}

// FinishDelivery records the outcome of one processing attempt: d's Status, Reason, Error
// and EventIDs are written, ProcessedAt is set (now when zero) and Attempts is incremented,
// the new count being copied into d. ErrNotFound when d.ID does not exist.
func (o ops) FinishDelivery(ctx context.Context, d *store.Delivery) error {
	processed := orNow(d.ProcessedAt)
	ids, err := toJSON(d.EventIDs)
	if err != nil {
		return fmt.Errorf("finish delivery %s: encode event ids: %w", d.ID, err)
	}
	q := `UPDATE deliveries SET status = ?, reason = ?, error = ?, event_ids = ?,
		processed_at = ?, attempts = attempts + 1 WHERE id = ?`
	args := []any{d.Status, d.Reason, d.Error, ids, micros(processed), d.ID}
	if !o.db.dialect.postgres {
		q, args = q+` AND n = `+keyOf, append(args, keyArgs(d.ID)...)
	}
	var attempts int
	err = o.writeRow(ctx, q+` RETURNING attempts`, args...).Scan(&attempts)
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("finish delivery %s: %w", d.ID, err)
	}
	d.ProcessedAt, d.Attempts = processed, attempts
	return nil
}
