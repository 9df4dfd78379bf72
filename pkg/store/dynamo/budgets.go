package dynamo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wrapi-dev/wrapi/pkg/budget"
	"github.com/wrapi-dev/wrapi/pkg/money"
	"github.com/wrapi-dev/wrapi/pkg/store"
)

const (
	pkLimits   = "LIMIT"
	ctrPrefix  = "CTR#"
	resPrefix  = "RES#"
	resSK      = "RES"
	openPrefix = "OPEN#"
	// openShards spreads open markers (a write when a reservation is
	// made, a delete when it finishes) over partitions, so they are not
	// one hot key; the reaper queries each.
	openShards = 16

	// statePending is a reservation whose Reserve has not finished; it is
	// never returned by Reservations.
	statePending = "pending"

	// finishedRetention is how long a finished reservation is kept (TTL)
	// so that a retried Settle or Release still finds it and does nothing.
	finishedRetention = 24 * time.Hour

	// moveAttempts bounds re-reads when a reservation's state changes
	// under a finisher (each change is final or nearly, so two suffice).
	moveAttempts = 4
)

// errPending is returned for a reservation whose Reserve has not finished.
var errPending = errors.New("reservation is pending (its Reserve has not finished)")

func limitKey(id string) item                 { return itemKey(pkLimits, id) }
func counterKey(k budget.CounterKey) item     { return itemKey(ctrPrefix+k.LimitID, k.Window) }
func resKey(id string) item                   { return itemKey(resPrefix+id, resSK) }
func markerKey(id string, exp time.Time) item { return itemKey(openShard(id), markerSK(exp, id)) }

func openShard(id string) string {
	h := fnv.New32a()
	h.Write([]byte(id))
	return fmt.Sprintf("%s%02d", openPrefix, h.Sum32()%openShards)
}

// markerSK sorts markers by expiry: 19 digits hold any positive int64.
func markerSK(exp time.Time, id string) string {
	return fmt.Sprintf("%019d#%s", max(exp.UnixNano(), 0), id)
}

func encodeKeys(keys []budget.CounterKey) types.AttributeValue {
	l := make([]types.AttributeValue, len(keys))
	for i, k := range keys {
		l[i] = &types.AttributeValueMemberM{Value: item{"limit_id": str(k.LimitID), "window": str(k.Window)}}
	}
	return &types.AttributeValueMemberL{Value: l}
}

func (d *decoder) keys(name string) []budget.CounterKey {
	v, ok := d.it[name].(*types.AttributeValueMemberL)
	if !ok {
		if d.it[name] != nil {
			d.fail(name, fmt.Errorf("want a list, got %T", d.it[name]))
		}
		return nil
	}
	out := make([]budget.CounterKey, 0, len(v.Value))
	for _, e := range v.Value {
		m, ok := e.(*types.AttributeValueMemberM)
		if !ok {
			d.fail(name, fmt.Errorf("want a map, got %T", e))
			return nil
		}
		sub := decoder{it: m.Value}
		out = append(out, budget.CounterKey{LimitID: sub.s("limit_id"), Window: sub.s("window")})
		if sub.err != nil {
			d.fail(name, sub.err)
		}
	}
	return out
}

// PutLimit implements store.Limits.
func (s *Store) PutLimit(ctx context.Context, l budget.Limit) error {
	it := limitKey(l.ID)
	it["stage"] = str(l.Scope.Stage)
	it["project"] = str(l.Scope.Project)
	it["user"] = str(l.Scope.User)
	it["model"] = str(l.Scope.Model)
	it["period"] = str(string(l.Period))
	it["amount"] = num(int64(l.Amount))
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: it}); err != nil {
		return fmt.Errorf("dynamo: put limit %s: %w", l.ID, err)
	}
	return nil
}

func decodeLimit(it item) (budget.Limit, error) {
	d := decoder{it: it}
	l := budget.Limit{
		ID:     d.s(SortKey),
		Scope:  budget.Scope{Stage: d.s("stage"), Project: d.s("project"), User: d.s("user"), Model: d.s("model")},
		Period: budget.Period(d.s("period")),
		Amount: money.Nanos(d.i("amount")),
	}
	return l, d.err
}

