package postgres

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// This file is a PostgreSQL lexer for the read-only guard. It follows the
// server's scanner (src/backend/parser/scan.l and the UESCAPE handling in
// parser.c) closely enough that every identifier comes out as the server
// decodes it, whatever the spelling: "quoted", U&"\XXXX" or U&"!+XXXXXX"
// UESCAPE '!', hidden between nested /* */ or -- comments, or after string
// constants whose end only a real lexer finds (E'\'', $tag$…$tag$, string
// continuation across a newline). Where the lexer cannot read a statement,
// neither can the server, so the guard refuses it.

// tokenKind classifies a token.
type tokenKind uint8

const (
	tokWord   tokenKind = iota + 1 // unquoted keyword or identifier, ASCII-lowercased and truncated
	tokQuoted                      // "quoted" or U&"quoted" identifier, decoded and truncated
	tokString                      // '…', E'…', N'…', U&'…' or $tag$…$tag$, decoded
	tokBits                        // B'…' or X'…'
	tokNumber                      // 1, 1.5, .5e-3
	tokParam                       // $1
	tokOp                          // operator or punctuation: ( ) , ; :: <= …
)

// token is one lexical token.
type token struct {
	kind tokenKind
	text string // decoded value
	pos  int    // byte offset of the token in the statement
	end  int    // byte offset after it (after its UESCAPE clause, if any)
	// sconst marks a string the grammar sees as a plain SCONST ('…', E'…',
	// $$…$$), the only kind UESCAPE takes.
	sconst bool
	// uni marks a U& token whose escapes still wait for its UESCAPE.
	uni bool
}

// maxIdentLen is NAMEDATALEN-1: the server truncates longer identifiers.
const maxIdentLen = 63

// string modes, as the scanner's states xq, xe and xb/xh.
const (
	modeStd  = iota // backslash is a plain character; '' is a quote
	modeEsc         // backslash escapes the next character; '' is a quote
	modeBits        // the first quote ends the segment
)

