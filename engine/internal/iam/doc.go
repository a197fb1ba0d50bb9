// Package iam parses AWS IAM JSON policy documents and decides requests
// against them as AWS does: an explicit Deny in any policy wins; otherwise
// an Allow in an identity policy or in the resource's policy allows;
// otherwise the request is implicitly denied. It is pure (text and a
// request in, a decision out), does no I/O and imports nothing of Berth.
//
// The nouns:
//
//   - A Policy is a parsed document of one Kind: an identity policy
//     (attached to a user or a group; no Principal) or a resource policy
//     (a repository policy, the registry policy, a key policy; Principal
//     required). Parse refuses, with an error that wraps ErrInvalid and a
//     more precise sentinel, everything Berth could not enforce: it never
//     keeps a statement it would ignore.
//   - A Principal is who asks: a user of an account, or anonymous.
//   - A Request is a principal, an action ("ecr:BatchGetImage"), a
//     resource ARN and the request's environment (source address,
//     transport, time); tags come lazily through a Context, so a resource's
//     tags are fetched only when a statement's condition needs them.
//   - A Decision is Allow, ExplicitDeny or ImplicitDeny, with the deciding
//     statement (policy name, index and Sid) for the audit log.
//
// Parse once, Evaluate many times: Evaluate allocates nothing on its own
// and does no work a statement does not need (actions are matched as bit
// sets, conditions only after action, resource and principal match).
//
// docs/policies.md describes the policy language Berth accepts and why
// the rest is refused.
package iam