// DeleteLimit implements store.Limits. Its counters are deleted too, so a
// limit set again later starts from zero (a reservation in flight may
// recreate one with its own amount: an over-count, cleared by its settle).
func (s *Store) DeleteLimit(ctx context.Context, id string) error {
	var e expr
	_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                &s.table,
		Key:                      limitKey(id),
		ConditionExpression:      aws.String("attribute_exists(" + e.n(PartitionKey) + ")"),
		ExpressionAttributeNames: e.names,
	})
	if isConditionFailed(err) {
		return fmt.Errorf("dynamo: delete limit %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("dynamo: delete limit %s: %w", id, err)
	}
	var keys []item
	err = s.queryPK(ctx, ctrPrefix+id, true, func(it item) error {
		keys = append(keys, itemKey(ctrPrefix+id, (&decoder{it: it}).s(SortKey)))
		return nil
	})
	if err == nil {
		err = s.batchDelete(ctx, keys)
	}
	if err != nil {
		return fmt.Errorf("dynamo: delete limit %s counters: %w", id, err)
	}
	return nil
}

// ListLimits implements store.Limits: one strongly consistent Query, in ID
// order (sort keys compare as bytes, as Go strings do).
func (s *Store) ListLimits(ctx context.Context) ([]budget.Limit, error) {
	var out []budget.Limit
	err := s.queryPK(ctx, pkLimits, true, func(it item) error {
		l, err := decodeLimit(it)
		out = append(out, l)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dynamo: list limits: %w", err)
	}
	return out, nil
}

// counters reads the committed amounts of keys (0 for a counter never
// written).
func (s *Store) counters(ctx context.Context, keys []budget.CounterKey) (map[budget.CounterKey]money.Nanos, error) {
	ks := make([]item, 0, len(keys))
	seen := map[budget.CounterKey]bool{}
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			ks = append(ks, counterKey(k))
		}
	}
	items, err := s.batchGet(ctx, ks)
	if err != nil {
		return nil, err
	}
	out := make(map[budget.CounterKey]money.Nanos, len(items))
	for _, it := range items {
		d := decoder{it: it}
		pk := d.s(PartitionKey)
		k := budget.CounterKey{LimitID: pk[len(ctrPrefix):], Window: d.s(SortKey)}
		out[k] = money.Nanos(d.i("committed"))
		if d.err != nil {
			return nil, fmt.Errorf("counter %s: %w", k, d.err)
		}
	}
	return out, nil
}

// Committed implements store.Budgets (strongly consistent reads).
func (s *Store) Committed(ctx context.Context, checks []budget.Check) ([]budget.Check, error) {
	keys := make([]budget.CounterKey, len(checks))
	for i, c := range checks {
		keys[i] = c.Key()
	}
	got, err := s.counters(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("dynamo: committed: %w", err)
	}
	out := slices.Clone(checks)
	for i := range out {
		out[i].Committed = got[keys[i]]
	}
	return out, nil
}

// currentChecks re-reads the limits of checks: current amounts, deleted
// limits dropped, one check per counter, in counter-key order.
func (s *Store) currentChecks(ctx context.Context, checks []budget.Check) ([]budget.Check, error) {
	var keys []item
	seen := map[string]bool{}
	for _, c := range checks {
		if !seen[c.Limit.ID] {
			seen[c.Limit.ID] = true
			keys = append(keys, limitKey(c.Limit.ID))
		}
	}
	items, err := s.batchGet(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("read limits: %w", err)
	}
	amounts := map[string]money.Nanos{}
	for _, it := range items {
		l, err := decodeLimit(it)
		if err != nil {
			return nil, fmt.Errorf("limit %s: %w", l.ID, err)
		}
		amounts[l.ID] = l.Amount
	}
	out := make([]budget.Check, 0, len(checks))
	for _, c := range checks {
		amt, ok := amounts[c.Limit.ID]
		if !ok {
			continue // deleted since the caller read it: no longer constrains
		}
		c.Limit.Amount = amt
		out = append(out, c)
	}
	slices.SortStableFunc(out, func(a, b budget.Check) int {
		return cmp.Or(cmp.Compare(a.Limit.ID, b.Limit.ID), cmp.Compare(a.Window.Key, b.Window.Key))
	})
	return slices.CompactFunc(out, func(a, b budget.Check) bool { return a.Key() == b.Key() }), nil
}

// reservation is a reservation item.
type reservation struct {
	id               string
	state            string
	amount           money.Nanos
	created, expires time.Time
	keys             []budget.CounterKey
	nonce            string
}

func decodeReservation(it item) (reservation, error) {
	d := decoder{it: it}
	r := reservation{
		id: d.s("id"), state: d.s("state"), amount: money.Nanos(d.i("amount")),
		created: d.time("created"), expires: d.time("expires"), keys: d.keys("counters"), nonce: d.s("nonce"),
	}
	return r, d.err
}