// litKind describes a quoted constant: its mode, and the token flags.
type litKind struct {
	mode        int
	sconst, uni bool
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHex(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

func isIdentCont(c byte) bool { return isIdentStart(c) || isDigit(c) || c == '$' }

func isDolqCont(c byte) bool { return isIdentStart(c) || isDigit(c) }

func isOpChar(c byte) bool { return strings.IndexByte("~!@#^&|`?+-*/%<>=", c) >= 0 }

func commentStart(s string, i int) bool {
	return strings.HasPrefix(s[i:], "--") || strings.HasPrefix(s[i:], "/*")
}

// lexer holds the state of one pass over a statement.
type lexer struct {
	s    string
	i    int
	scs  bool // standard_conforming_strings: '…' takes no backslash escapes
	toks []token
}

// lex splits stmt into tokens as PostgreSQL would with the given setting of
// standard_conforming_strings. Comments and whitespace are dropped.
func lex(stmt string, scs bool) ([]token, error) {
	l := &lexer{s: stmt, scs: scs}
	for l.i < len(l.s) {
		if err := l.next(); err != nil {
			return nil, err
		}
	}
	return resolveUnicode(l.toks)
}

// plainMode is the mode of a '…' constant under the lexer's setting.
func (l *lexer) plainMode() int {
	if l.scs {
		return modeStd
	}
	return modeEsc
}

// add appends t, which ends at end, and moves past it.
func (l *lexer) add(t token, end int) {
	t.end = end
	l.toks = append(l.toks, t)
	l.i = end
}

// next consumes one token, comment or whitespace character.
func (l *lexer) next() error {
	s, i := l.s, l.i
	c := s[i]
	switch {
	case isSpace(c):
		l.i++
	case strings.HasPrefix(s[i:], "--"):
		// To the end of the line: \n or \r, as the server reads it.
		j := strings.IndexAny(s[i:], "\n\r")
		if j < 0 {
			j = len(s) - i
		}
		l.i = i + j
	case strings.HasPrefix(s[i:], "/*"):
		return l.blockComment()
	case c == '\'':
		return l.str(i, i+1, litKind{mode: l.plainMode(), sconst: true})
	case c == '"':
		return l.quotedIdent(i, i+1, false)
	case c == '$':
		return l.dollar()
	case isIdentStart(c):
		return l.word()
	case isDigit(c) || c == '.' && i+1 < len(s) && isDigit(s[i+1]):
		l.number()
	case isOpChar(c):
		j := i + 1
		for j < len(s) && isOpChar(s[j]) && !commentStart(s, j) {
			j++
		}
		l.add(token{kind: tokOp, text: s[i:j], pos: i}, j)
	case c == ':' && i+1 < len(s) && s[i+1] == ':':
		l.add(token{kind: tokOp, text: "::", pos: i}, i+2)
	default:
		l.add(token{kind: tokOp, text: s[i : i+1], pos: i}, i+1)
	}
	return nil
}

// blockComment skips a /* */ comment; they nest.
func (l *lexer) blockComment() error {
	s := l.s
	depth, j := 1, l.i+2
	for j < len(s) {
		switch {
		case strings.HasPrefix(s[j:], "/*"):
			depth++
			j += 2
		case strings.HasPrefix(s[j:], "*/"):
			depth--
			j += 2
			if depth == 0 {
				l.i = j
				return nil
			}
		default:
			j++
		}
	}
	return errors.New("unterminated /* comment")
}

// word reads an identifier or keyword, or a string constant with a letter
// prefix (E'…', B'…', X'…', N'…', U&'…') or a U&"…" identifier. The prefix
// counts only at the start of a token: flex takes the longest match.
func (l *lexer) word() error {
	s, i := l.s, l.i
	next := func(k int) byte {
		if i+k < len(s) {
			return s[i+k]
		}
		return 0
	}
	switch c := s[i] | 0x20; {
	case c == 'u' && next(1) == '&' && next(2) == '\'':
		if !l.scs {
			return errors.New("unsafe use of string constant with Unicode escapes")
		}
		return l.str(i, i+3, litKind{mode: modeStd, uni: true})
	case c == 'u' && next(1) == '&' && next(2) == '"':
		return l.quotedIdent(i, i+3, true)
	case c == 'e' && next(1) == '\'':
		return l.str(i, i+2, litKind{mode: modeEsc, sconst: true})
	case (c == 'b' || c == 'x') && next(1) == '\'':
		return l.str(i, i+2, litKind{mode: modeBits})
	case c == 'n' && next(1) == '\'':
		// NCHAR then an ordinary string, which follows the setting; the
		// grammar sees the keyword first, so it is no plain SCONST.
		return l.str(i, i+2, litKind{mode: l.plainMode()})
	}
	j := i + 1
	for j < len(s) && isIdentCont(s[j]) {
		j++
	}
	l.add(token{kind: tokWord, text: truncateIdent(asciiLower(s[i:j])), pos: i}, j)
	return nil
}

// number reads a numeric constant. An exponent counts only with digits
// after it, as in the server (realfail: "1e" is 1 then the word e).
func (l *lexer) number() {
	s, j := l.s, l.i
	for j < len(s) && isDigit(s[j]) {
		j++
	}
	if j < len(s) && s[j] == '.' && (j+1 >= len(s) || s[j+1] != '.') {
		j++
		for j < len(s) && isDigit(s[j]) {
			j++
		}
	}
	if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
		k := j + 1
		if k < len(s) && (s[k] == '+' || s[k] == '-') {
			k++
		}
		if k < len(s) && isDigit(s[k]) {
			for k < len(s) && isDigit(s[k]) {
				k++
			}
			j = k
		}
	}
	l.add(token{kind: tokNumber, text: s[l.i:j], pos: l.i}, j)
}

// dollar reads a $1 parameter, a $tag$…$tag$ string, or a lone $.
func (l *lexer) dollar() error {
	s, i := l.s, l.i
	j := i + 1
	if j < len(s) && isDigit(s[j]) {
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		l.add(token{kind: tokParam, text: s[i:j], pos: i}, j)
		return nil
	}
	if j < len(s) && isIdentStart(s[j]) {
		for j < len(s) && isDolqCont(s[j]) {
			j++
		}
	}
	if j >= len(s) || s[j] != '$' {
		l.add(token{kind: tokOp, text: "$", pos: i}, i+1) // the server reads the tag again as a word
		return nil
	}
	delim := s[i : j+1]
	end := strings.Index(s[j+1:], delim)
	if end < 0 {
		return errors.New("unterminated dollar-quoted string")
	}
	body := s[j+1 : j+1+end]
	l.add(token{kind: tokString, text: body, pos: i, sconst: true}, j+1+end+len(delim))
	return nil
}

// quotedIdent reads a "…" identifier (body starts at from); "" is a quote.
func (l *lexer) quotedIdent(pos, from int, uni bool) error {
	s := l.s
	var b strings.Builder
	j := from
	for {
		k := strings.IndexByte(s[j:], '"')
		if k < 0 {
			return errors.New("unterminated quoted identifier")
		}
		b.WriteString(s[j : j+k])
		j += k + 1
		if j < len(s) && s[j] == '"' {
			b.WriteByte('"')
			j++
			continue
		}
		break
	}
	if b.Len() == 0 {
		return errors.New("zero-length delimited identifier")
	}
	text := b.String()
	if !uni {
		text = truncateIdent(text)
	}
	l.add(token{kind: tokQuoted, text: text, pos: pos, uni: uni}, j)
	return nil
}

// str reads a quoted constant whose body starts at from, including the
// segments that continue it: a quote, whitespace holding a newline, and
// another quote join two segments, which keep the first one's mode.
func (l *lexer) str(pos, from int, lk litKind) error {
	mode := lk.mode
	s := l.s
	var b strings.Builder
	j := from
	for {
		if j >= len(s) {
			return errors.New("unterminated quoted string")
		}
		c := s[j]
		switch {
		case c == '\'' && mode != modeBits && j+1 < len(s) && s[j+1] == '\'':
			b.WriteByte('\'')
			j += 2
		case c == '\'':
			if k, ok := continuation(s, j+1); ok {
				j = k
				continue
			}
			kind := tokString
			if mode == modeBits {
				kind = tokBits
			}
			text := b.String()
			if mode == modeEsc {
				var err error
				if text, err = unescapeE(text); err != nil {
					return err
				}
			}
			l.add(token{kind: kind, text: text, pos: pos, sconst: lk.sconst, uni: lk.uni}, j+1)
			return nil
		case c == '\\' && mode == modeEsc:
			if j+1 >= len(s) {
				return errors.New("unterminated quoted string")
			}
			b.WriteString(s[j : j+2]) // decoded once the constant is whole
			j += 2
		default:
			b.WriteByte(c)
			j++
		}
	}
}

// continuation reports whether the text after a closing quote at i is
// whitespace (and -- comments) holding at least one newline, then a quote;
// if so it returns the index after that quote. This is the scanner's
// {quotecontinue}; a /* */ comment breaks it.
func continuation(s string, i int) (int, bool) {
	newline := false
	for i < len(s) {
		switch {
		case isSpace(s[i]):
			newline = newline || s[i] == '\n' || s[i] == '\r'
			i++
		case strings.HasPrefix(s[i:], "--"):
			k := strings.IndexAny(s[i:], "\n\r")
			if k < 0 {
				return 0, false
			}
			i += k
		case s[i] == '\'' && newline:
			return i + 1, true
		default:
			return 0, false
		}
	}
	return 0, false
}

// unescapeE decodes the backslash escapes of an E'…' constant: \b \f \n \r
// \t, octal \ooo, hex \xhh, \uXXXX and \UXXXXXXXX; any other \c is c.
func unescapeE(raw string) (string, error) {
	if !strings.Contains(raw, `\`) {
		return raw, nil
	}
	var b strings.Builder
	var pending rune // a UTF-16 high surrogate waiting for its pair
	for i := 0; i < len(raw); {
		if raw[i] != '\\' {
			if pending != 0 {
				return "", errors.New("invalid Unicode surrogate pair")
			}
			b.WriteByte(raw[i])
			i++
			continue
		}
		c := raw[i+1] // the lexer keeps every backslash paired
		i += 2
		if c == 'u' || c == 'U' {
			n := 4
			if c == 'U' {
				n = 8
			}
			cp, ok := hexRune(raw, i, n)
			if !ok {
				return "", errors.New("invalid Unicode escape")
			}
			i += n
			var err error
			if pending, err = addCodePoint(&b, pending, cp); err != nil {
				return "", err
			}
			continue
		}
		if pending != 0 {
			return "", errors.New("invalid Unicode surrogate pair")
		}
		switch {
		case c >= '0' && c <= '7':
			v := int(c - '0')
			for n := 1; n < 3 && i < len(raw) && raw[i] >= '0' && raw[i] <= '7'; n++ {
				v = v*8 + int(raw[i]-'0')
				i++
			}
			b.WriteByte(byte(v))
		case c == 'x' && i < len(raw) && isHex(raw[i]):
			v, n := 0, 0
			for ; n < 2 && i < len(raw) && isHex(raw[i]); n++ {
				v = v*16 + hexVal(raw[i])
				i++
			}
			b.WriteByte(byte(v))
		default:
			if k := strings.IndexByte("bfnrt", c); k >= 0 {
				c = "\b\f\n\r\t"[k]
			}
			b.WriteByte(c)
		}
	}
	if pending != 0 {
		return "", errors.New("invalid Unicode surrogate pair")
	}
	return b.String(), nil
}

func hexVal(c byte) int {
	switch {
	case isDigit(c):
		return int(c - '0')
	case c >= 'a':
		return int(c-'a') + 10
	}
	return int(c-'A') + 10
}

// hexRune parses n hex digits at s[i:].
func hexRune(s string, i, n int) (rune, bool) {
	if i+n > len(s) {
		return 0, false
	}
	var v rune
	for k := i; k < i+n; k++ {
		if !isHex(s[k]) {
			return 0, false
		}
		v = v*16 + rune(hexVal(s[k]))
	}
	return v, true
}

// addCodePoint writes cp, pairing UTF-16 surrogates: it returns the high
// surrogate still waiting for its low half, or 0.
func addCodePoint(b *strings.Builder, pending, cp rune) (rune, error) {
	switch {
	case cp >= 0xD800 && cp <= 0xDBFF:
		if pending != 0 {
			return 0, errors.New("invalid Unicode surrogate pair")
		}
		return cp, nil
	case cp >= 0xDC00 && cp <= 0xDFFF:
		if pending == 0 {
			return 0, errors.New("invalid Unicode surrogate pair")
		}
		cp = 0x10000 + (pending-0xD800)<<10 + (cp - 0xDC00)
	case pending != 0:
		return 0, errors.New("invalid Unicode surrogate pair")
	}
	if cp == 0 || cp > utf8.MaxRune {
		return 0, errors.New("invalid Unicode escape value")
	}
	b.WriteRune(cp)
	return 0, nil
}

// validUescape is parser.c's check_uescapechar.
func validUescape(c byte) bool {
	return !isHex(c) && c != '+' && c != '\'' && c != '"' && !isSpace(c)
}

// resolveUnicode decodes every U& token with the escape character its
// UESCAPE clause names (the next two tokens, whatever comments lie between)
// or the default backslash, and drops the clause.
func resolveUnicode(toks []token) ([]token, error) {
	out := toks[:0]
	for k := 0; k < len(toks); k++ {
		t := toks[k]
		if t.uni {
			esc := byte('\\')
			if k+1 < len(toks) && toks[k+1].kind == tokWord && toks[k+1].text == "uescape" {
				if k+2 >= len(toks) || !toks[k+2].sconst || len(toks[k+2].text) != 1 || !validUescape(toks[k+2].text[0]) {
					return nil, errors.New("invalid Unicode escape character")
				}
				esc = toks[k+2].text[0]
				t.end = toks[k+2].end
				k += 2
			}
			text, err := unescapeU(t.text, esc)
			if err != nil {
				return nil, err
			}
			if t.kind == tokQuoted {
				text = truncateIdent(text)
			}
			t.text, t.uni = text, false
		}
		out = append(out, t)
	}
	return out, nil
}

// unescapeU decodes the escapes of a U&"…" or U&'…' body: esc esc is esc,
// esc XXXX and esc+XXXXXX are code points.
func unescapeU(raw string, esc byte) (string, error) {
	var b strings.Builder
	var pending rune
	for i := 0; i < len(raw); {
		if raw[i] != esc {
			if pending != 0 {
				return "", errors.New("invalid Unicode surrogate pair")
			}
			b.WriteByte(raw[i])
			i++
			continue
		}
		var cp rune
		var ok bool
		switch {
		case i+1 < len(raw) && raw[i+1] == esc:
			if pending != 0 {
				return "", errors.New("invalid Unicode surrogate pair")
			}
			b.WriteByte(esc)
			i += 2
			continue
		case i+1 < len(raw) && raw[i+1] == '+':
			cp, ok = hexRune(raw, i+2, 6)
			i += 8
		default:
			cp, ok = hexRune(raw, i+1, 4)
			i += 5
		}
		if !ok {
			return "", errors.New("invalid Unicode escape")
		}
		var err error
		if pending, err = addCodePoint(&b, pending, cp); err != nil {
			return "", err
		}
	}
	if pending != 0 {
		return "", errors.New("invalid Unicode surrogate pair")
	}
	return b.String(), nil
}

// asciiLower lower-cases A-Z only, as the server does for UTF-8 identifiers.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for k := i; k < len(b); k++ {
				if b[k] >= 'A' && b[k] <= 'Z' {
					b[k] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// truncateIdent cuts an identifier to NAMEDATALEN-1 bytes on a character
// boundary, as the server does.
func truncateIdent(s string) string {
	if len(s) <= maxIdentLen {
		return s
	}
	n := maxIdentLen
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
