package ecrapi

// Pull-through cache rules: CreatePullThroughCacheRule,
// UpdatePullThroughCacheRule, ValidatePullThroughCacheRule,
// DescribePullThroughCacheRules and DeletePullThroughCacheRule, with the
// request and answer fields of the ECR API reference.

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/authz"
)

// cacheRuleOps serve the pull-through cache rule operations.
type cacheRuleOps struct {
	reg       registry
	rules     CacheRuleStore
	upstreams Upstreams
}

// credentialARNPattern is ECR's pattern of credentialArn (a Secrets
// Manager secret whose name starts with ecr-pullthroughcache/), with its
// length limits.
var credentialARNPattern = regexp.MustCompile(`^arn:aws(-\w+)*:secretsmanager:[a-zA-Z0-9-:]+:secret:ecr\-pullthroughcache\/[a-zA-Z0-9\/_+=.@-]+$`)

// The messages of the secret errors, as the ECR API reference words
// those exceptions.
const (
	msgSecretNotFound  = "The ARN of the secret specified in the pull through cache rule was not found. Update the pull through cache rule with a valid secret ARN and try again."
	msgSecretAccess    = "The secret is unable to be accessed. Verify the resource permissions for the secret and try again."
	msgSecretDecrypt   = "The secret is accessible but is unable to be decrypted. Verify the resource permisisons and try again."
	msgNoCustomRoleARN = "customRoleArn is not supported: Berth has no IAM roles to assume for an upstream registry; store the upstream's credentials as a secret (registryd secrets put) and name it in credentialArn"
)

// useSecret checks a rule's credentialArn before it is set: ECR's
// pattern (InvalidParameterException), a secret of this registry, and
// the caller's secretsmanager:GetSecretValue on it (else, as ECR says
// when its service cannot read the secret, UnableToAccessSecretException;
// the refusal is in the audit log). Whether it exists and opens is the
// engine's to say when the rule is put (secretError).
func (o cacheRuleOps) useSecret(ctx context.Context, c *call, arn string) error {
	if len(arn) < 50 || len(arn) > 612 || !credentialARNPattern.MatchString(arn) {
		return errorf(ecrInvalidParameter, "Invalid parameter at 'credentialArn' failed to satisfy constraint: 'must be the ARN of a Secrets Manager secret whose name starts with ecr-pullthroughcache/' (got '%s')", truncate(arn, 200))
	}
	name, err := o.rules.SecretNameFromARN(arn)
	if err != nil {
		return err
	}
	err = c.authz.Authorize(ctx, c.who, authz.SecretsGetSecretValue, authz.Secret(name))
	if errors.Is(err, engine.ErrAccessDenied) {
		return &apiError{Type: ecrUnableToAccessSecret, Msg: msgSecretAccess, Err: err}
	}
	return err
}

// secretError maps the engine's refusals of a rule's secret to ECR's
// errors: not there, or there but not to be opened (its key disabled or
// destroyed, or its bytes not its own).
func secretError(err error) error {
	switch {
	case errors.Is(err, engine.ErrSecretNotFound):
		return &apiError{Type: ecrSecretNotFound, Msg: msgSecretNotFound, Err: err}
	case errors.Is(err, engine.ErrKeyUnavailable), errors.Is(err, engine.ErrKeyDestroyed), errors.Is(err, engine.ErrCorrupt):
		return &apiError{Type: ecrUnableToDecryptSecret, Msg: msgSecretDecrypt, Err: err}
	}
	return err
}

// CreatePullThroughCacheRuleInput is CreatePullThroughCacheRule's
// request. A rule with credentialArn authenticates to its upstream with
// the stored secret it names; customRoleArn (a role for an ECR upstream)
// is refused: Berth has no roles.
type CreatePullThroughCacheRuleInput struct {
	registryRef
	ECRRepositoryPrefix      string `json:"ecrRepositoryPrefix"`
	UpstreamRegistryURL      string `json:"upstreamRegistryUrl"`
	UpstreamRegistry         string `json:"upstreamRegistry"`
	UpstreamRepositoryPrefix string `json:"upstreamRepositoryPrefix"`
	CredentialARN            string `json:"credentialArn"`
	CustomRoleARN            string `json:"customRoleArn"`
}

