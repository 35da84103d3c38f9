package mysql

import (
	"strings"

	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

// parser is vitess's MySQL grammar. It is safe for concurrent use.
var parser = func() *sqlparser.Parser {
	p, err := sqlparser.New(sqlparser.Options{MySQLServerVersion: "8.0.40", TruncateErrLen: 80})
	if err != nil {
		panic(err)
	}
	return p
}()

// sideEffectFuncs are functions that act outside the read-only transaction:
// they read server files, wait on replication, burn CPU, write sequences,
// or are well-known command-running UDFs. Named locks (GET_LOCK…) are
// typed nodes and refused separately.
var sideEffectFuncs = map[string]bool{
	"load_file": true, "benchmark": true,
	"master_pos_wait": true, "source_pos_wait": true, "master_gtid_wait": true,
	"wait_for_executed_gtid_set": true, "wait_until_sql_thread_after_gtids": true,
	"get_lock": true, "release_lock": true, "release_all_locks": true,
	"nextval": true, "setval": true, "lastval": true,
	"sys_exec": true, "sys_eval": true, "sys_get": true, "sys_set": true,
}

// limitHints are optimizer hints that change the statement's own limits.
var limitHints = []string{"MAX_EXECUTION_TIME", "SET_VAR", "RESOURCE_GROUP"}

// CheckReadOnly refuses, with a KindQuery error, a statement a read-only
// connection must not run. It parses the statement with vitess's MySQL
// grammar and allows one SELECT, UNION, VALUES, SHOW, DESCRIBE or EXPLAIN
// of a SELECT, with no INTO anywhere, no executable comment, no hint that
// lifts the time limit and no function that acts outside the transaction.
//
// The sessions are pinned to a sql_mode without ANSI_QUOTES and
// NO_BACKSLASH_ESCAPES (see config), which is how vitess reads text. The
// guard does not rely on that alone: when the text holds a '"' or a '\' it
// is also checked as read under those modes, and refused if any reading is.
func (engine) CheckReadOnly(stmt string) error { return checkReadOnly(stmt) }

func checkReadOnly(stmt string) error {
	if err := checkRaw(stmt); err != nil {
		return err
	}
	modes := []sqlMode{{}}
	if strings.ContainsAny(stmt, `"\`) {
		modes = append(modes, sqlMode{ansiQuotes: true}, sqlMode{noBackslash: true}, sqlMode{ansiQuotes: true, noBackslash: true})
	}
	var texts []string
	for i, m := range modes {
		c, ok := canonical(stmt, m)
		if !ok && i > 0 {
			return errAmbiguous
		}
		if !ok {
			return refuse("the statement has an unterminated string, name or comment")
		}
		// One trailing semicolon is allowed, as the server allows it.
		texts = append(texts, strings.TrimSuffix(strings.TrimRight(c, " \t\r\n\f\v"), ";"))
	}
	for i, text := range texts {
		if i > 0 && text == texts[0] {
			continue
		}
		if hasGluedInto(text) {
			return errInto
		}
		st, err := parser.Parse(text)
		if err != nil {
			if i > 0 {
				return errAmbiguous
			}
			return refuse("the statement could not be checked (" + short(err.Error()) + ")")
		}
		if err := checkAST(st); err != nil {
			return err
		}
	}
	return nil
}

var (
	errInto      = refuse("SELECT … INTO (variables, OUTFILE or DUMPFILE) is not allowed")
	errAmbiguous = refuse("the statement reads differently under sql_mode ANSI_QUOTES or NO_BACKSLASH_ESCAPES; " +
		"write a quote inside a string by doubling it ('') and quote names with backticks")
)

func refuse(why string) error {
	return connectors.Errorf(connectors.KindQuery, "this connection is read-only: %s", why)
}

func short(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

// checkRaw refuses executable comments and limit-changing optimizer hints
// anywhere in the text, string literals included (a rare false refusal is
// the price of not depending on how the server splits the text).
func checkRaw(stmt string) error {
	upper := strings.ToUpper(stmt)
	if strings.Contains(upper, "/*!") || strings.Contains(upper, "/*M!") {
		return refuse("executable comments (/*! … */) are not allowed")
	}
	for rest := upper; ; {
		i := strings.Index(rest, "/*+")
		if i < 0 {
			return nil
		}
		rest = rest[i+3:]
		body := rest
		if j := strings.Index(body, "*/"); j >= 0 {
			body = body[:j]
		}
		for _, h := range limitHints {
			if strings.Contains(body, h) {
				return refuse("the optimizer hint " + h + " is not allowed")
			}
		}
	}
}

// checkAST allows only read statements and walks them for INTO and for
// functions with side effects.
func checkAST(st sqlparser.Statement) error {
	switch s := st.(type) {
	case *sqlparser.Select, *sqlparser.Union, *sqlparser.ValuesStatement, *sqlparser.Show, *sqlparser.ExplainTab:
	case *sqlparser.ExplainStmt:
		switch s.Statement.(type) {
		case *sqlparser.Select, *sqlparser.Union:
		default:
			return refuse("EXPLAIN is allowed only of a SELECT")
		}
	default:
		return refuse("only SELECT, SHOW, DESCRIBE and EXPLAIN statements are allowed")
	}
	var bad error
	_ = sqlparser.Walk(func(node sqlparser.SQLNode) (bool, error) {
		switch n := node.(type) {
		case *sqlparser.SelectInto:
			bad = errInto
		case *sqlparser.LockingFunc:
			if n.Type == sqlparser.IsFreeLock || n.Type == sqlparser.IsUsedLock {
				break // they only look
			}
			bad = refuse("named lock functions (GET_LOCK, RELEASE_LOCK…) are not allowed")
		case *sqlparser.GTIDFuncExpr:
			if n.Type == sqlparser.WaitForExecutedGTIDSetType || n.Type == sqlparser.WaitUntilSQLThreadAfterGTIDSType {
				bad = refuse("replication wait functions are not allowed")
			}
		case *sqlparser.FuncExpr:
			name := n.Name.Lowered()
			if sideEffectFuncs[name] || strings.HasPrefix(name, "sys_") || strings.HasPrefix(name, "lib_mysqludf") {
				bad = refuse(strings.ToUpper(name) + " is not allowed, as it can act outside the read-only transaction")
			}
		}
		return bad == nil, nil
	}, st)
	return bad
}

// sqlMode is the part of the server's sql_mode that changes how text splits
// into tokens.
type sqlMode struct{ ansiQuotes, noBackslash bool }

// canonical rewrites stmt, as MySQL reads it under m, into text that vitess
// (default sql_mode) reads the same way: strings become '…' with their
// content re-escaped, "identifiers" under ANSI_QUOTES become `…`, and
// comments become a space. ok is false for unterminated text.
func canonical(stmt string, m sqlMode) (string, bool) {
	var b strings.Builder
	ok := lex(stmt, m, func(kind tokenKind, text, content string) {
		switch kind {
		case tokString:
			b.WriteByte('\'')
			b.WriteString(strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(content))
			b.WriteByte('\'')
		case tokIdent:
			b.WriteByte('`')
			b.WriteString(strings.ReplaceAll(content, "`", "``"))
			b.WriteByte('`')
		case tokComment:
			b.WriteByte(' ')
		default:
			b.WriteString(text)
		}
	})
	return b.String(), ok
}

