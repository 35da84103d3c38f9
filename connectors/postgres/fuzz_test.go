package postgres

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

// FuzzPostgresReadOnly checks the guard against a second, independent and
// naive decoder of identifiers (regular expressions instead of a state
// machine): whatever the guard lets through names no refused function by
// that decoder's reading either. The guard never panics, and refuses with a
// short KindQuery error.
func FuzzPostgresReadOnly(f *testing.F) {
	for _, s := range attackCorpus {
		f.Add(s)
	}
	for _, s := range legitReads {
		f.Add(s)
	}
	f.Add(`SELECT U&"\D83D\DE00", U&"!+00006C!006F_export" UESCAPE '!'`)
	f.Fuzz(func(t *testing.T, stmt string) {
		err := checkReadOnly(stmt)
		if err != nil {
			if connectors.KindOf(err) != connectors.KindQuery || !strings.HasPrefix(err.Error(), "this connection is read-only") {
				t.Fatalf("%q: wrong error %v", stmt, err)
			}
			if len(err.Error()) > 200 {
				t.Fatalf("%q: error too long: %q", stmt, err)
			}
			return
		}
		idents, nerr := naiveIdents(stmt)
		if nerr != nil {
			t.Fatalf("%q: the guard accepted what the naive decoder cannot read: %v", stmt, nerr)
		}
		for _, id := range idents {
			if isBlocked(id) {
				t.Fatalf("%q: accepted, but names %q", stmt, id)
			}
		}
	})
}

// The naive decoder: at each position, the first matching pattern wins.
var (
	naiveSpace    = regexp.MustCompile(`^(?:[ \t\n\r\f\v]+|--[^\n\r]*)`)
	naiveWord     = regexp.MustCompile(`^[A-Za-z_\x{80}-\x{10FFFF}\x{FFFD}][A-Za-z_0-9$\x{80}-\x{10FFFF}\x{FFFD}]*`)
	naiveQuoted   = regexp.MustCompile(`^"((?:[^"]|"")*)"`)
	naiveUQuoted  = regexp.MustCompile(`^[uU]&"((?:[^"]|"")*)"`)
	naiveDollar   = regexp.MustCompile(`^\$([A-Za-z_\x{80}-\x{10FFFF}\x{FFFD}][A-Za-z_0-9\x{80}-\x{10FFFF}\x{FFFD}]*)?\$`)
	naiveParam    = regexp.MustCompile(`^\$[0-9]+`)
	naiveNumber   = regexp.MustCompile(`^[0-9]+`) // "1e5" is then 1 and the word e5: no matter here
	naivePrefixed = regexp.MustCompile(`^(?:[eEbBxXnN]|[uU]&)'`)
	// one segment body of each kind of quoted constant, up to its closing quote
	naiveSegStd  = regexp.MustCompile(`^(?:[^']|'')*'`)
	naiveSegEsc  = regexp.MustCompile(`^(?:[^'\\]|''|\\(?s:.))*'`)
	naiveSegBits = regexp.MustCompile(`^[^']*'`)
	// whitespace holding a newline, then a quote: the constant goes on
	naiveGlue = regexp.MustCompile(`^(?:[ \t\f\v]|--[^\n\r]*)*[\n\r](?:[ \t\n\r\f\v]|--[^\n\r]*)*'`)
	naiveUEsc = regexp.MustCompile(`^(?:[ \t\n\r\f\v]+|--[^\n\r]*|/\*(?:[^*]|\*[^/])*\*/)*[uU][eE][sS][cC][aA][pP][eE](?:[ \t\n\r\f\v]+|--[^\n\r]*|/\*(?:[^*]|\*[^/])*\*/)*(?:[eE]?'([^'\\])'|\$\$([^$])\$\$)`)
)