// CreatePullThroughCacheRuleOutput is CreatePullThroughCacheRule's
// answer.
type CreatePullThroughCacheRuleOutput struct {
	ECRRepositoryPrefix      string  `json:"ecrRepositoryPrefix"`
	UpstreamRegistryURL      string  `json:"upstreamRegistryUrl"`
	UpstreamRegistry         string  `json:"upstreamRegistry,omitempty"`
	UpstreamRepositoryPrefix string  `json:"upstreamRepositoryPrefix,omitempty"`
	CredentialARN            string  `json:"credentialArn,omitempty"`
	RegistryID               string  `json:"registryId"`
	CreatedAt                awsTime `json:"createdAt,omitzero"`
}

func (o cacheRuleOps) create(ctx context.Context, c *call, in *CreatePullThroughCacheRuleInput) (*CreatePullThroughCacheRuleOutput, error) {
	if in.CustomRoleARN != "" {
		return nil, errorf(ecrInvalidParameter, msgNoCustomRoleARN)
	}
	if in.CredentialARN != "" {
		if err := o.useSecret(ctx, c, in.CredentialARN); err != nil {
			return nil, err
		}
	}
	r, err := o.rules.CreatePullThroughCacheRule(ctx, engine.PullThroughCacheRule{
		ECRRepositoryPrefix: in.ECRRepositoryPrefix, UpstreamRegistryURL: in.UpstreamRegistryURL,
		UpstreamRegistry: in.UpstreamRegistry, UpstreamRepositoryPrefix: in.UpstreamRepositoryPrefix,
		CredentialARN: in.CredentialARN,
	})
	if err != nil {
		return nil, secretError(err)
	}
	if o.upstreams != nil {
		o.upstreams.Prime(&r)
	}
	return &CreatePullThroughCacheRuleOutput{
		ECRRepositoryPrefix: r.ECRRepositoryPrefix, UpstreamRegistryURL: r.UpstreamRegistryURL,
		UpstreamRegistry: r.UpstreamRegistry, UpstreamRepositoryPrefix: r.UpstreamRepositoryPrefix,
		CredentialARN: r.CredentialARN, RegistryID: o.reg.account, CreatedAt: awsTime(r.CreatedAt),
	}, nil
}

// UpdatePullThroughCacheRuleInput is UpdatePullThroughCacheRule's
// request: the rule's credentials (credentialArn, required here: Berth
// has no roles, so customRoleArn is refused).
type UpdatePullThroughCacheRuleInput struct {
	registryRef
	ECRRepositoryPrefix string `json:"ecrRepositoryPrefix"`
	CredentialARN       string `json:"credentialArn"`
	CustomRoleARN       string `json:"customRoleArn"`
}

// UpdatePullThroughCacheRuleOutput is UpdatePullThroughCacheRule's
// answer.
type UpdatePullThroughCacheRuleOutput struct {
	ECRRepositoryPrefix      string  `json:"ecrRepositoryPrefix"`
	UpstreamRepositoryPrefix string  `json:"upstreamRepositoryPrefix,omitempty"`
	CredentialARN            string  `json:"credentialArn,omitempty"`
	RegistryID               string  `json:"registryId"`
	UpdatedAt                awsTime `json:"updatedAt,omitzero"`
}

