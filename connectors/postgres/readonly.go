package postgres

import (
	"strings"
	"unicode/utf8"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

// The read-only guard. A read-only call runs inside BEGIN READ ONLY …
// ROLLBACK, which stops every write to tables, but not what some functions
// do outside the transaction: write or read server files, end other
// sessions, open connections of their own, change settings or locks that
// outlive the call. The guard lexes the statement as the server would and
// refuses it when any identifier, once decoded, is such a function, however
// it is spelled (quoted, U&-escaped, schema-qualified, split by comments).
//
// It refuses the name anywhere, not only before "(": a column or table
// named lo_export is refused too, a false positive accepted for a rule with
// no way around it. String constants are not searched: the functions that
// run SQL held in a string (query_to_xml, crosstab, …) are refused
// themselves, so what a string holds cannot reach the server as SQL.
//
// What it cannot see: user-defined functions or views that wrap one of
// these; the database's own privileges are the guard there.

// readKeywords are the statements a read-only connection may start with.
var readKeywords = []string{"SELECT", "WITH", "VALUES", "TABLE", "SHOW", "EXPLAIN"}

// blockedNames are refused as whole names.
var blockedNames = toSet(
	// server-side large objects: read and write server files and objects
	"lo_import", "lo_export", "lo_unlink", "lo_creat", "lo_create", "lo_from_bytea", "lo_put",
	"lo_open", "lo_close", "loread", "lowrite", "lo_lseek", "lo_lseek64", "lo_tell", "lo_tell64",
	"lo_truncate", "lo_truncate64", "lo_manage",
	// other sessions and the server process
	"pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "pg_promote", "pg_switch_wal",
	"pg_switch_xlog", "pg_start_backup", "pg_stop_backup", "pg_log_backend_memory_contexts",
	// replication slots and origins
	"pg_drop_replication_slot", "pg_replication_slot_advance",
	"pg_copy_logical_replication_slot", "pg_copy_physical_replication_slot",
	// settings and messages that outlive the transaction: set_config is
	// refused whatever its third argument, as SET is
	"set_config", "pg_notify",
	// sequences: not rolled back
	"nextval", "setval",
	// server files (adminpack and core)
	"pg_read_file", "pg_read_file_old", "pg_read_binary_file", "pg_stat_file", "pg_logdir_ls",
	// SQL held in a string, run by the function
	"ts_stat", "ts_rewrite", "connectby", "xpath_table",
	// catalog and index maintenance that writes despite READ ONLY
	"pg_import_system_collations", "pg_nextoid", "pg_stop_making_pinned_objects",
	"pg_extension_config_dump", "brin_desummarize_range", "gin_clean_pending_list",
	"pg_stat_statements_reset",
	// network requests (pgsql-http, pg_net)
	"http", "http_get", "http_post", "http_put", "http_patch", "http_delete", "http_head",
)

// blockedPrefixes are refused as the start of a name.
var blockedPrefixes = []string{
	"dblink",           // connections of its own, outside the transaction
	"pg_background",    // a worker with a transaction of its own
	"pg_advisory_",     // session-level locks (the _xact_ ones are allowed below)
	"pg_try_advisory_", // likewise
	"pg_create_",       // replication slots, restore points
	"pg_replication_origin_",
	"pg_logical_",       // slot changes, WAL messages
	"pg_stat_reset",     // statistics of the whole server
	"pg_rotate_logfile", // and pg_rotate_logfile_old
	"pg_wal_replay_",    // pause, resume
	"pg_xlog_replay_",
	"pg_backup_", // pg_backup_start, pg_backup_stop
	"pg_file_",   // adminpack: pg_file_write, pg_file_rename, pg_file_unlink, …
	"pg_ls_",     // pg_ls_dir, pg_ls_logdir, pg_ls_waldir, …
	"query_to_",  // query_to_xml and friends run SQL held in a string
	"cursor_to_", // likewise, for a cursor's query
	"crosstab",   // tablefunc: SQL held in a string
	"binary_upgrade_",
	"brin_summarize_",
}

// allowedNames are names a prefix would refuse that act only inside the
// transaction.
var allowedNames = toSet("pg_advisory_xact_lock", "pg_advisory_xact_lock_shared",
	"pg_try_advisory_xact_lock", "pg_try_advisory_xact_lock_shared")

func toSet(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// isBlocked reports whether an identifier, as the server decoded it, names
// a function the guard refuses. The match ignores case, although a quoted
// identifier keeps its case: "LO_EXPORT" is refused too.
func isBlocked(ident string) bool {
	n := strings.ToLower(ident)
	if allowedNames[n] {
		return false
	}
	if blockedNames[n] {
		return true
	}
	for _, p := range blockedPrefixes {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	return false
}

// checkReadOnly refuses, with a KindQuery error, a statement a read-only
// connection must not run: one that does not start with a read keyword,
// holds more than one statement, names a refused function, or cannot be
// read. The statement is read twice, with standard_conforming_strings on
// (as the connector sets it) and off, so that no server setting turns a
// string constant into SQL the guard did not see.
func checkReadOnly(stmt string) error {
	toks, err := lex(stmt, true)
	if err != nil {
		return connectors.Errorf(connectors.KindQuery,
			"this connection is read-only, and the statement could not be read: %s", err.Error())
	}
	if err := checkTokens(toks); err != nil {
		return err
	}
	// Where the other reading fails, a server reading so fails too.
	if toks, err := lex(stmt, false); err == nil {
		return checkTokens(toks)
	}
	return nil
}

// checkTokens applies the guard's rules to one reading of a statement.
func checkTokens(toks []token) error {
	first := 0
	for first < len(toks) && toks[first].kind == tokOp && toks[first].text == "(" {
		first++
	}
	kw := ""
	if first < len(toks) && toks[first].kind == tokWord {
		kw = strings.ToUpper(toks[first].text)
	}
	allowed := false
	for _, k := range readKeywords {
		allowed = allowed || kw == k
	}
	if !allowed {
		shown := shorten(kw)
		if shown == "" {
			shown = "a statement that does not start with a keyword"
		}
		return connectors.Errorf(connectors.KindQuery,
			"this connection is read-only: only %s statements are allowed, got %s",
			strings.Join(readKeywords, ", "), shown)
	}
	for i, t := range toks {
		if t.kind == tokOp && t.text == ";" && i+1 < len(toks) {
			return connectors.Errorf(connectors.KindQuery,
				"this connection is read-only: multiple commands in one call are not allowed")
		}
		if (t.kind == tokWord || t.kind == tokQuoted) && isBlocked(t.text) {
			return connectors.Errorf(connectors.KindQuery,
				"this connection is read-only: %s is not allowed, as it can act outside the read-only transaction",
				shorten(t.text))
		}
	}
	return nil
}

// shorten makes an identifier safe to show: at most 40 bytes, printable.
func shorten(s string) string {
	const max = 40
	cut := len(s) > max
	if cut {
		n := max
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return '?'
		}
		return r
	}, s)
	if cut {
		s += "…"
	}
	return s
}
