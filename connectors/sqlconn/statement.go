package sqlconn

import (
	"strings"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

// Dialect selects the comment and quoting rules of a statement.
type Dialect int

// Dialects.
const (
	Postgres Dialect = iota + 1
	MySQL
)

// readKeywords are the statements a read-only connection may start with.
var readKeywords = map[Dialect][]string{
	Postgres: {"SELECT", "WITH", "VALUES", "TABLE", "SHOW", "EXPLAIN"},
	MySQL:    {"SELECT", "WITH", "VALUES", "TABLE", "SHOW", "EXPLAIN", "DESCRIBE", "DESC"},
}

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// skipComment returns the index after the comment starting at s[i], or i
// when there is none there. ok is false for an unterminated block comment.
func skipComment(s string, i int, d Dialect) (next int, ok bool) {
	switch {
	case strings.HasPrefix(s[i:], "--") && (d == Postgres || i+2 == len(s) || isSpace(s[i+2]) || s[i+2] < 0x20):
		fallthrough
	case d == MySQL && s[i] == '#':
		if j := strings.IndexByte(s[i:], '\n'); j >= 0 {
			return i + j + 1, true
		}
		return len(s), true
	case strings.HasPrefix(s[i:], "/*"):
		depth, j := 1, i+2
		for j < len(s) {
			switch {
			case strings.HasPrefix(s[j:], "*/"):
				depth--
				j += 2
				if depth == 0 || d == MySQL {
					return j, true
				}
			case d == Postgres && strings.HasPrefix(s[j:], "/*"):
				depth++
				j += 2
			default:
				j++
			}
		}
		return len(s), false
	}
	return i, true
}

// skipBlank skips whitespace and comments from i.
func skipBlank(s string, i int, d Dialect) (int, bool) {
	for i < len(s) {
		if isSpace(s[i]) {
			i++
			continue
		}
		j, ok := skipComment(s, i, d)
		if !ok {
			return j, false
		}
		if j == i {
			return i, true
		}
		i = j
	}
	return i, true
}

// FirstKeyword returns the statement's first word in upper case, after
// whitespace, comments and opening parentheses, or "" when it does not start
// with a word.
func FirstKeyword(stmt string, d Dialect) string {
	i, ok := skipBlank(stmt, 0, d)
	for ok && i < len(stmt) && stmt[i] == '(' {
		i, ok = skipBlank(stmt, i+1, d)
	}
	if !ok {
		return ""
	}
	j := i
	for j < len(stmt) && isWordByte(stmt[j]) {
		j++
	}
	return strings.ToUpper(stmt[i:j])
}

// pgEscapes are PostgreSQL functions that act outside the read-only
// transaction: they write server files, run programs through dynamic SQL, or
// open connections of their own (dblink). They are refused wherever they
// appear in the text, string literals included, because functions such as
// query_to_xml run SQL held in a string.
var pgEscapes = []string{"dblink", "lo_export", "lo_import", "query_to_xml", "cursor_to_xml", "pg_file_"}

// CheckReadOnly refuses, with a KindQuery error, a statement that a
// read-only connection must not run. It is defence in depth: the database's
// read-only transaction is the guard against writes, and this allowlist
// stops what such a transaction does not: MySQL statements that commit
// implicitly, MySQL executable comments and SELECT … INTO files, and
// PostgreSQL's COPY … TO PROGRAM, DO blocks and the functions in pgEscapes.
func CheckReadOnly(stmt string, d Dialect) error {
	if d == MySQL && (strings.Contains(stmt, "/*!") || strings.Contains(stmt, "/*M!") || strings.Contains(stmt, "/*m!")) {
		return connectors.Errorf(connectors.KindQuery,
			"executable comments (/*! … */) are not allowed on a read-only connection")
	}
	if d == Postgres {
		lower := strings.ToLower(stmt)
		for _, f := range pgEscapes {
			if strings.Contains(lower, f) {
				return connectors.Errorf(connectors.KindQuery,
					"this connection is read-only: %s… is not allowed, as it can act outside the read-only transaction", f)
			}
		}
	}
	kw := FirstKeyword(stmt, d)
	allowed := false
	for _, k := range readKeywords[d] {
		if kw == k {
			allowed = true
			break
		}
	}
	if !allowed {
		shown := kw
		if shown == "" {
			shown = "a statement that does not start with a keyword"
		}
		return connectors.Errorf(connectors.KindQuery,
			"this connection is read-only: only %s statements are allowed, got %s",
			strings.Join(readKeywords[d], ", "), shown)
	}
	if d == MySQL && hasWord(stmt, "INTO", d) {
		return connectors.Errorf(connectors.KindQuery,
			"this connection is read-only: SELECT … INTO (variables, OUTFILE or DUMPFILE) is not allowed")
	}
	return nil
}

// hasWord reports whether word (upper case) occurs as a bare keyword in
// stmt, outside strings, quoted identifiers and comments.
func hasWord(stmt, word string, d Dialect) bool {
	s := stmt
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			i = skipQuoted(s, i, d)
		case isWordByte(c):
			j := i
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			if strings.EqualFold(s[i:j], word) {
				return true
			}
			i = j
		default:
			j, ok := skipComment(s, i, d)
			if !ok {
				return false
			}
			if j == i {
				j++
			}
			i = j
		}
	}
	return false
}

// skipQuoted returns the index after the quoted string or identifier that
// starts at s[i]. MySQL strings take backslash escapes; a doubled quote
// stands for itself in both dialects.
func skipQuoted(s string, i int, d Dialect) int {
	q := s[i]
	j := i + 1
	for j < len(s) {
		switch {
		case s[j] == '\\' && d == MySQL && q != '`':
			j += 2
		case s[j] == q:
			if j+1 < len(s) && s[j+1] == q {
				j += 2
				continue
			}
			return j + 1
		default:
			j++
		}
	}
	return len(s)
}
