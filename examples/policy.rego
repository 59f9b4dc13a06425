# Sample Mizuchi upload policy (Rego v1).
#
# Remote:   opa run --server policy.rego, with
#           authz.opa.url: http://127.0.0.1:8181 and policy_path: mizuchi/allow
# Embedded: authz.opa.policy_file: policy.rego and query: data.mizuchi.allow
#
# Each subject may write only under "{subject}/"; a token whose claims carry
# "admin": true may write anywhere. Anonymous uploads are refused.
package mizuchi

default allow := false

upload_actions := {
	"upload",
	"create_multipart",
	"upload_part",
	"complete_multipart",
	"abort_multipart",
	"list_parts",
}

allow if {
	input.action in upload_actions
	own_prefix
}

allow if {
	input.action in upload_actions
	input.context.auth_method == "jwt"
	input.context.claims.admin == true
}

own_prefix if {
	input.subject != ""
	input.subject != "anonymous"
	# A subject with a slash could otherwise reach into another's space
	# ("alice/x" writing under "alice/").
	not contains(input.subject, "/")
	startswith(input.resource.key, concat("", [input.subject, "/"]))
}
