package mongodb

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// maxSafeInt is the largest integer a float64 holds exactly (2^53).
const maxSafeInt = 1 << 53

// appendDoc writes doc to buf as relaxed Extended JSON, except that int64
// values beyond ±2^53 are written canonically as {"$numberLong": "…"} so that
// no float64 reader rounds them.
func appendDoc(buf *bytes.Buffer, doc bson.Raw) error {
	big, err := hasBigInt64(doc)
	if err != nil {
		return err
	}
	if !big {
		b, err := bson.MarshalExtJSON(doc, false, false)
		if err != nil {
			return err
		}
		buf.Write(b)
		return nil
	}
	return writeDoc(buf, doc, false)
}

func hasBigInt64(doc bson.Raw) (bool, error) {
	elems, err := doc.Elements()
	if err != nil {
		return false, err
	}
	for _, e := range elems {
		v := e.Value()
		switch v.Type {
		case bson.TypeInt64:
			if n := v.Int64(); n > maxSafeInt || n < -maxSafeInt {
				return true, nil
			}
		case bson.TypeEmbeddedDocument:
			if big, err := hasBigInt64(v.Document()); big || err != nil {
				return big, err
			}
		case bson.TypeArray:
			if big, err := hasBigInt64(bson.Raw(v.Array())); big || err != nil {
				return big, err
			}
		}
	}
	return false, nil
}

// writeDoc writes a document (or, with array set, an array's values) walking
// containers itself and leaving every other value to the driver's relaxed
// Extended JSON writer.
func writeDoc(buf *bytes.Buffer, doc bson.Raw, array bool) error {
	elems, err := doc.Elements()
	if err != nil {
		return err
	}
	if array {
		buf.WriteByte('[')
	} else {
		buf.WriteByte('{')
	}
	for i, e := range elems {
		if i > 0 {
			buf.WriteByte(',')
		}
		if !array {
			k, err := json.Marshal(e.Key())
			if err != nil {
				return err
			}
			buf.Write(k)
			buf.WriteByte(':')
		}
		if err := writeValue(buf, e.Value()); err != nil {
			return err
		}
	}
	if array {
		buf.WriteByte(']')
	} else {
		buf.WriteByte('}')
	}
	return nil
}

var (
	leafPrefix = []byte(`{"v":`)
	leafSuffix = []byte(`}`)
)

func writeValue(buf *bytes.Buffer, v bson.RawValue) error {
	switch v.Type {
	case bson.TypeEmbeddedDocument:
		return writeDoc(buf, v.Document(), false)
	case bson.TypeArray:
		return writeDoc(buf, bson.Raw(v.Array()), true)
	case bson.TypeInt64:
		n := v.Int64()
		if n > maxSafeInt || n < -maxSafeInt {
			buf.WriteString(`{"$numberLong":"`)
			buf.WriteString(strconv.FormatInt(n, 10))
			buf.WriteString(`"}`)
		} else {
			buf.WriteString(strconv.FormatInt(n, 10))
		}
		return nil
	}
	b, err := bson.MarshalExtJSON(bson.D{{Key: "v", Value: v}}, false, false)
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(b, leafPrefix) || !bytes.HasSuffix(b, leafSuffix) {
		return errors.New("unexpected Extended JSON for a value: " + string(b))
	}
	buf.Write(b[len(leafPrefix) : len(b)-len(leafSuffix)])
	return nil
}
