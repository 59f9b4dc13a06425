package opa_test

import (
	"context"
	"testing"

	"github.com/mizuchi-uploadr/mizuchi/internal/authz"
	"github.com/mizuchi-uploadr/mizuchi/internal/authz/opa"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/opaserver"
)

// limitsPolicy answers an object with limits for alice, a plain true for
// bob, an object without allow for carol, and negative limits for dave.
const limitsPolicy = `package mizuchi

default allow := false

allow := {"allow": true, "limits": {"concurrent_uploads": 1, "bytes_per_day": 1048576}} if input.subject == "alice"

allow := true if input.subject == "bob"

allow := {"limits": {"concurrent_uploads": 9}} if input.subject == "carol"

allow := {"allow": true, "limits": {"concurrent_uploads": -1}} if input.subject == "dave"
`

func TestDecisionsCarryLimits(t *testing.T) {
	srv := opaserver.Start(t, limitsPolicy)
	remote, err := opa.NewRemote(opa.RemoteOptions{URL: srv.URL, PolicyPath: "mizuchi/allow"})
	if err != nil {
		t.Fatal(err)
	}
	embedded, err := opa.NewEmbedded(context.Background(), opa.EmbeddedOptions{PolicyFile: writePolicy(t, limitsPolicy)})
	if err != nil {
		t.Fatal(err)
	}
	for name, a := range map[string]authz.LimitingAuthorizer{"remote": remote, "embedded": embedded} {
		t.Run(name, func(t *testing.T) {
			ask := func(subject string) (bool, *authz.Limits) {
				allow, lim, err := a.AuthorizeLimits(context.Background(), input(subject, authz.ActionUpload, "k", "jwt", nil))
				if err != nil {
					t.Fatal(err)
				}
				plain, err := a.Authorize(context.Background(), input(subject, authz.ActionUpload, "k", "jwt", nil))
				if err != nil || plain != allow {
					t.Fatalf("%s: Authorize %v, AuthorizeLimits %v", subject, plain, allow)
				}
				return allow, lim
			}
			allow, lim := ask("alice")
			if !allow || lim == nil || lim.ConcurrentUploads == nil || *lim.ConcurrentUploads != 1 || *lim.BytesPerDay != 1<<20 || lim.RequestsPerSecond != nil {
				t.Fatalf("alice: %v %+v", allow, lim)
			}
			if allow, lim := ask("bob"); !allow || lim != nil {
				t.Fatalf("bob (plain true): %v %+v", allow, lim)
			}
			for _, s := range []string{"carol", "dave", "erin"} {
				if allow, _ := ask(s); allow {
					t.Fatalf("%s allowed", s)
				}
			}
		})
	}
}
