package config

import (
	"errors"
	"fmt"
	"strings"
)

// expand replaces ${NAME} and ${NAME:-default} in one scalar value.
//
//   - ${NAME} is the variable's value; unset is an error (never a literal).
//   - ${NAME:-default} is the value, or default when NAME is unset or
//     empty. The default is literal text and cannot contain "}".
//   - $${ is a literal "${"; any other "$" is literal.
//
// The result is data: it is never parsed as YAML or expanded again.
func expand(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", errors.New("unterminated ${ (write $${ for a literal ${)")
			}
			expr := s[i+2 : i+2+end]
			name, def, hasDef := strings.Cut(expr, ":-")
			if !validVarName(name) {
				return "", errors.New("invalid variable reference: want ${NAME} or ${NAME:-default}, NAME made of letters, digits and _ (write $${ for a literal ${)")
			}
			v, ok := lookup(name)
			switch {
			case ok && v != "":
				b.WriteString(v)
			case hasDef:
				b.WriteString(def)
			case !ok:
				return "", fmt.Errorf("environment variable %s is not set (write ${%s:-default} to give a default)", name, name)
			}
			i += 2 + end + 1
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), nil
}

func validVarName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
