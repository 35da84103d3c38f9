package postgres

import (
	"bytes"
	"encoding/hex"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/openanalyst/mcp-integration-service/connectors/sqlconn"
)

// Values arrive in PostgreSQL's text format: every session runs with
// TimeZone=UTC, DateStyle=ISO, IntervalStyle=postgres, bytea_output=hex and
// extra_float_digits=3, so the text forms below are fixed.
//
// JSON mapping:
//
//	NULL                         null
//	bool                         true / false
//	int2, int4, oid              number
//	int8, numeric                string (lossless: "9223372036854775807", "NaN")
//	float4, float8               number, shortest exact form; NaN, Infinity, -Infinity as strings
//	timestamptz                  RFC 3339 in UTC: "2024-01-02T03:04:05.5Z"
//	timestamp (no time zone)     RFC 3339 without offset: "2024-01-02T03:04:05.5"
//	date, time, timetz, interval as PostgreSQL prints them: "2024-01-02", "15:04:05", "1 day 02:00:00"
//	uuid                         canonical string
//	json, jsonb                  the document itself, nested (compacted; big numbers kept exact)
//	arrays                       JSON arrays (nested for several dimensions), elements mapped as above
//	bytea                        base64 (standard alphabet, padded)
//	text, varchar, enums, inet, money, domains and every other type: their text as a string;
//	invalid UTF-8 (only possible in SQL_ASCII databases) becomes U+FFFD.
//	infinity and BC timestamps stay as PostgreSQL prints them.

// encodeFunc appends the JSON form of one non-NULL text value.
type encodeFunc func(dst, v []byte) []byte

// typeMap is only read (TypeForOID), which is safe for concurrent use.
var typeMap = pgtype.NewMap()

func encoderFor(oid uint32) encodeFunc {
	switch oid {
	case pgtype.BoolOID:
		return encodeBool
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.OIDOID, pgtype.XIDOID, pgtype.CIDOID,
		pgtype.Float4OID, pgtype.Float8OID:
		// Floats: "NaN", "Infinity" and "-Infinity" are not JSON numbers and
		// fall back to strings.
		return sqlconn.AppendNumber
	case pgtype.Int8OID, pgtype.NumericOID:
		return encodeText // lossless: int8 and numeric exceed a double's precision
	case pgtype.JSONOID, pgtype.JSONBOID:
		return sqlconn.AppendJSON
	case pgtype.ByteaOID:
		return encodeBytea
	case pgtype.TimestampOID:
		return encodeTimestamp
	case pgtype.TimestamptzOID:
		return encodeTimestamptz
	}
	if t, ok := typeMap.TypeForOID(oid); ok {
		if ac, ok := t.Codec.(*pgtype.ArrayCodec); ok && ac.ElementType != nil {
			elem := encoderFor(ac.ElementType.OID)
			delim := ac.Delimiter
			if delim == 0 {
				delim = ','
			}
			return func(dst, v []byte) []byte { return appendArray(dst, v, elem, delim) }
		}
	}
	// text, varchar, uuid, date, time, interval, enums, inet, money and
	// every other type: its text form as a string.
	return encodeText
}

func encodeText(dst, v []byte) []byte { return sqlconn.AppendString(dst, v) }

func encodeBool(dst, v []byte) []byte {
	switch string(v) {
	case "t":
		return append(dst, "true"...)
	case "f":
		return append(dst, "false"...)
	}
	return sqlconn.AppendString(dst, v)
}

// encodeBytea turns the hex form \x0a0b… into base64.
func encodeBytea(dst, v []byte) []byte {
	if len(v) >= 2 && v[0] == '\\' && v[1] == 'x' {
		raw := make([]byte, hex.DecodedLen(len(v)-2))
		if _, err := hex.Decode(raw, v[2:]); err == nil {
			return sqlconn.AppendBase64(dst, raw)
		}
	}
	return sqlconn.AppendString(dst, v)
}

// encodeTimestamp turns "2024-01-02 03:04:05.5" (no time zone) into the RFC
// 3339 local form "2024-01-02T03:04:05.5", without an offset: the value has
// none. infinity and BC dates stay as PostgreSQL prints them.
func encodeTimestamp(dst, v []byte) []byte {
	if len(v) >= 19 && v[10] == ' ' && !bytes.HasSuffix(v, []byte(" BC")) {
		dst = append(dst, '"')
		dst = append(dst, v[:10]...)
		dst = append(dst, 'T')
		dst = append(dst, v[11:]...)
		return append(dst, '"')
	}
	return sqlconn.AppendString(dst, v)
}

