package config

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one finding about a configuration: an error from Parse or
// Validate, or a warning from Warnings.
type Problem struct {
	// Source is the file name (or SourceBuiltin).
	Source string
	// Line is the 1-based line of the offending key; 0 when unknown.
	Line int
	// Path is the YAML path, e.g. buckets[1].auth.jwt.algorithm; empty
	// for problems about the whole document.
	Path string
	// Message says what is wrong. It never contains a secret value.
	Message string
}

// String renders the problem as "file:line: path: message".
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.Source)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Errors is every problem that made a configuration unusable.
type Errors struct {
	Problems []Problem
}

// Error prints one problem per line, ordered by line number.
func (e *Errors) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// sortProblems orders problems by line (unknown lines last), keeping the
// discovery order among equals, and drops exact duplicates (a value
// reached twice through a YAML alias reports once).
func sortProblems(ps []Problem) []Problem {
	sort.SliceStable(ps, func(i, j int) bool {
		li, lj := ps[i].Line, ps[j].Line
		if li == 0 || lj == 0 {
			return li != 0 && lj == 0
		}
		return li < lj
	})
	out := ps[:0]
	seen := make(map[Problem]bool, len(ps))
	for _, p := range ps {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}