func (o cacheRuleOps) update(ctx context.Context, c *call, in *UpdatePullThroughCacheRuleInput) (*UpdatePullThroughCacheRuleOutput, error) {
	if in.CustomRoleARN != "" {
		return nil, errorf(ecrInvalidParameter, msgNoCustomRoleARN)
	}
	if in.CredentialARN == "" {
		return nil, errorf(ecrInvalidParameter, "credentialArn is required: it is what UpdatePullThroughCacheRule changes (customRoleArn is not supported)")
	}
	if err := o.useSecret(ctx, c, in.CredentialARN); err != nil {
		return nil, err
	}
	r, err := o.rules.UpdatePullThroughCacheRule(ctx, in.ECRRepositoryPrefix, in.CredentialARN)
	if errors.Is(err, engine.ErrCacheRuleNotFound) {
		return nil, o.ruleNotFound(in.ECRRepositoryPrefix)
	}
	if err != nil {
		return nil, secretError(err)
	}
	return &UpdatePullThroughCacheRuleOutput{
		ECRRepositoryPrefix: r.ECRRepositoryPrefix, UpstreamRepositoryPrefix: r.UpstreamRepositoryPrefix,
		CredentialARN: r.CredentialARN, RegistryID: o.reg.account, UpdatedAt: awsTime(r.UpdatedAt),
	}, nil
}

// ValidatePullThroughCacheRuleInput is ValidatePullThroughCacheRule's
// request.
type ValidatePullThroughCacheRuleInput struct {
	registryRef
	ECRRepositoryPrefix string `json:"ecrRepositoryPrefix"`
}

// ValidatePullThroughCacheRuleOutput is ValidatePullThroughCacheRule's
// answer: isValid, and failure when it is not.
type ValidatePullThroughCacheRuleOutput struct {
	ECRRepositoryPrefix      string `json:"ecrRepositoryPrefix"`
	RegistryID               string `json:"registryId"`
	UpstreamRegistryURL      string `json:"upstreamRegistryUrl"`
	CredentialARN            string `json:"credentialArn,omitempty"`
	UpstreamRepositoryPrefix string `json:"upstreamRepositoryPrefix,omitempty"`
	IsValid                  bool   `json:"isValid"`
	Failure                  string `json:"failure,omitempty"`
}

// validate reaches the rule's upstream with the rule's credentials:
// whether that works is the answer (isValid, failure), not an error.
func (o cacheRuleOps) validate(ctx context.Context, _ *call, in *ValidatePullThroughCacheRuleInput) (*ValidatePullThroughCacheRuleOutput, error) {
	r, err := o.rule(ctx, in.ECRRepositoryPrefix)
	if err != nil {
		return nil, err
	}
	if o.upstreams == nil {
		return nil, errorf(ecrServer, "ValidatePullThroughCacheRule: no upstream validator is configured")
	}
	out := &ValidatePullThroughCacheRuleOutput{
		ECRRepositoryPrefix: r.ECRRepositoryPrefix, RegistryID: o.reg.account, UpstreamRegistryURL: r.UpstreamRegistryURL,
		CredentialARN: r.CredentialARN, UpstreamRepositoryPrefix: r.UpstreamRepositoryPrefix,
	}
	out.Failure = o.upstreams.ValidateUpstream(ctx, &r)
	out.IsValid = out.Failure == ""
	return out, nil
}

// rule returns the rule of prefix (a trailing "/" as ECR assumes it), or
// PullThroughCacheRuleNotFoundException.
func (o cacheRuleOps) rule(ctx context.Context, prefix string) (engine.PullThroughCacheRule, error) {
	rules, err := o.rules.PullThroughCacheRules(ctx)
	if err != nil {
		return engine.PullThroughCacheRule{}, err
	}
	want := prefix
	if len(want) > 1 {
		want = strings.TrimSuffix(want, "/")
	}
	i := slices.IndexFunc(rules, func(r engine.PullThroughCacheRule) bool { return r.ECRRepositoryPrefix == want })
	if i < 0 {
		return engine.PullThroughCacheRule{}, o.ruleNotFound(prefix)
	}
	return rules[i], nil
}

// ruleNotFound is ECR's error for a prefix no rule has.
func (o cacheRuleOps) ruleNotFound(prefix string) error {
	return errorf(ecrCacheRuleNotFound, "The pull through cache rule with prefix '%s' does not exist in the registry with id '%s'", truncate(prefix, 100), o.reg.account)
}

