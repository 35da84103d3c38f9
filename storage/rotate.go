package storage

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Resealer re-encrypts one credential token with the primary key, bound to
// its record. It reports whether the token is already current.
type Resealer interface {
	IsCurrent(binding, token string) bool
	OpenBound(binding, token string) ([]byte, error)
	SealBound(binding string, plain []byte) (string, error)
}

// Credential field names, as stored and as bound into sealed tokens.
const (
	FieldPassword         = "password"
	FieldConnectionString = "connection_string"
)

// CredentialBinding names what a stored credential is sealed for: its
// owner, its record and its field. A token copied to another record, or a
// record moved to another user, no longer opens.
func CredentialBinding(d *Database, field string) string {
	return "db/" + d.UserID + "/" + d.ID + "/" + field
}

// RotateResult counts what RotateCredentials did.
type RotateResult struct {
	Scanned, Rotated, Current, Failed int
}

// RotateCredentials re-encrypts every stored credential that is not sealed
// with the primary key. Each record is updated on its own, conditionally on
// still holding the token that was read, so the run is idempotent and can be
// interrupted and resumed at any point, even while the service runs.
func (m *Mongo) RotateCredentials(ctx context.Context, r Resealer, progress func(id string, err error)) (RotateResult, error) {
	var res RotateResult
	cur, err := m.dbs.Find(ctx, bson.D{}, nil)
	if err != nil {
		return res, m.wrap("scan databases", err)
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		var d Database
		if err := cur.Decode(&d); err != nil {
			return res, m.wrap("decode database", err)
		}
		res.Scanned++
		set := bson.M{}
		filter := bson.M{"_id": d.ID, "user_id": d.UserID}
		var rowErr error
		for field, tok := range map[string]string{FieldPassword: d.Password, FieldConnectionString: d.ConnectionString} {
			binding := CredentialBinding(&d, field)
			if tok == "" || r.IsCurrent(binding, tok) {
				continue
			}
			plain, err := r.OpenBound(binding, tok)
			if err != nil {
				rowErr = fmt.Errorf("%s cannot be decrypted for this record with any configured key", field)
				break
			}
			sealed, err := r.SealBound(binding, plain)
			if err != nil {
				rowErr = err
				break
			}
			set[field] = sealed
			filter[field] = tok
		}
		switch {
		case rowErr != nil:
			res.Failed++
		case len(set) == 0:
			res.Current++
			continue
		default:
			uctx, cancel := m.ctx(ctx)
			// updated_at is left alone: the credentials did not change, so
			// workers keep their open pools.
			u, err := m.dbs.UpdateOne(uctx, filter, bson.M{"$set": set})
			cancel()
			switch {
			case err != nil:
				rowErr = m.wrap("update database", err)
				res.Failed++
			case u.MatchedCount == 0:
				res.Current++ // changed under us (edited or rotated by another run)
			default:
				res.Rotated++
			}
		}
		if progress != nil {
			progress(d.ID, rowErr)
		}
	}
	if err := cur.Err(); err != nil {
		return res, m.wrap("scan databases", err)
	}
	return res, nil
}