var tzLayouts = []string{
	"2006-01-02 15:04:05.999999999-07",
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999-07:00:00",
}

// encodeTimestamptz turns "2024-01-02 03:04:05.5+00" into RFC 3339 in UTC,
// "2024-01-02T03:04:05.5Z".
func encodeTimestamptz(dst, v []byte) []byte {
	if len(v) >= 22 && v[10] == ' ' && bytes.HasSuffix(v, []byte("+00")) {
		dst = append(dst, '"')
		dst = append(dst, v[:10]...)
		dst = append(dst, 'T')
		dst = append(dst, v[11:len(v)-3]...)
		return append(dst, 'Z', '"')
	}
	for _, l := range tzLayouts {
		if t, err := time.Parse(l, string(v)); err == nil {
			dst = append(dst, '"')
			dst = t.UTC().AppendFormat(dst, time.RFC3339Nano)
			return append(dst, '"')
		}
	}
	return sqlconn.AppendString(dst, v)
}

// appendArray turns an array's text form, e.g. {1,2,NULL} or
// [0:1]={{"a b",c},{d,e}}, into a JSON array whose elements use the element
// type's mapping. Text it cannot parse is kept as a string.
func appendArray(dst, v []byte, elem encodeFunc, delim byte) []byte {
	mark := len(dst)
	src := v
	if len(src) > 0 && src[0] == '[' { // explicit bounds: [1:3]={…}
		i := bytes.IndexByte(src, '=')
		if i < 0 {
			return sqlconn.AppendString(dst, v)
		}
		src = src[i+1:]
	}
	p := arrayParser{src: src, elem: elem, delim: delim}
	out, ok := p.parse(dst)
	if !ok || p.i != len(p.src) {
		return sqlconn.AppendString(dst[:mark], v)
	}
	return out
}

type arrayParser struct {
	src     []byte
	i       int
	elem    encodeFunc
	delim   byte
	scratch []byte
}

func (p *arrayParser) skipSpace() {
	for p.i < len(p.src) && (p.src[p.i] == ' ' || p.src[p.i] == '\t' || p.src[p.i] == '\n' || p.src[p.i] == '\r') {
		p.i++
	}
}

func (p *arrayParser) parse(dst []byte) ([]byte, bool) {
	p.skipSpace()
	if p.i >= len(p.src) || p.src[p.i] != '{' {
		return dst, false
	}
	p.i++
	dst = append(dst, '[')
	p.skipSpace()
	if p.i < len(p.src) && p.src[p.i] == '}' {
		p.i++
		return append(dst, ']'), true
	}
	for n := 0; ; n++ {
		if n > 0 {
			dst = append(dst, ',')
		}
		p.skipSpace()
		if p.i >= len(p.src) {
			return dst, false
		}
		var ok bool
		switch p.src[p.i] {
		case '{':
			dst, ok = p.parse(dst)
		case '"':
			dst, ok = p.quoted(dst)
		default:
			dst, ok = p.bare(dst)
		}
		if !ok {
			return dst, false
		}
		p.skipSpace()
		if p.i >= len(p.src) {
			return dst, false
		}
		switch p.src[p.i] {
		case p.delim:
			p.i++
		case '}':
			p.i++
			return append(dst, ']'), true
		default:
			return dst, false
		}
	}
}

func (p *arrayParser) quoted(dst []byte) ([]byte, bool) {
	p.i++ // opening quote
	p.scratch = p.scratch[:0]
	for p.i < len(p.src) {
		c := p.src[p.i]
		switch c {
		case '\\':
			if p.i+1 >= len(p.src) {
				return dst, false
			}
			p.scratch = append(p.scratch, p.src[p.i+1])
			p.i += 2
		case '"':
			p.i++
			return p.elem(dst, p.scratch), true
		default:
			p.scratch = append(p.scratch, c)
			p.i++
		}
	}
	return dst, false
}

func (p *arrayParser) bare(dst []byte) ([]byte, bool) {
	start := p.i
	for p.i < len(p.src) && p.src[p.i] != p.delim && p.src[p.i] != '}' {
		if p.src[p.i] == '{' || p.src[p.i] == '"' {
			return dst, false
		}
		p.i++
	}
	tok := bytes.TrimRight(p.src[start:p.i], " \t\r\n")
	if len(tok) == 0 {
		return dst, false
	}
	if len(tok) == 4 && bytes.EqualFold(tok, []byte("NULL")) {
		return sqlconn.AppendNull(dst), true
	}
	return p.elem(dst, tok), true
}