// getReservation reads reservation id (strongly consistent).
func (s *Store) getReservation(ctx context.Context, id string) (reservation, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: resKey(id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return reservation{}, err
	}
	if out.Item == nil {
		return reservation{}, store.ErrNotFound
	}
	return decodeReservation(out.Item)
}

// Reserve implements store.Budgets; see the package documentation for the
// steps and why they keep every counter under its limit.
func (s *Store) Reserve(ctx context.Context, r store.Reservation) (budget.Decision, error) {
	fail := func(err error) (budget.Decision, error) {
		return budget.Decision{}, fmt.Errorf("dynamo: reserve %s: %w", r.ID, err)
	}
	switch {
	case r.ID == "":
		return fail(errors.New("no reservation ID"))
	case r.Amount < 0:
		return fail(fmt.Errorf("negative amount %s", r.Amount))
	case r.Expires.IsZero():
		return fail(errors.New("no expiry (it could never be reaped)"))
	}
	nonce := newNonce()

	// Steps 1 and 2 are independent: run them together.
	type limitsRead struct {
		checks []budget.Check
		err    error
	}
	lc := make(chan limitsRead, 1)
	go func() {
		c, err := s.currentChecks(ctx, r.Checks)
		lc <- limitsRead{c, err}
	}()
	prior, err := s.putPending(ctx, r, nonce)
	lr := <-lc
	if err != nil {
		return fail(err)
	}
	if prior != nil {
		if prior.state == statePending {
			return fail(errPending)
		}
		// A retried Reserve: the first one took effect.
		return budget.Decision{OK: true, Remaining: budget.Unlimited}, nil
	}
	if lr.err != nil {
		return fail(errors.Join(lr.err, s.dropPending(ctx, r.ID, nonce)))
	}
	checks := lr.checks

	// A limit smaller than the amount refuses before any counter write.
	for i := range checks {
		if r.Amount > checks[i].Limit.Amount {
			return s.refuse(ctx, r, nonce, checks, i)
		}
	}

	// Step 3: raise each counter if it still affords the amount.
	keys := make([]budget.CounterKey, len(checks))
	remaining := budget.Unlimited
	for i, c := range checks {
		keys[i] = c.Key()
		committed, err := s.addIfFits(ctx, keys[i], r.Amount, c.Limit.Amount-r.Amount)
		if errors.Is(err, errDoesNotFit) {
			if err := s.undo(ctx, keys[:i], r.Amount); err != nil {
				return fail(err) // left pending: the counters over-count
			}
			return s.refuse(ctx, r, nonce, checks, i)
		}
		if err != nil {
			// This ADD may or may not have applied: undo only the earlier.
			return fail(errors.Join(err, s.undo(ctx, keys[:i], r.Amount), s.dropPending(ctx, r.ID, nonce)))
		}
		if left := max(c.Limit.Amount-committed, 0); remaining == budget.Unlimited || left < remaining {
			remaining = left
		}
	}
	d := budget.Decision{OK: true, Remaining: remaining}

	// Step 5: the marker first, so a reservation held on the counters is
	// always one the reaper can find.
	marker := markerKey(r.ID, r.Expires)
	marker["id"] = str(r.ID)
	marker["amount"] = num(int64(r.Amount))
	marker["counters"] = encodeKeys(keys)
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: marker}); err != nil {
		return fail(errors.Join(err, s.undo(ctx, keys, r.Amount), s.dropPending(ctx, r.ID, nonce)))
	}
	var e expr
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.table,
		Key:       resKey(r.ID),
		UpdateExpression: aws.String("SET " + e.n("state") + " = " + e.v(str(store.Reserved)) +
			", " + e.n("counters") + " = " + e.v(encodeKeys(keys)) + " REMOVE " + e.n(TTLAttribute)),
		ConditionExpression: aws.String(e.n("state") + " = " + e.v(str(statePending)) +
			" AND " + e.n("nonce") + " = " + e.v(str(nonce))),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.values,
	})
	if err != nil && !isConditionFailed(err) {
		// The marker is written: the reaper releases it after expiry.
		return fail(err)
	}
	// A failed condition means the reaper already expired it (long past
	// its expiry): a settle will add the actual cost, as after any expiry.
	return d, nil
}