// hasGluedInto reports an INTO keyword, outside strings, names and
// comments, that directly follows a digit or a dot (1e0INTO, 0x1INTO,
// 1.INTO): MySQL reads a number then INTO there, and a parser that reads
// one word would miss it. It backs up the parser, which refuses these.
func hasGluedInto(stmt string) bool {
	found := false
	lex(stmt, sqlMode{}, func(kind tokenKind, text, _ string) {
		if kind != tokOther {
			return
		}
		upper := strings.ToUpper(text)
		for i := strings.Index(upper, "INTO"); i >= 0; {
			end := i + 4
			if i > 0 && !isLetter(upper[i-1]) && (end == len(upper) || !isWordByte(upper[end])) {
				found = true
				return
			}
			j := strings.Index(upper[i+1:], "INTO")
			if j < 0 {
				break
			}
			i += j + 1
		}
	})
	return found
}

func isLetter(c byte) bool {
	return c == '_' || c == '$' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= 0x80
}

func isWordByte(c byte) bool { return isLetter(c) || c >= '0' && c <= '9' }

type tokenKind int

const (
	tokOther   tokenKind = iota // code outside quotes and comments
	tokString                   // '…', or "…" without ANSI_QUOTES
	tokIdent                    // `…`, or "…" under ANSI_QUOTES
	tokComment                  // #…, -- …, /*…*/
)

// lex splits stmt as MySQL's lexer does under m into code, strings,
// quoted names and comments, calling emit for each with its text and, for
// strings and names, the unescaped content. It returns false when a string,
// name or block comment is not terminated.
func lex(s string, m sqlMode, emit func(kind tokenKind, text, content string)) bool {
	start := 0
	flush := func(i int) {
		if i > start {
			emit(tokOther, s[start:i], "")
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		var end int
		kind := tokComment
		switch {
		case c == '\'' || c == '"' || c == '`':
			kind = tokString
			if c == '`' || c == '"' && m.ansiQuotes {
				kind = tokIdent
			}
			content, n, ok := quoted(s[i:], kind == tokString && !m.noBackslash)
			if !ok {
				return false
			}
			flush(i)
			emit(kind, s[i:i+n], content)
			i += n
			start = i
			continue
		case c == '#' || c == '-' && strings.HasPrefix(s[i:], "--") && (i+2 == len(s) || s[i+2] <= ' '):
			end = len(s)
			if j := strings.IndexByte(s[i:], '\n'); j >= 0 {
				end = i + j + 1
			}
		case c == '/' && strings.HasPrefix(s[i:], "/*"):
			j := strings.Index(s[i+2:], "*/")
			if j < 0 {
				return false
			}
			end = i + 2 + j + 2
		default:
			i++
			continue
		}
		flush(i)
		emit(kind, s[i:end], "")
		i, start = end, end
	}
	flush(len(s))
	return true
}

// quoted reads the quoted token at the start of s: a doubled quote stands
// for itself, and with backslash escapes \x stands for x (the exact byte of
// \n and the like does not matter to the guard). It returns the content and
// the token's length.
func quoted(s string, backslash bool) (string, int, bool) {
	q := s[0]
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch {
		case backslash && s[i] == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case s[i] == q && i+1 < len(s) && s[i+1] == q:
			i++
			b.WriteByte(q)
		case s[i] == q:
			return b.String(), i + 1, true
		default:
			b.WriteByte(s[i])
		}
	}
	return "", 0, false
}
