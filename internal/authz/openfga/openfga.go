package openfga

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	openfgav1 "github.com/openfga/api/proto/openfga/v1"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/grpc"

	"github.com/mizuchi-uploadr/mizuchi/internal/authz"
	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

// DefaultTimeout bounds one check when no timeout is configured.
const DefaultTimeout = 2 * time.Second

// Transports.
const (
	TransportGRPC = "grpc"
	TransportHTTP = "http"
)

// Limits of OpenFGA's check request validation; a longer value is denied
// here rather than sent to be refused.
const (
	maxUserLen   = 512
	maxObjectLen = 256
)

// Options configure an Authorizer.
type Options struct {
	Config config.OpenFGA
	// Objects are object templates checked in addition to Config.Object;
	// the upload is allowed when the relation holds for any of them. With
	// more than one object the checks go in one BatchCheck.
	Objects []string
	// Timeout bounds one check (or batch); zero means
	// Config.TimeoutSeconds, and DefaultTimeout if that is zero too.
	Timeout time.Duration
	// HTTPClient is used by the http transport; it defaults to a client
	// with its own pooled, keep-alive transport (NewTransport), which
	// trusts Config.CAFile. A client given here must trust it itself:
	// build it on NewTransport(Config). The token is added to every
	// request either way.
	HTTPClient *http.Client
	// GRPCDialOptions are extra options of the grpc transport (e.g. a
	// tracing interceptor), applied after the transport credentials
	// (TLS from Config.TLS and Config.CAFile, or plaintext) and the
	// bearer token from Config.APIToken.
	GRPCDialOptions []grpc.DialOption
	// Propagator injects the trace context into each call; nil means W3C
	// trace context.
	Propagator propagation.TextMapPropagator
}

// checker is the part of a transport the Authorizer uses.
type checker interface {
	check(ctx context.Context, req *openfgav1.CheckRequest) (bool, error)
	batchCheck(ctx context.Context, req *openfgav1.BatchCheckRequest) (*openfgav1.BatchCheckResponse, error)
	close() error
}

// Authorizer asks OpenFGA.
type Authorizer struct {
	checker  checker
	storeID  string
	modelID  string
	user     string
	relation string
	objects  []string
	tuples   []config.Tuple
	timeout  time.Duration
	// uses records which placeholders appear in any template.
	uses [len(placeholders)]bool
}

// placeholders of the templates, in the order of newVars.
var placeholders = [...]string{"{subject}", "{bucket}", "{key}", "{prefix}"}

// New validates the options and sets up the transport. The gRPC
// connection is made lazily and kept; nothing is sent before the first
// check.
func New(ctx context.Context, opts Options) (*Authorizer, error) {
	cfg := opts.Config
	var problems []string
	if cfg.URL == "" {
		problems = append(problems, "url is required")
	}
	if cfg.StoreID == "" {
		problems = append(problems, "store_id is required")
	}
	if cfg.User == "" || cfg.Relation == "" {
		problems = append(problems, "user and relation templates are required")
	}
	objects := make([]string, 0, 1+len(opts.Objects))
	for _, o := range append([]string{cfg.Object}, opts.Objects...) {
		if o != "" {
			objects = append(objects, o)
		}
	}
	if len(objects) == 0 {
		problems = append(problems, "object template is required")
	}
	if len(objects) > 50 {
		problems = append(problems, "at most 50 objects per check")
	}
	for _, t := range cfg.ContextualTuples {
		if t.User == "" || t.Relation == "" || t.Object == "" {
			problems = append(problems, "contextual tuples need user, relation and object")
			break
		}
	}
	switch {
	case cfg.TLS && cfg.Transport == TransportHTTP:
		problems = append(problems, "tls is for grpc; over http use an https url")
	case cfg.CAFile != "" && cfg.Transport == TransportHTTP && !strings.HasPrefix(cfg.URL, "https://"):
		problems = append(problems, "ca_file needs an https url")
	case cfg.CAFile != "" && cfg.Transport != TransportHTTP && !cfg.TLS:
		problems = append(problems, "ca_file needs tls")
	}
	if !validToken(cfg.APIToken) {
		problems = append(problems, "api_token must not contain spaces or control characters")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("openfga: %s", strings.Join(problems, "; "))
	}
	a := &Authorizer{
		storeID:  cfg.StoreID,
		modelID:  cfg.ModelID,
		user:     cfg.User,
		relation: cfg.Relation,
		objects:  objects,
		tuples:   cfg.ContextualTuples,
		timeout:  opts.Timeout,
	}
	templates := append([]string{a.user, a.relation}, a.objects...)
	for _, t := range a.tuples {
		templates = append(templates, t.User, t.Relation, t.Object)
	}
	for i, p := range placeholders {
		for _, t := range templates {
			if strings.Contains(t, p) {
				a.uses[i] = true
			}
		}
	}
	if a.timeout <= 0 {
		a.timeout = time.Duration(cfg.TimeoutSeconds) * time.Second
	}
	if a.timeout <= 0 {
		a.timeout = DefaultTimeout
	}
	prop := opts.Propagator
	if prop == nil {
		prop = propagation.TraceContext{}
	}
	var err error
	switch cfg.Transport {
	case "", TransportGRPC:
		a.checker, err = newGRPC(cfg, opts.GRPCDialOptions, prop)
	case TransportHTTP:
		a.checker, err = newHTTP(cfg, opts.HTTPClient, prop)
	default:
		err = fmt.Errorf("openfga: transport %q is not grpc or http", cfg.Transport)
	}
	if err != nil {
		return nil, err
	}
	return a, nil
}