// putPending writes the pending reservation item (step 1). It returns the
// reservation found instead when another attempt with the same ID wrote
// one.
func (s *Store) putPending(ctx context.Context, r store.Reservation, nonce string) (*reservation, error) {
	it := resKey(r.ID)
	it["id"] = str(r.ID)
	it["state"] = str(statePending)
	it["amount"] = num(int64(r.Amount))
	it["created"] = num(r.Created.UnixNano())
	it["expires"] = num(r.Expires.UnixNano())
	it["nonce"] = str(nonce)
	it[TTLAttribute] = ttl(s.now().Add(finishedRetention)) // removed in step 5
	for range moveAttempts {
		var e expr
		_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:                &s.table,
			Item:                     it,
			ConditionExpression:      aws.String("attribute_not_exists(" + e.n(PartitionKey) + ")"),
			ExpressionAttributeNames: e.names,
		})
		if err == nil {
			return nil, nil
		}
		if !isConditionFailed(err) {
			return nil, err
		}
		prior, err := s.getReservation(ctx, r.ID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			continue // a refused attempt deleted it meanwhile: try again
		case err != nil:
			return nil, err
		case prior.nonce == nonce:
			return nil, nil // our own write, retried by the SDK
		}
		return &prior, nil
	}
	return nil, errors.New("reservation item keeps appearing and disappearing")
}

// dropPending deletes our pending reservation item so that a retry starts
// afresh.
func (s *Store) dropPending(ctx context.Context, id, nonce string) error {
	ctx, cancel := detached(ctx)
	defer cancel()
	var e expr
	_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 &s.table,
		Key:                       resKey(id),
		ConditionExpression:       aws.String(e.n("nonce") + " = " + e.v(str(nonce))),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.values,
	})
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("drop pending reservation: %w", err)
	}
	return nil
}

// refuse returns the refusal by checks[i], with the counters read back,
// and forgets the pending reservation.
func (s *Store) refuse(ctx context.Context, r store.Reservation, nonce string, checks []budget.Check, i int) (budget.Decision, error) {
	keys := make([]budget.CounterKey, len(checks))
	for j, c := range checks {
		keys[j] = c.Key()
	}
	got, err := s.counters(ctx, keys)
	if err != nil {
		return budget.Decision{}, fmt.Errorf("dynamo: reserve %s: read counters after refusal: %w", r.ID, err)
	}
	for j := range checks {
		checks[j].Committed = got[keys[j]]
	}
	d := budget.Decision{Refused: &checks[i], Remaining: budget.Tightest(checks)}
	if err := s.dropPending(ctx, r.ID, nonce); err != nil {
		return d, fmt.Errorf("dynamo: reserve %s: %w", r.ID, err)
	}
	return d, nil
}

// errDoesNotFit is a counter that cannot afford the amount.
var errDoesNotFit = errors.New("counter does not afford the amount")

// addIfFits adds amt to counter k if its committed amount is at most
// maxBefore, returning the new committed amount, or errDoesNotFit.
func (s *Store) addIfFits(ctx context.Context, k budget.CounterKey, amt, maxBefore money.Nanos) (money.Nanos, error) {
	var e expr
	c := e.n("committed")
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       counterKey(k),
		UpdateExpression:          aws.String("ADD " + c + " " + e.v(num(int64(amt)))),
		ConditionExpression:       aws.String("attribute_not_exists(" + c + ") OR " + c + " <= " + e.v(num(int64(maxBefore)))),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.values,
		ReturnValues:              types.ReturnValueUpdatedNew,
	})
	if isConditionFailed(err) {
		return 0, errDoesNotFit
	}
	if err != nil {
		return 0, fmt.Errorf("counter %s: %w", k, err)
	}
	d := decoder{it: out.Attributes}
	n := money.Nanos(d.i("committed"))
	if d.err != nil {
		return 0, fmt.Errorf("counter %s: %w", k, d.err)
	}
	return n, nil
}

// add adds delta to every counter in keys, in order, unconditionally. It
// tries them all and reports every failure.
func (s *Store) add(ctx context.Context, keys []budget.CounterKey, delta money.Nanos) error {
	if delta == 0 {
		return nil
	}
	var errs []error
	for _, k := range keys {
		var e expr
		_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 &s.table,
			Key:                       counterKey(k),
			UpdateExpression:          aws.String("ADD " + e.n("committed") + " " + e.v(num(int64(delta)))),
			ExpressionAttributeNames:  e.names,
			ExpressionAttributeValues: e.values,
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("add %s to counter %s: %w", delta, k, err))
		}
	}
	return errors.Join(errs...)
}

