package postgres

import (
	"strings"
	"testing"
)

// render writes tokens compactly: w:word q:quoted s:string b:bits n:number
// p:param o:operator, separated by spaces.
func render(toks []token) string {
	prefix := map[tokenKind]string{tokWord: "w:", tokQuoted: "q:", tokString: "s:", tokBits: "b:",
		tokNumber: "n:", tokParam: "p:", tokOp: "o:"}
	parts := make([]string, len(toks))
	for i, t := range toks {
		parts[i] = prefix[t.kind] + t.text
	}
	return strings.Join(parts, " ")
}

func TestLexDecodes(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 70)
	cases := []struct {
		sql  string
		scs  bool
		want string
	}{
		// identifiers
		{`SELECT PG_Terminate_Backend(1)`, true, "w:select w:pg_terminate_backend o:( n:1 o:)"},
		{`"pg_terminate_backend"`, true, "q:pg_terminate_backend"},
		{`"Mixed""Case"`, true, `q:Mixed"Case`},
		{`U&"\006Co_export"`, true, "q:lo_export"},
		{`u&"\+00006Co_export"`, true, "q:lo_export"},
		{`U&"d\0061t\+000061"`, true, "q:data"},
		{`U&"!0070g_cancel_backend" UESCAPE '!'`, true, "q:pg_cancel_backend"},
		{"U&\"!0070g\" /* c */ uescape -- c\n '!' x", true, "q:pg w:x"},
		{`U&"#0070g" UESCAPE E'\x23'`, true, "q:pg"},
		{`U&"#0070g" UESCAPE $$#$$`, true, "q:pg"},
		{`U&"a\\b"`, true, `q:a\b`},
		{`U&"!!a" UESCAPE '!'`, true, "q:!a"},
		{`U&"\D83D\DE00"`, true, "q:\U0001F600"},
		{`U&"a""\0062"`, true, `q:a"b`},
		{`abc$$x$$`, true, "w:abc$$x$$"},
		{long, true, "w:" + long[:63]},
		{`"` + long + `"`, true, "q:" + long[:63]},
		{`pg_catalog . "lo_export"`, true, "w:pg_catalog o:. q:lo_export"},
		// strings
		{`'a''b' 'c\'`, true, `s:a'b s:c\`},
		{`'a\'b'`, false, "s:a'b"},
		{`E'a\'b' e'\x41\101\u0042\n\q'`, true, "s:a'b s:AAB\nq"},
		{`E'\U0001F600'`, true, "s:\U0001F600"},
		{`N'x''y'`, true, "s:x'y"},
		{`U&'d\0061t\+000061'`, true, "s:data"},
		{`U&'d!0061ta' UESCAPE '!'`, true, "s:data"},
		{`$$a'b$$ $tag$ x $$ y $tag$ $a$x$ba$a$`, true, "s:a'b s: x $$ y  s:x$ba"},
		{`B'0101' X'ff' B'1'''`, true, "b:0101 b:ff b:1 s:"},
		// continuation: a newline between two quoted segments joins them
		{"'a'\n'b'", true, "s:ab"},
		{"'a' 'b'", true, "s:a s:b"},
		{"'a' -- c\n 'b'", true, "s:ab"},
		{"'a' /* c */\n'b'", true, "s:a s:b"},
		{"E'a'\n'\\''", true, "s:a'"},
		{"'a'\r'b\\'", true, `s:ab\`},
		{"B'1'\n'0'", true, "b:10"},
		// comments, whitespace, operators, numbers, parameters
		{"/* a /* b */ c */ SELECT\t1", true, "w:select n:1"},
		{"--x\rSELECT\f1\v", true, "w:select n:1"},
		{"/*/ */ x", true, "w:x"},
		{"1+-- c\n2 a/*x*/b c+/*y*/-d", true, "n:1 o:+ n:2 w:a w:b w:c o:+ o:- w:d"},
		{"x::int <= .5e-3 1e 1..2", true, "w:x o::: w:int o:<= n:.5e-3 n:1 w:e n:1 o:. n:.2"},
		{"1e'x'", true, "n:1 s:x"},
		{"$1 $ $a b", true, "p:$1 o:$ o:$ w:a w:b"},
		{"SELECT 1; SELECT 2", true, "w:select n:1 o:; w:select n:2"},
	}
	for _, c := range cases {
		toks, err := lex(c.sql, c.scs)
		if err != nil {
			t.Errorf("lex(%q, %v): %v", c.sql, c.scs, err)
			continue
		}
		if got := render(toks); got != c.want {
			t.Errorf("lex(%q, %v)\n got %q\nwant %q", c.sql, c.scs, got, c.want)
		}
	}
}

func TestLexErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		sql, want string
		scs       bool
	}{
		{"'abc", "unterminated quoted string", true},
		{"E'abc\\'", "unterminated quoted string", true},
		{"'abc\\'", "unterminated quoted string", false},
		{`"abc`, "unterminated quoted identifier", true},
		{`""`, "zero-length delimited identifier", true},
		{"/* a /* b */", "unterminated /* comment", true},
		{"$x$ abc $y$", "unterminated dollar-quoted string", true},
		{`U&"\00"`, "invalid Unicode escape", true},
		{`U&"\+00"`, "invalid Unicode escape", true},
		{`U&"\0000"`, "invalid Unicode escape value", true},
		{`U&"\DE00"`, "invalid Unicode surrogate pair", true},
		{`U&"\D83Dx"`, "invalid Unicode surrogate pair", true},
		{`U&"\+110000"`, "invalid Unicode escape value", true},
		{`U&"a" UESCAPE 'a'`, "invalid Unicode escape character", true},
		{`U&"a" UESCAPE '+'`, "invalid Unicode escape character", true},
		{`U&"a" UESCAPE '!!'`, "invalid Unicode escape character", true},
		{`U&"a" UESCAPE N'!'`, "invalid Unicode escape character", true},
		{`U&"a" UESCAPE U&'!'`, "invalid Unicode escape character", true},
		{`U&"a" UESCAPE`, "invalid Unicode escape character", true},
		{`U&'a'`, "unsafe use of string constant with Unicode escapes", false},
		{`E'\u00'`, "invalid Unicode escape", true},
	}
	for _, c := range cases {
		_, err := lex(c.sql, c.scs)
		if err == nil || err.Error() != c.want {
			t.Errorf("lex(%q, %v) = %v, want %q", c.sql, c.scs, err, c.want)
		}
	}
}
