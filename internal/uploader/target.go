package uploader

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// Target is where one local file goes.
type Target struct {
	File string
	URL  *url.URL // Path is the decoded path: /prefix/key
	Key  string   // URL.Path without its leading slash, for messages
}

// Targets maps files to object URLs under dest, an http(s) URL of the form
// scheme://host[:port]/prefix/[key-or-dir/]. A single file goes to dest
// itself when dest names a key (a path of two segments or more that does
// not end in "/"); otherwise each file goes to dest/<base name>.
func Targets(files []string, dest string) ([]Target, error) {
	if len(files) == 0 {
		return nil, errors.New("no file to upload")
	}
	u, err := url.Parse(dest)
	if err != nil {
		return nil, fmt.Errorf("invalid URL: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("URL %q: scheme must be http or https", dest)
	case u.Host == "":
		return nil, fmt.Errorf("URL %q has no host", dest)
	case u.User != nil:
		return nil, errors.New("URL must not carry credentials; use --token or --access-key")
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return nil, fmt.Errorf("URL %q must not have a query or fragment", dest)
	}
	p := u.Path
	trimmed := strings.Trim(p, "/")
	if trimmed == "" {
		return nil, fmt.Errorf("URL %q names no bucket prefix (want %s://%s/<prefix>/...)", dest, u.Scheme, u.Host)
	}
	asDir := len(files) > 1 || strings.HasSuffix(p, "/") || !strings.Contains(trimmed, "/")
	out := make([]Target, 0, len(files))
	seen := map[string]string{}
	for _, f := range files {
		key := "/" + trimmed
		if asDir {
			base := filepath.Base(f)
			if base == "." || base == ".." || base == string(filepath.Separator) {
				return nil, fmt.Errorf("%q has no file name", f)
			}
			key += "/" + base
		}
		if prev, dup := seen[key]; dup {
			return nil, fmt.Errorf("%q and %q would both be uploaded to %s", prev, f, key)
		}
		seen[key] = f
		t := *u
		t.Path, t.RawPath = key, ""
		out = append(out, Target{File: f, URL: &t, Key: strings.TrimPrefix(key, "/")})
	}
	return out, nil
}