// naiveIdents lists the identifiers of stmt, decoded, lower-cased when
// bare, as a server with standard_conforming_strings on reads them.
func naiveIdents(stmt string) ([]string, error) {
	var out []string
	s := stmt
	for len(s) > 0 {
		if m := naiveSpace.FindString(s); m != "" {
			s = s[len(m):]
			continue
		}
		if strings.HasPrefix(s, "/*") {
			depth, i := 0, 0
			for {
				if i >= len(s) {
					return nil, errors.New("comment")
				}
				if strings.HasPrefix(s[i:], "/*") {
					depth++
					i += 2
				} else if strings.HasPrefix(s[i:], "*/") {
					depth--
					i += 2
					if depth == 0 {
						break
					}
				} else {
					i++
				}
			}
			s = s[i:]
			continue
		}
		if m := naiveUQuoted.FindStringSubmatch(s); m != nil {
			s = s[len(m[0]):]
			esc := `\`
			if e := naiveUEsc.FindStringSubmatch(s); e != nil {
				esc = e[1] + e[2]
				s = s[len(e[0]):]
			}
			id, err := naiveUnescape(strings.ReplaceAll(m[1], `""`, `"`), esc)
			if err != nil {
				return nil, err
			}
			out = append(out, id)
			continue
		}
		if m := naivePrefixed.FindString(s); m != "" || s[0] == '\'' {
			seg := naiveSegStd
			switch strings.ToLower(m) {
			case "e'":
				seg = naiveSegEsc
			case "b'", "x'":
				seg = naiveSegBits
			}
			s = s[max(len(m), 1):]
			for {
				body := seg.FindString(s)
				if body == "" {
					return nil, errors.New("string")
				}
				s = s[len(body):]
				glue := naiveGlue.FindString(s)
				if glue == "" {
					break
				}
				s = s[len(glue):]
			}
			continue
		}
		if m := naiveQuoted.FindStringSubmatch(s); m != nil {
			out = append(out, strings.ReplaceAll(m[1], `""`, `"`))
			s = s[len(m[0]):]
			continue
		}
		if m := naiveWord.FindString(s); m != "" {
			out = append(out, strings.Map(func(r rune) rune {
				if r >= 'A' && r <= 'Z' {
					return r + 32
				}
				return r
			}, m))
			s = s[len(m):]
			continue
		}
		if m := naiveParam.FindString(s); m != "" {
			s = s[len(m):]
			continue
		}
		if m := naiveDollar.FindString(s); m != "" {
			end := strings.Index(s[len(m):], m)
			if end < 0 {
				return nil, errors.New("dollar")
			}
			s = s[len(m)+end+len(m):]
			continue
		}
		if m := naiveNumber.FindString(s); m != "" {
			s = s[len(m):]
			continue
		}
		// an operator: one character at a time finds comments where they start
		s = s[1:]
	}
	return out, nil
}

// naiveUnescape decodes U& escapes with the escape string esc.
func naiveUnescape(body, esc string) (string, error) {
	q := regexp.QuoteMeta(esc)
	re := regexp.MustCompile(q + `(?:` + q + `|\+([0-9A-Fa-f]{6})|([0-9A-Fa-f]{4}))`)
	var units []rune
	var b strings.Builder
	flush := func() {
		b.WriteString(string(utf16.Decode(toU16(units))))
		units = units[:0]
	}
	last := 0
	for _, loc := range re.FindAllStringSubmatchIndex(body, -1) {
		if strings.Contains(body[last:loc[0]], esc) {
			return "", errors.New("bad escape")
		}
		if loc[0] > last {
			flush()
			b.WriteString(body[last:loc[0]])
		}
		last = loc[1]
		var hex string
		switch {
		case loc[2] >= 0:
			hex = body[loc[2]:loc[3]]
		case loc[4] >= 0:
			hex = body[loc[4]:loc[5]]
		default:
			flush()
			b.WriteString(esc)
			continue
		}
		v, _ := strconv.ParseUint(hex, 16, 32)
		if v == 0 || v > 0x10FFFF {
			return "", errors.New("bad code point")
		}
		if v >= 0x10000 {
			flush()
			b.WriteRune(rune(v))
		} else {
			units = append(units, rune(v))
		}
	}
	if strings.Contains(body[last:], esc) {
		return "", errors.New("bad escape")
	}
	flush()
	b.WriteString(body[last:])
	return truncateIdent(b.String()), nil
}

func toU16(rs []rune) []uint16 {
	u := make([]uint16, len(rs))
	for i, r := range rs {
		u[i] = uint16(r)
	}
	return u
}
