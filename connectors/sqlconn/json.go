package sqlconn

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

// MaxBodyBytes caps the encoded rows of one call. A result that grows past it
// is cut at the last whole row and marked truncated, so one huge result
// cannot exhaust the worker's memory or exceed the bus's payload limit.
const MaxBodyBytes = connectors.MaxResultBytes

// pooledCap is the largest buffer returned to the pool; bigger ones are left
// to the garbage collector so that one large result does not stay pinned.
const pooledCap = 1 << 20

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// RowWriter encodes a result set straight into one JSON array of objects,
// with the columns in result order. Values are appended with the Append*
// functions of this package on W.Buf after Col.
type RowWriter struct {
	// Buf is the encoded output so far.
	Buf  []byte
	keys [][]byte
	rows int
	pb   *[]byte
}

// NewRowWriter starts an array of rows with the given column names. A name
// repeated in the result (SELECT a.id, b.id) gets a suffix: id, id_2, id_3.
func NewRowWriter(names []string) *RowWriter {
	pb := bufPool.Get().(*[]byte)
	w := &RowWriter{Buf: append((*pb)[:0], '['), pb: pb, keys: make([][]byte, len(names))}
	seen := make(map[string]bool, len(names))
	for i, n := range names {
		name := n
		for k := 2; seen[name]; k++ {
			name = n + "_" + strconv.Itoa(k)
		}
		seen[name] = true
		var key []byte
		if i > 0 {
			key = append(key, ',')
		}
		key = AppendString(key, name)
		w.keys[i] = append(key, ':')
	}
	return w
}

// grow makes room for n more bytes, doubling the buffer when it must grow,
// so that large results are copied a few times rather than at every 25%
// step of append's growth.
func (w *RowWriter) grow(n int) {
	if cap(w.Buf)-len(w.Buf) >= n {
		return
	}
	nb := make([]byte, len(w.Buf), max(2*cap(w.Buf), len(w.Buf)+n))
	copy(nb, w.Buf)
	w.Buf = nb
}

// beginRow opens the next row object.
func (w *RowWriter) beginRow() {
	if w.rows > 0 {
		w.Buf = append(w.Buf, ',')
	}
	w.Buf = append(w.Buf, '{')
}

// col writes the key of column i; the caller appends its value next.
func (w *RowWriter) col(i int) { w.Buf = append(w.Buf, w.keys[i]...) }

// endRow closes the row object.
func (w *RowWriter) endRow() {
	w.Buf = append(w.Buf, '}')
	w.rows++
}

// mark returns the current length, for reset to undo a partly written row.
func (w *RowWriter) mark() int { return len(w.Buf) }

// reset drops everything written after mark, e.g. a row that overflowed
// MaxBodyBytes.
func (w *RowWriter) reset(mark int, rowsBefore int) {
	w.Buf = w.Buf[:mark]
	w.rows = rowsBefore
}

// Rows is the number of complete rows written.
func (w *RowWriter) Rows() int { return w.rows }

// full reports whether the output passed MaxBodyBytes.
func (w *RowWriter) full() bool { return len(w.Buf) > MaxBodyBytes }

// Finish closes the array and returns the encoded bytes, an exactly sized
// copy; the writer's buffer goes back to the pool and w must not be used
// again.
func (w *RowWriter) Finish() []byte {
	w.Buf = append(w.Buf, ']')
	out := make([]byte, len(w.Buf))
	copy(out, w.Buf)
	w.Release()
	return out
}

// Release returns the buffer to the pool without producing output.
func (w *RowWriter) Release() {
	if w.pb == nil {
		return
	}
	if cap(w.Buf) <= pooledCap {
		*w.pb = w.Buf[:0]
		bufPool.Put(w.pb)
	}
	w.pb, w.Buf = nil, nil
}

const hexDigits = "0123456789abcdef"

// plainASCII marks the bytes a JSON string holds as they are.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// AppendString appends s as a JSON string. Invalid UTF-8 bytes become
// U+FFFD, so the output is always valid JSON.
func AppendString[T ~string | ~[]byte](dst []byte, s T) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		for i < len(s) && plainASCII[s[i]] {
			i++
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		end := min(i+utf8.UTFMax, len(s))
		r, size := utf8.DecodeRuneInString(string(s[i:end]))
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// AppendBase64 appends b as a JSON string in standard base64.
func AppendBase64(dst, b []byte) []byte {
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

// AppendBool appends true or false.
func AppendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, "true"...)
	}
	return append(dst, "false"...)
}

// AppendNull appends null.
func AppendNull(dst []byte) []byte { return append(dst, "null"...) }

// AppendFloat appends f as a JSON number, or as the string "NaN",
// "Infinity" or "-Infinity", which JSON numbers cannot express.
func AppendFloat(dst []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(dst, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(dst, `"-Infinity"`...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, bits)
}

// AppendNumber appends the database's text form of a number as a JSON
// number when it is one (e.g. "42", "-1.5e-07"); anything else, such as
// "NaN" or "Infinity", becomes a JSON string.
func AppendNumber(dst, text []byte) []byte {
	if isJSONNumber(text) {
		return append(dst, text...)
	}
	return AppendString(dst, text)
}

// AppendJSON appends a JSON document held by the database, compacted. A
// value that is not valid JSON is appended as a string instead.
func AppendJSON(dst, raw []byte) []byte {
	bb := bytes.NewBuffer(dst)
	if err := json.Compact(bb, raw); err != nil {
		return AppendString(dst, raw)
	}
	return bb.Bytes()
}

// isJSONNumber reports whether b is a number in JSON's grammar.
func isJSONNumber(b []byte) bool {
	i, n := 0, len(b)
	if i < n && b[i] == '-' {
		i++
	}
	switch {
	case i < n && b[i] == '0':
		i++
	case i < n && b[i] >= '1' && b[i] <= '9':
		i = digits(b, i)
	default:
		return false
	}
	if i < n && b[i] == '.' {
		d := i + 1
		if i = digits(b, d); i == d {
			return false
		}
	}
	if i < n && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < n && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		if i = digits(b, i); i == d {
			return false
		}
	}
	return i == n
}

// digits returns the index after the run of ASCII digits that starts at i.
func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// AppendRow encodes one row with per-column encoders, null where isNull
// says so. A row that would push the result past MaxBodyBytes is taken back
// and AppendRow reports false: the result is then truncated before it.
// sizeHint is the expected encoded size of the row.
func AppendRow[V any, E ~func([]byte, V) []byte](w *RowWriter, vals []V, isNull func(V) bool, encs []E, sizeHint int) bool {
	w.grow(sizeHint)
	mark, n := w.mark(), w.Rows()
	w.beginRow()
	for i, v := range vals {
		w.col(i)
		if isNull(v) {
			w.Buf = AppendNull(w.Buf)
		} else {
			w.Buf = encs[i](w.Buf, v)
		}
	}
	w.endRow()
	if w.full() {
		w.reset(mark, n)
		return false
	}
	return true
}
