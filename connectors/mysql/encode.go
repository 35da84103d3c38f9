package mysql

import (
	"database/sql/driver"
	"strconv"
	"time"

	"github.com/openanalyst/mcp-integration-service/connectors/sqlconn"
)

// Values come from the text protocol: go-sql-driver/mysql hands integers
// over as int64 or uint64, FLOAT as float32, DOUBLE as float64 and every
// other type as the server's text bytes. Sessions run with time_zone
// '+00:00', so TIMESTAMP text is UTC.
//
// JSON mapping, by the column's wire type:
//
//	NULL                               null
//	TINYINT (BOOLEAN too), SMALLINT,   number (MySQL has no wire boolean, so BOOLEAN is 0 or 1)
//	MEDIUMINT, INT, YEAR, unsigned too
//	BIGINT, BIGINT UNSIGNED, DECIMAL   string (lossless)
//	FLOAT, DOUBLE                      number, shortest exact form
//	TIMESTAMP                          RFC 3339 in UTC: "2024-01-02T03:04:05Z"
//	DATETIME                           RFC 3339 without offset: "2024-01-02T03:04:05.123456"
//	DATE, TIME                         as the server prints them: "2024-01-02", "-12:00:00"
//	JSON (MySQL)                       the document itself, nested
//	JSON (MariaDB)                     a string holding the document: MariaDB's JSON is LONGTEXT on the wire
//	BLOB, BINARY, VARBINARY, GEOMETRY  base64 (standard alphabet, padded)
//	BIT                                number (the bits as an unsigned integer)
//	CHAR, VARCHAR, TEXT, ENUM, SET,    string; invalid UTF-8 becomes U+FFFD
//	UUID (MariaDB), others
//	zero dates ("0000-00-00 …")        as the server prints them

// encodeFunc appends the JSON form of one non-NULL value.
type encodeFunc func(dst []byte, v driver.Value) []byte

func encoderFor(dbType string) encodeFunc {
	switch dbType {
	case "BIGINT", "UNSIGNED BIGINT", "DECIMAL":
		return encodeString // lossless: beyond a double's precision
	case "FLOAT", "DOUBLE":
		return encodeAny
	case "DATETIME":
		return encodeDateTime
	case "TIMESTAMP":
		return encodeTimestamp
	case "JSON":
		return encodeJSON
	case "BLOB", "TINYBLOB", "MEDIUMBLOB", "LONGBLOB", "BINARY", "VARBINARY", "GEOMETRY", "VECTOR":
		return encodeBytes
	case "BIT":
		return encodeBit
	}
	// Smaller integers (TINYINT(1) included: MySQL has no wire boolean),
	// YEAR: numbers. DATE, TIME, strings, ENUM, SET: strings.
	return encodeAny
}

// encodeAny maps a value by its Go type.
func encodeAny(dst []byte, v driver.Value) []byte {
	switch x := v.(type) {
	case nil:
		return sqlconn.AppendNull(dst)
	case int64:
		return strconv.AppendInt(dst, x, 10)
	case uint64:
		return strconv.AppendUint(dst, x, 10)
	case float32:
		return sqlconn.AppendFloat(dst, float64(x), 32)
	case float64:
		return sqlconn.AppendFloat(dst, x, 64)
	case []byte:
		return sqlconn.AppendString(dst, x)
	case string:
		return sqlconn.AppendString(dst, x)
	case bool:
		return sqlconn.AppendBool(dst, x)
	case time.Time:
		dst = append(dst, '"')
		dst = x.UTC().AppendFormat(dst, time.RFC3339Nano)
		return append(dst, '"')
	}
	return sqlconn.AppendString(dst, "unsupported value")
}

// encodeString writes integers and decimals as JSON strings.
func encodeString(dst []byte, v driver.Value) []byte {
	switch x := v.(type) {
	case int64:
		dst = append(dst, '"')
		dst = strconv.AppendInt(dst, x, 10)
		return append(dst, '"')
	case uint64:
		dst = append(dst, '"')
		dst = strconv.AppendUint(dst, x, 10)
		return append(dst, '"')
	}
	return encodeAny(dst, v)
}

// encodeDateTime turns "2024-01-02 03:04:05.5" into the RFC 3339 local form
// "2024-01-02T03:04:05.5": DATETIME has no time zone.
func encodeDateTime(dst []byte, v driver.Value) []byte {
	b, ok := v.([]byte)
	if !ok || len(b) < 19 || b[10] != ' ' || string(b[:4]) == "0000" {
		return encodeAny(dst, v)
	}
	dst = append(dst, '"')
	dst = append(dst, b[:10]...)
	dst = append(dst, 'T')
	dst = append(dst, b[11:]...)
	return append(dst, '"')
}

// encodeTimestamp turns TIMESTAMP text, which is UTC in our sessions, into
// RFC 3339 with Z.
func encodeTimestamp(dst []byte, v driver.Value) []byte {
	b, ok := v.([]byte)
	if !ok || len(b) < 19 || b[10] != ' ' || string(b[:4]) == "0000" {
		return encodeAny(dst, v)
	}
	dst = append(dst, '"')
	dst = append(dst, b[:10]...)
	dst = append(dst, 'T')
	dst = append(dst, b[11:]...)
	return append(dst, 'Z', '"')
}

func encodeJSON(dst []byte, v driver.Value) []byte {
	if b, ok := v.([]byte); ok {
		return sqlconn.AppendJSON(dst, b)
	}
	return encodeAny(dst, v)
}

func encodeBytes(dst []byte, v driver.Value) []byte {
	if b, ok := v.([]byte); ok {
		return sqlconn.AppendBase64(dst, b)
	}
	return encodeAny(dst, v)
}

// encodeBit turns BIT(n)'s big-endian bytes into a number.
func encodeBit(dst []byte, v driver.Value) []byte {
	b, ok := v.([]byte)
	if !ok || len(b) > 8 {
		return encodeAny(dst, v)
	}
	var n uint64
	for _, c := range b {
		n = n<<8 | uint64(c)
	}
	return strconv.AppendUint(dst, n, 10)
}
