package api

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds of the names and ids a request may carry. They are checked before
// anything is stored, queued, audited or echoed.
const (
	// maxUserID is the longest user_id, in bytes (the OpenAPI maxLength).
	maxUserID = 256
	// maxAction is the longest tool name: DB_DESCRIBE_db_<16> and
	// Composio slugs are far shorter.
	maxAction = 128
	// maxID bounds db_id, integration_id and token ids.
	maxID = 64
	// maxSlug bounds provider and db_type.
	maxSlug = 64
	// maxHost is the longest database host (a DNS name is at most 253).
	maxHost = 255
	// clipLen is how much of a refused value an error message echoes.
	clipLen = 32
)

// Clip quotes at most the first 32 characters of a user-supplied value for
// an error message, with "…" when it was cut, so that an error never echoes
// a large or hostile input back in full.
func Clip(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	cut := false
	if utf8.RuneCountInString(s) > clipLen {
		s, cut = string([]rune(s)[:clipLen]), true
	}
	q := strconv.Quote(s)
	if cut {
		q += "…"
	}
	return q
}

// nameChars reports whether s is 1..max characters of [A-Za-z0-9_] and, when
// extra is set, also of extra.
func nameChars(s string, maxLen int, extra string) bool {
	if s == "" || len(s) > maxLen {
		return false
	}
	for _, c := range []byte(s) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' ||
			strings.IndexByte(extra, c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// requireUser checks a user_id: present, at most 256 bytes of valid UTF-8,
// no control characters but tab. Any other character is allowed: user ids
// are OA's, and the bus maps them to safe subject tokens.
func requireUser(userID string) error {
	if strings.TrimSpace(userID) == "" {
		return errBadRequest("missing_field", "user_id is required")
	}
	if len(userID) > maxUserID {
		return errBadRequest("invalid_field", "user_id is longer than %d bytes", maxUserID)
	}
	if !printable(userID) {
		return errBadRequest("invalid_field", "user_id must be valid UTF-8 without control characters")
	}
	return nil
}

// printable reports whether s is valid UTF-8 without control characters
// (tab excepted).
func printable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return r != '\t' && unicode.IsControl(r) })
}

// CheckAction checks a tool name: 1 to 128 characters of [A-Za-z0-9_.-],
// the names GET /api/tools lists (DB_QUERY_db_…, GMAIL_SEND_EMAIL).
func CheckAction(action string) error {
	if strings.TrimSpace(action) == "" {
		return errBadRequest("missing_field", "action is required")
	}
	if !nameChars(action, maxAction, ".-") {
		return errBadRequest("invalid_field",
			"action %s is not a tool name (1 to %d characters of A-Z, a-z, 0-9, '_', '.', '-'); see GET /api/tools",
			Clip(action), maxAction)
	}
	return nil
}

// checkID checks an id of ours (db_…, int_…, tok_…) or an older one:
// 1 to 64 characters of [A-Za-z0-9_-].
func checkID(field, id string) error {
	if !nameChars(id, maxID, "-") {
		return errBadRequest("invalid_field", "%s %s is malformed (1 to %d characters of A-Z, a-z, 0-9, '_', '-')",
			field, Clip(id), maxID)
	}
	return nil
}

// checkSlug checks a provider or db_type: 1 to 64 characters of
// [A-Za-z0-9_-].
func checkSlug(field, s string) error {
	if !nameChars(s, maxSlug, "-") {
		return errBadRequest("invalid_field", "%s %s is malformed (1 to %d characters of A-Z, a-z, 0-9, '_', '-')",
			field, Clip(s), maxSlug)
	}
	return nil
}

// checkHost bounds a database host before the policy check echoes it.
func checkHost(host string) error {
	if len(host) > maxHost || strings.ContainsFunc(host, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) ||
		!utf8.ValidString(host) {
		return errBadRequest("invalid_field", "host %s is not a host name or address", Clip(host))
	}
	return nil
}

// checkOptional runs check on a value only when it is set.
func checkOptional(check func(field, v string) error, field, v string) error {
	if v == "" {
		return nil
	}
	return check(field, v)
}