// DescribePullThroughCacheRulesInput is DescribePullThroughCacheRules'
// request: the rules of these prefixes, or all, a page at a time.
type DescribePullThroughCacheRulesInput struct {
	registryRef
	ECRRepositoryPrefixes []string `json:"ecrRepositoryPrefixes"`
	NextToken             string   `json:"nextToken"`
	MaxResults            *int     `json:"maxResults"`
}

// DescribePullThroughCacheRulesOutput is DescribePullThroughCacheRules'
// answer.
type DescribePullThroughCacheRulesOutput struct {
	PullThroughCacheRules []PullThroughCacheRule `json:"pullThroughCacheRules"`
	NextToken             string                 `json:"nextToken,omitempty"`
}

func (o cacheRuleOps) describe(ctx context.Context, _ *call, in *DescribePullThroughCacheRulesInput) (*DescribePullThroughCacheRulesOutput, error) {
	n, err := pageSize(in.MaxResults, 1000)
	if err != nil {
		return nil, err
	}
	rules, err := o.rules.PullThroughCacheRules(ctx)
	if err != nil {
		return nil, err
	}
	if len(in.ECRRepositoryPrefixes) > 0 {
		want := make([]string, len(in.ECRRepositoryPrefixes))
		for i, p := range in.ECRRepositoryPrefixes {
			want[i] = p
			if len(p) > 1 {
				want[i] = strings.TrimSuffix(p, "/")
			}
			if !slices.ContainsFunc(rules, func(r engine.PullThroughCacheRule) bool { return r.ECRRepositoryPrefix == want[i] }) {
				return nil, o.ruleNotFound(p)
			}
		}
		rules = slices.DeleteFunc(rules, func(r engine.PullThroughCacheRule) bool {
			return !slices.Contains(want, r.ECRRepositoryPrefix)
		})
	}
	page, next, err := paginate(rules, func(r engine.PullThroughCacheRule) string { return r.ECRRepositoryPrefix }, in.NextToken, n)
	if err != nil {
		return nil, err
	}
	out := &DescribePullThroughCacheRulesOutput{PullThroughCacheRules: make([]PullThroughCacheRule, len(page)), NextToken: next}
	for i, r := range page {
		out.PullThroughCacheRules[i] = cacheRuleFromEngine(o.reg, r)
	}
	return out, nil
}

// DeletePullThroughCacheRuleInput is DeletePullThroughCacheRule's
// request.
type DeletePullThroughCacheRuleInput struct {
	registryRef
	ECRRepositoryPrefix string `json:"ecrRepositoryPrefix"`
}

// DeletePullThroughCacheRuleOutput is DeletePullThroughCacheRule's
// answer.
type DeletePullThroughCacheRuleOutput struct {
	ECRRepositoryPrefix      string  `json:"ecrRepositoryPrefix"`
	UpstreamRegistryURL      string  `json:"upstreamRegistryUrl"`
	UpstreamRepositoryPrefix string  `json:"upstreamRepositoryPrefix,omitempty"`
	CredentialARN            string  `json:"credentialArn,omitempty"`
	RegistryID               string  `json:"registryId"`
	CreatedAt                awsTime `json:"createdAt,omitzero"`
}

func (o cacheRuleOps) delete(ctx context.Context, _ *call, in *DeletePullThroughCacheRuleInput) (*DeletePullThroughCacheRuleOutput, error) {
	r, err := o.rules.DeletePullThroughCacheRule(ctx, in.ECRRepositoryPrefix)
	if err != nil {
		return nil, err
	}
	return &DeletePullThroughCacheRuleOutput{
		ECRRepositoryPrefix: r.ECRRepositoryPrefix, UpstreamRegistryURL: r.UpstreamRegistryURL,
		UpstreamRepositoryPrefix: r.UpstreamRepositoryPrefix, CredentialARN: r.CredentialARN,
		RegistryID: o.reg.account, CreatedAt: awsTime(r.CreatedAt),
	}, nil
}
