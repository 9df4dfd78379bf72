package dynamo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wrapi-dev/wrapi/pkg/store"
)

// A key is two items with the same attributes: KEY#<hash> (what
// authentication reads, one GetItem) and KEYS/<id> (listing and revoking).
const (
	keyPrefix = "KEY#"
	keySK     = "KEY"
	pkKeys    = "KEYS"
)

func hashKey(hash string) item { return itemKey(keyPrefix+hash, keySK) }
func idKey(id string) item     { return itemKey(pkKeys, id) }

func keyAttrs(k store.Key, key item) item {
	key["id"] = str(k.ID)
	key["hash"] = str(k.Hash)
	key["prefix"] = str(k.Prefix)
	key["user"] = str(k.User)
	key["project"] = str(k.Project)
	key["created"] = num(k.Created.UnixNano())
	if k.Revoked != nil {
		key["revoked"] = num(k.Revoked.UnixNano())
	}
	return key
}

func decodeKey(it item) (store.Key, error) {
	d := decoder{it: it}
	k := store.Key{ID: d.s("id"), Hash: d.s("hash"), Prefix: d.s("prefix"), User: d.s("user"),
		Project: d.s("project"), Created: d.time("created")}
	if d.has("revoked") {
		t := d.time("revoked")
		k.Revoked = &t
	}
	return k, d.err
}

// putNew puts it if its key is free. Otherwise it returns the item there,
// which is ours when the SDK retried a write that had succeeded.
func (s *Store) putNew(ctx context.Context, it item) (prior item, err error) {
	var e expr
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                &s.table,
		Item:                     it,
		ConditionExpression:      aws.String("attribute_not_exists(" + e.n(PartitionKey) + ")"),
		ExpressionAttributeNames: e.names,
	})
	if !isConditionFailed(err) {
		return nil, err
	}
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table,
		Key: itemKey((&decoder{it: it}).s(PartitionKey), (&decoder{it: it}).s(SortKey)), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, err
	}
	return out.Item, nil
}

// CreateKey implements store.Keys: ErrConflict if the ID or the hash is
// taken. The ID item is written first, so a crash in between leaves a
// listed key that cannot authenticate, never one that authenticates and
// cannot be listed or revoked.
func (s *Store) CreateKey(ctx context.Context, k store.Key) error {
	fail := func(err error) error { return fmt.Errorf("dynamo: create key %s: %w", k.ID, err) }
	same := func(prior item) bool {
		p, err := decodeKey(prior)
		return err == nil && p.ID == k.ID && p.Hash == k.Hash
	}
	prior, err := s.putNew(ctx, keyAttrs(k, idKey(k.ID)))
	if err != nil {
		return fail(err)
	}
	if prior != nil && !same(prior) {
		return fail(store.ErrConflict)
	}
	prior, err = s.putNew(ctx, keyAttrs(k, hashKey(k.Hash)))
	if err != nil {
		return fail(err)
	}
	if prior != nil && !same(prior) {
		// The hash belongs to another key: take back our ID item.
		var e expr
		_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName:                 &s.table,
			Key:                       idKey(k.ID),
			ConditionExpression:       aws.String(e.n("hash") + " = " + e.v(str(k.Hash))),
			ExpressionAttributeNames:  e.names,
			ExpressionAttributeValues: e.values,
		})
		if err != nil && !isConditionFailed(err) {
			return fail(errors.Join(store.ErrConflict, err))
		}
		return fail(store.ErrConflict)
	}
	return nil
}

// KeyByHash implements store.Keys: one strongly consistent GetItem, so a
// revocation holds from the moment RevokeKey returns.
func (s *Store) KeyByHash(ctx context.Context, hash string) (store.Key, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: hashKey(hash), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return store.Key{}, fmt.Errorf("dynamo: key lookup: %w", err)
	}
	if out.Item == nil {
		return store.Key{}, store.ErrNotFound
	}
	k, err := decodeKey(out.Item)
	if err != nil {
		return store.Key{}, fmt.Errorf("dynamo: key lookup: %w", err)
	}
	return k, nil
}

// ListKeys implements store.Keys, oldest first.
func (s *Store) ListKeys(ctx context.Context) ([]store.Key, error) {
	var out []store.Key
	err := s.queryPK(ctx, pkKeys, true, func(it item) error {
		k, err := decodeKey(it)
		out = append(out, k)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dynamo: list keys: %w", err)
	}
	slices.SortFunc(out, func(a, b store.Key) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// setRevoked sets revoked on an existing item unless it is set already;
// false if the item does not exist.
func (s *Store) setRevoked(ctx context.Context, key item, at time.Time) (bool, error) {
	var e expr
	r := e.n("revoked")
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       key,
		UpdateExpression:          aws.String("SET " + r + " = if_not_exists(" + r + ", " + e.v(num(at.UnixNano())) + ")"),
		ConditionExpression:       aws.String("attribute_exists(" + e.n(PartitionKey) + ")"),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.values,
	})
	if isConditionFailed(err) {
		return false, nil
	}
	return err == nil, err
}

// RevokeKey implements store.Keys. The hash item, which authentication
// reads, is revoked first.
func (s *Store) RevokeKey(ctx context.Context, id string, at time.Time) error {
	fail := func(err error) error { return fmt.Errorf("dynamo: revoke key %s: %w", id, err) }
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: idKey(id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return fail(err)
	}
	if out.Item == nil {
		return fail(store.ErrNotFound)
	}
	k, err := decodeKey(out.Item)
	if err != nil {
		return fail(err)
	}
	if _, err := s.setRevoked(ctx, hashKey(k.Hash), at); err != nil {
		return fail(err)
	}
	ok, err := s.setRevoked(ctx, idKey(id), at)
	if err != nil {
		return fail(err)
	}
	if !ok {
		return fail(store.ErrNotFound) // deleted meanwhile
	}
	return nil
}