// undo takes amt back from the counters in keys, last first, even if ctx
// is cancelled.
func (s *Store) undo(ctx context.Context, keys []budget.CounterKey, amt money.Nanos) error {
	ctx, cancel := detached(ctx)
	defer cancel()
	rev := slices.Clone(keys)
	slices.Reverse(rev)
	return s.add(ctx, rev, -amt)
}

// move changes reservation id's state from → to if it is still from;
// false if it was not. Final states get a TTL; counters, when not nil,
// are stored too.
func (s *Store) move(ctx context.Context, id, from, to string, counters []budget.CounterKey) (bool, error) {
	var e expr
	now := s.now()
	set := "SET " + e.n("state") + " = " + e.v(str(to)) + ", " + e.n("finished") + " = " + e.v(num(now.UnixNano())) +
		", " + e.n(TTLAttribute) + " = " + e.v(ttl(now.Add(finishedRetention)))
	if counters != nil {
		set += ", " + e.n("counters") + " = " + e.v(encodeKeys(counters))
	}
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       resKey(id),
		UpdateExpression:          aws.String(set),
		ConditionExpression:       aws.String(e.n("state") + " = " + e.v(str(from))),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.values,
	})
	if isConditionFailed(err) {
		return false, nil
	}
	return err == nil, err
}

func (s *Store) deleteMarker(ctx context.Context, id string, exp time.Time) error {
	_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &s.table, Key: markerKey(id, exp)})
	if err != nil {
		return fmt.Errorf("delete open marker: %w", err)
	}
	return nil
}

// transition is what finishing a reservation in some state does: move it
// to state to and add delta to its counters; ok false means nothing to do.
type transition struct {
	to    string
	delta money.Nanos
	ok    bool
}

// finish moves reservation id on as next says, safe against retries and
// concurrent finishers (see the package documentation for the order).
func (s *Store) finish(ctx context.Context, op, id string, next func(reservation) (transition, error)) error {
	fail := func(err error) error { return fmt.Errorf("dynamo: %s %s: %w", op, id, err) }
	for range moveAttempts {
		r, err := s.getReservation(ctx, id)
		if err != nil {
			return fail(err)
		}
		t, err := next(r)
		if err != nil || !t.ok {
			if err != nil {
				return fail(err)
			}
			return nil // already final: idempotent
		}
		if t.delta > 0 {
			if err := s.add(ctx, r.keys, t.delta); err != nil {
				return fail(err)
			}
		}
		moved, err := s.move(ctx, id, r.state, t.to, nil)
		if err != nil {
			// Maybe applied: undoing could under-count, so don't.
			return fail(err)
		}
		if !moved {
			// Someone else finished it first: take back what we added
			// and look again.
			if t.delta > 0 {
				if err := s.undo(ctx, r.keys, t.delta); err != nil {
					return fail(err)
				}
			}
			continue
		}
		// The state has moved: complete the counters and the marker even
		// if the caller goes away.
		dctx, cancel := detached(ctx)
		var errs []error
		if t.delta < 0 {
			errs = append(errs, s.add(dctx, r.keys, t.delta))
		}
		if r.state == store.Reserved {
			errs = append(errs, s.deleteMarker(dctx, id, r.expires))
		}
		cancel()
		if err := errors.Join(errs...); err != nil {
			return fail(err)
		}
		return nil
	}
	return fail(errors.New("its state keeps changing"))
}

// Settle implements store.Budgets.
func (s *Store) Settle(ctx context.Context, id string, actual money.Nanos) error {
	if actual < 0 {
		return fmt.Errorf("dynamo: settle %s: negative actual %s", id, actual)
	}
	return s.finish(ctx, "settle", id, func(r reservation) (transition, error) {
		switch r.state {
		case statePending:
			return transition{}, errPending
		case store.Reserved:
			return transition{store.Settled, actual - r.amount, true}, nil
		case store.Expired:
			return transition{store.Settled, actual, true}, nil // the money was spent
		}
		return transition{}, nil
	})
}

// Release implements store.Budgets.
func (s *Store) Release(ctx context.Context, id string) error {
	return s.finish(ctx, "release", id, func(r reservation) (transition, error) {
		switch r.state {
		case statePending:
			return transition{}, errPending
		case store.Reserved:
			return transition{store.Released, -r.amount, true}, nil
		}
		return transition{}, nil
	})
}

// marker is an open marker: a reservation whose counters are raised.
type marker struct {
	id      string
	expires time.Time
	amount  money.Nanos
	keys    []budget.CounterKey
}

