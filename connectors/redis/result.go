package redis

import (
	"encoding/base64"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"unicode/utf8"
)

// jsonValue converts a RESP3 reply, as go-redis decodes it, into a value
// encoding/json can encode. See the package documentation for the mapping.
func jsonValue(v any) any {
	switch v := v.(type) {
	case nil:
		return nil
	case string:
		return jsonString(v)
	case int64:
		return v
	case float64:
		switch {
		case math.IsInf(v, 1):
			return "inf"
		case math.IsInf(v, -1):
			return "-inf"
		case math.IsNaN(v):
			return "nan"
		}
		return v
	case bool:
		return v
	case *big.Int:
		return v.String()
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = jsonValue(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[mapKey(k)] = jsonValue(e)
		}
		return out
	case error:
		return map[string]any{"error": v.Error()}
	}
	return fmt.Sprint(v)
}

// jsonString keeps valid UTF-8 as a string and wraps anything else as
// {"$base64": …}.
func jsonString(s string) any {
	if utf8.ValidString(s) {
		return s
	}
	return map[string]string{"$base64": base64.StdEncoding.EncodeToString([]byte(s))}
}

// mapKey renders a RESP3 map key as a JSON object key. Binary keys become
// "$base64:" plus their base64.
func mapKey(k any) string {
	switch k := k.(type) {
	case string:
		if utf8.ValidString(k) {
			return k
		}
		return "$base64:" + base64.StdEncoding.EncodeToString([]byte(k))
	case int64:
		return strconv.FormatInt(k, 10)
	case nil:
		return "null"
	}
	return fmt.Sprint(jsonValue(k))
}