// Close releases the connection.
func (a *Authorizer) Close() error { return a.checker.close() }

// Authorize checks the relation between the user and each object.
func (a *Authorizer) Authorize(ctx context.Context, in *authz.Input) (bool, error) {
	if in == nil {
		return false, authz.ErrNoInput
	}
	vars, ok := a.newVars(in)
	if !ok {
		return false, nil
	}
	user := vars.Replace(a.user)
	relation := vars.Replace(a.relation)
	if !usable(user, maxUserLen) || !usable(relation, 50) {
		return false, nil
	}
	var tuples *openfgav1.ContextualTupleKeys
	if len(a.tuples) > 0 {
		tuples = &openfgav1.ContextualTupleKeys{TupleKeys: make([]*openfgav1.TupleKey, 0, len(a.tuples))}
		for _, t := range a.tuples {
			tk := &openfgav1.TupleKey{User: vars.Replace(t.User), Relation: vars.Replace(t.Relation), Object: vars.Replace(t.Object)}
			if !usable(tk.User, maxUserLen) || !usable(tk.Relation, 50) || !usable(tk.Object, maxObjectLen) {
				return false, nil
			}
			tuples.TupleKeys = append(tuples.TupleKeys, tk)
		}
	}
	objects := make([]string, 0, len(a.objects))
	for _, tpl := range a.objects {
		o := vars.Replace(tpl)
		if !usable(o, maxObjectLen) {
			return false, nil
		}
		if !contains(objects, o) {
			objects = append(objects, o)
		}
	}

	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	if len(objects) == 1 {
		return a.checker.check(ctx, &openfgav1.CheckRequest{
			StoreId:              a.storeID,
			AuthorizationModelId: a.modelID,
			TupleKey:             &openfgav1.CheckRequestTupleKey{User: user, Relation: relation, Object: objects[0]},
			ContextualTuples:     tuples,
		})
	}
	req := &openfgav1.BatchCheckRequest{
		StoreId:              a.storeID,
		AuthorizationModelId: a.modelID,
		Checks:               make([]*openfgav1.BatchCheckItem, len(objects)),
	}
	for i, o := range objects {
		req.Checks[i] = &openfgav1.BatchCheckItem{
			TupleKey:         &openfgav1.CheckRequestTupleKey{User: user, Relation: relation, Object: o},
			ContextualTuples: tuples,
			CorrelationId:    strconv.Itoa(i),
		}
	}
	resp, err := a.checker.batchCheck(ctx, req)
	if err != nil {
		return false, err
	}
	return batchDecision(resp, len(objects))
}

// batchDecision allows when any check allows; otherwise an item that
// could not be decided (or is missing) makes the whole an error.
func batchDecision(resp *openfgav1.BatchCheckResponse, n int) (bool, error) {
	undecided := 0
	for i := range n {
		r := resp.GetResult()[strconv.Itoa(i)]
		switch res := r.GetCheckResult().(type) {
		case *openfgav1.BatchCheckSingleResult_Allowed:
			if res.Allowed {
				return true, nil
			}
		default:
			undecided++
		}
	}
	if undecided > 0 {
		return false, fmt.Errorf("openfga: batch check: %d of %d checks undecided", undecided, n)
	}
	return false, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// newVars builds the template replacer. ok is false when a value that a
// template uses holds ':' or '#': in the id part of a user or object
// ("user:{subject}", "prefix:{bucket}/{prefix}") OpenFGA refuses them, and
// a subject "alice#writer" would otherwise name a userset. No tuple can
// grant such a request, so it is denied without asking.
func (a *Authorizer) newVars(in *authz.Input) (r *strings.Replacer, ok bool) {
	values := [len(placeholders)]string{in.Subject, in.Resource.Bucket, in.Resource.Key, Prefix(in.Resource.Key)}
	pairs := make([]string, 0, 2*len(placeholders))
	for i, v := range values {
		if a.uses[i] && strings.ContainsAny(v, ":#") {
			return nil, false
		}
		pairs = append(pairs, placeholders[i], v)
	}
	return strings.NewReplacer(pairs...), true
}

// Prefix is the {prefix} of a key: the key up to and including its last
// '/', or "" for a key without one ("a/b/c.txt" → "a/b/").
func Prefix(key string) string {
	i := strings.LastIndexByte(key, '/')
	if i < 0 {
		return ""
	}
	return key[:i+1]
}

// usable reports whether a filled-in template can be sent: not empty, not
// too long, no white space or control characters.
func usable(s string, maxLen int) bool {
	if s == "" || len(s) > maxLen {
		return false
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar {
			return false
		}
	}
	return true
}

var _ authz.Authorizer = (*Authorizer)(nil)