// markers returns the open markers that expire at or before until (all
// of them when until is nil), from every shard.
func (s *Store) markers(ctx context.Context, until *time.Time) ([]marker, error) {
	per := make([][]marker, openShards)
	err := each(ctx, openShards, openShards, func(ctx context.Context, i int) error {
		var e expr
		pk := fmt.Sprintf("%s%02d", openPrefix, i)
		cond := e.n(PartitionKey) + " = " + e.v(str(pk))
		if until != nil {
			// sk = <expires>#<id> < <until+1ns>#  ⇔  expires ≤ until
			cond += " AND " + e.n(SortKey) + " < " + e.v(str(fmt.Sprintf("%019d#", max(until.UnixNano()+1, 0))))
		}
		return s.query(ctx, &dynamodb.QueryInput{
			KeyConditionExpression:    aws.String(cond),
			ExpressionAttributeNames:  e.names,
			ExpressionAttributeValues: e.values,
			ConsistentRead:            aws.Bool(true),
		}, func(it item) error {
			d := decoder{it: it}
			m := marker{id: d.s("id"), amount: money.Nanos(d.i("amount")), keys: d.keys("counters")}
			var ns int64
			if _, err := fmt.Sscanf(d.s(SortKey), "%019d#", &ns); err != nil {
				d.fail(SortKey, err)
			}
			m.expires = time.Unix(0, ns).UTC()
			if d.err != nil {
				return fmt.Errorf("open marker %s: %w", d.s(SortKey), d.err)
			}
			per[i] = append(per[i], m)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return slices.Concat(per...), nil
}

// Reservations implements store.Budgets: the open markers, each confirmed
// on its reservation item.
func (s *Store) Reservations(ctx context.Context) ([]store.Reservation, error) {
	ms, err := s.markers(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("dynamo: reservations: %w", err)
	}
	keys := make([]item, len(ms))
	for i, m := range ms {
		keys[i] = resKey(m.id)
	}
	items, err := s.batchGet(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("dynamo: reservations: %w", err)
	}
	var out []store.Reservation
	for _, it := range items {
		r, err := decodeReservation(it)
		if err != nil {
			return nil, fmt.Errorf("dynamo: reservation %s: %w", r.id, err)
		}
		if r.state == store.Reserved {
			out = append(out, store.Reservation{ID: r.id, Keys: r.keys, Amount: r.amount,
				Created: r.created, Expires: r.expires, State: r.state})
		}
	}
	slices.SortFunc(out, func(a, b store.Reservation) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// ReleaseExpired implements store.Budgets: it queries the markers that
// expired at or before now and releases each reservation still held. A
// marker whose reservation is still pending (its Reserve died after
// raising every counter) is released with the marker's own counters.
func (s *Store) ReleaseExpired(ctx context.Context, now time.Time) (int, error) {
	ms, err := s.markers(ctx, &now)
	if err != nil {
		return 0, fmt.Errorf("dynamo: release expired: %w", err)
	}
	var n atomic.Int64
	err = each(ctx, len(ms), 8, func(ctx context.Context, i int) error {
		released, err := s.expire(ctx, ms[i], now)
		if released {
			n.Add(1)
		}
		if err != nil {
			return fmt.Errorf("dynamo: expire %s: %w", ms[i].id, err)
		}
		return nil
	})
	return int(n.Load()), err
}

func (s *Store) expire(ctx context.Context, m marker, now time.Time) (bool, error) {
	r, err := s.getReservation(ctx, m.id)
	if errors.Is(err, store.ErrNotFound) {
		return false, s.deleteMarker(ctx, m.id, m.expires)
	}
	if err != nil {
		return false, err
	}
	keys, amt := r.keys, r.amount
	var counters []budget.CounterKey
	switch r.state {
	case store.Reserved:
		if r.expires.After(now) {
			return false, nil
		}
	case statePending:
		keys, amt = m.keys, m.amount
		counters = m.keys // so that a late settle adds to them
	default:
		// Finished; the finisher died before deleting the marker.
		return false, s.deleteMarker(ctx, m.id, m.expires)
	}
	moved, err := s.move(ctx, m.id, r.state, store.Expired, counters)
	if err != nil || !moved {
		return false, err // not moved: finished meanwhile by someone else
	}
	dctx, cancel := detached(ctx)
	defer cancel()
	return true, errors.Join(s.add(dctx, keys, -amt), s.deleteMarker(dctx, m.id, m.expires))
}
