// Package config is Mizuchi's configuration: the YAML schema as plain
// structs (types.go), and the one path that turns a file into a usable
// *Config:
//
//	Resolve(flag, env) → Load(path) → Parse(bytes)
//	  → expand ${VAR} in scalar values → strict decode (line numbers)
//	  → ApplyDefaults() → Validate()
//
// Every problem found on that path is returned at once as an *Errors value,
// one line per problem with the file, line and YAML path. Warnings() lists
// findings that are allowed but deserve a log line (anonymous buckets on a
// public address, metrics on a public address, …); Summary() renders what
// `mizuchi validate` prints.
//
// The package never reads the environment except through the lookupEnv
// function handed to it (os.LookupEnv when nil), and never touches the
// network or the files a configuration names. docs/CONFIG.md is the
// reference for every key; a test keeps it in step with the structs.
package config
