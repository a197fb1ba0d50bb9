package gc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/index"
)

// Lifecycle policy vocabulary, as ECR spells it.
const (
	TagStatusTagged   = "tagged"
	TagStatusUntagged = "untagged"
	TagStatusAny      = "any"

	CountTypeImageCountMoreThan     = "imageCountMoreThan"
	CountTypeSinceImagePushed       = "sinceImagePushed"
	CountTypeSinceImagePulled       = "sinceImagePulled"
	CountTypeSinceImageTransitioned = "sinceImageTransitioned"

	CountUnitDays = "days"

	// StorageClassStandard selects active images (the default);
	// StorageClassArchive selects archived ones.
	StorageClassStandard = "standard"
	StorageClassArchive  = "archive"

	ActionExpire     = "expire"
	ActionTransition = "transition"

	// MinArchiveDays is the minimum storage duration of an archived
	// image: no rule may expire an image archived for less (ECR refuses
	// such a policy; BatchDeleteImage still deletes at any time).
	MinArchiveDays = 90

	// MaxPolicyLength is the longest policy text ECR accepts (characters).
	MaxPolicyLength = 30720
	// MinPolicyLength is the shortest policy text ECR's API accepts.
	MinPolicyLength = 100
	// MaxPatternWildcards is the number of `*` a tagPatternList entry may hold.
	MaxPatternWildcards = 4
)

// ErrInvalidPolicy is wrapped by every error ParsePolicy returns.
var ErrInvalidPolicy = errors.New("gc: invalid lifecycle policy")

// PolicyError is a lifecycle policy validation failure. Its Error text is
// the message ECR answers (InvalidParameterException), so that the ECR API
// and the command line can show it unchanged; it unwraps to
// ErrInvalidPolicy.
type PolicyError struct {
	// Detail is the validation failure without ECR's fixed preamble.
	Detail string
}

// Error returns ECR's message for the failure.
func (e *PolicyError) Error() string {
	return "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: " + e.Detail + "'"
}

// Unwrap returns ErrInvalidPolicy.
func (e *PolicyError) Unwrap() error { return ErrInvalidPolicy }

func invalid(format string, args ...any) error {
	return &PolicyError{Detail: fmt.Sprintf(format, args...)}
}

// Policy is a parsed and validated ECR lifecycle policy. Rules are sorted by
// RulePriority, lowest (applied first) first.
type Policy struct {
	Rules []Rule `json:"rules"`
}

// Rule is one rule of a lifecycle policy.
type Rule struct {
	// RulePriority orders the rules: unique, >= 1, lowest applies first.
	RulePriority int `json:"rulePriority"`
	// Description is free text.
	Description string `json:"description,omitempty"`
	// Selection picks the images the rule considers.
	Selection Selection `json:"selection"`
	// Action is what happens to them: expire, or transition to the
	// archive storage class.
	Action Action `json:"action"`
}

// Selection is a rule's selection block.
type Selection struct {
	TagStatus      string   `json:"tagStatus"`
	TagPrefixList  []string `json:"tagPrefixList,omitempty"`
	TagPatternList []string `json:"tagPatternList,omitempty"`
	// StorageClass is the storage class the rule selects images of:
	// "standard" (also when empty) or "archive".
	StorageClass string `json:"storageClass,omitempty"`
	CountType    string `json:"countType"`
	CountUnit    string `json:"countUnit,omitempty"`
	CountNumber  int    `json:"countNumber"`
}

// storageClass is the storage class the selection applies to.
func (s *Selection) storageClass() string {
	if s.StorageClass == "" {
		return StorageClassStandard
	}
	return s.StorageClass
}

// Action is a rule's action block.
type Action struct {
	// Type is "expire" or "transition".
	Type string `json:"type"`
	// TargetStorageClass is the storage class a transition moves the
	// image to: only "archive".
	TargetStorageClass string `json:"targetStorageClass,omitempty"`
}

// ParsePolicy parses and validates the JSON text of an ECR lifecycle policy.
// Every error is a *PolicyError (errors.Is(err, ErrInvalidPolicy)). It never
// panics, whatever the input.
func ParsePolicy(text string) (*Policy, error) {
	if n := len([]rune(text)); n > MaxPolicyLength {
		return nil, invalid("policy text is %d characters long, at most %d are allowed", n, MaxPolicyLength)
	} else if n < MinPolicyLength {
		return nil, invalid("policy text is %d characters long, at least %d are required", n, MinPolicyLength)
	}
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return nil, invalid("policy is not valid JSON: %s", jsonErrText(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, invalid("policy is not valid JSON: unexpected data after the top-level object")
	}
	top, ok := raw.(map[string]any)
	if !ok {
		return nil, invalid("instance type (%s) does not match any allowed primitive type (allowed: [\"object\"])", jsonType(raw))
	}
	if err := onlyKeys("", top, "rules"); err != nil {
		return nil, err
	}
	if err := required("", top, "rules"); err != nil {
		return nil, err
	}
	rules, ok := top["rules"].([]any)
	if !ok {
		return nil, invalid("/rules: instance type (%s) does not match any allowed primitive type (allowed: [\"array\"])", jsonType(top["rules"]))
	}
	if len(rules) == 0 {
		return nil, invalid("/rules: array is too short: must have at least 1 elements but instance has 0 elements")
	}
	p := &Policy{Rules: make([]Rule, 0, len(rules))}
	for i, rv := range rules {
		r, err := parseRule(fmt.Sprintf("/rules/%d", i), rv)
		if err != nil {
			return nil, err
		}
		p.Rules = append(p.Rules, r)
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	sort.SliceStable(p.Rules, func(i, j int) bool { return p.Rules[i].RulePriority < p.Rules[j].RulePriority })
	return p, nil
}

// jsonErrText shortens encoding/json's messages (no Go type names).
func jsonErrText(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s at offset %d", se.Error(), se.Offset)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of input"
	}
	return err.Error()
}

func jsonType(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		if _, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return "integer"
		}
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "unknown"
}

// onlyKeys refuses properties the schema does not know.
func onlyKeys(at string, m map[string]any, allowed ...string) error {
	var extra []string
	for k := range m {
		if !slices.Contains(allowed, k) {
			extra = append(extra, strconv.Quote(k))
		}
	}
	if len(extra) == 0 {
		return nil
	}
	sort.Strings(extra)
	return invalid("%sobject instance has properties which are not allowed by the schema: [%s]", prefixAt(at), strings.Join(extra, ","))
}

// required reports missing required properties, all at once.
func required(at string, m map[string]any, keys ...string) error {
	var missing []string
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			missing = append(missing, strconv.Quote(k))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return invalid("%sobject has missing required properties ([%s])", prefixAt(at), strings.Join(missing, ","))
}

func prefixAt(at string) string {
	if at == "" {
		return ""
	}
	return at + ": "
}

func getObject(at string, v any) (map[string]any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, invalid("%s: instance type (%s) does not match any allowed primitive type (allowed: [\"object\"])", at, jsonType(v))
	}
	return m, nil
}

func getString(at string, v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", invalid("%s: instance type (%s) does not match any allowed primitive type (allowed: [\"string\"])", at, jsonType(v))
	}
	return s, nil
}

func getInt(at string, v any) (int, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, invalid("%s: instance type (%s) does not match any allowed primitive type (allowed: [\"integer\"])", at, jsonType(v))
	}
	i, err := strconv.ParseInt(string(n), 10, 32)
	if err != nil {
		if _, ferr := strconv.ParseInt(string(n), 10, 64); ferr == nil {
			return 0, invalid("%s: numeric instance is greater than the required maximum (maximum: %d, found: %s)", at, int32(^uint32(0)>>1), n)
		}
		return 0, invalid("%s: instance type (%s) does not match any allowed primitive type (allowed: [\"integer\"])", at, jsonType(v))
	}
	return int(i), nil
}

func getStrings(at string, v any) ([]string, error) {
	a, ok := v.([]any)
	if !ok {
		return nil, invalid("%s: instance type (%s) does not match any allowed primitive type (allowed: [\"array\"])", at, jsonType(v))
	}
	if len(a) == 0 {
		return nil, invalid("%s: array is too short: must have at least 1 elements but instance has 0 elements", at)
	}
	out := make([]string, 0, len(a))
	for i, e := range a {
		s, err := getString(fmt.Sprintf("%s/%d", at, i), e)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func enum(at, s string, values ...string) error {
	if slices.Contains(values, s) {
		return nil
	}
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = strconv.Quote(v)
	}
	return invalid("%s: instance value (%q) not found in enum (possible values: [%s])", at, s, strings.Join(q, ","))
}

func parseRule(at string, v any) (Rule, error) {
	var r Rule
	m, err := getObject(at, v)
	if err != nil {
		return r, err
	}
	if err := onlyKeys(at, m, "rulePriority", "description", "selection", "action"); err != nil {
		return r, err
	}
	if err := required(at, m, "rulePriority", "selection", "action"); err != nil {
		return r, err
	}
	if r.RulePriority, err = getInt(at+"/rulePriority", m["rulePriority"]); err != nil {
		return r, err
	}
	if r.RulePriority < 1 {
		return r, invalid("%s/rulePriority: numeric instance is lower than the required minimum (minimum: 1, found: %d)", at, r.RulePriority)
	}
	if d, ok := m["description"]; ok {
		if r.Description, err = getString(at+"/description", d); err != nil {
			return r, err
		}
	}
	sel, err := getObject(at+"/selection", m["selection"])
	if err != nil {
		return r, err
	}
	sat := at + "/selection"
	if err := onlyKeys(sat, sel, "tagStatus", "tagPrefixList", "tagPatternList", "storageClass", "countType", "countUnit", "countNumber"); err != nil {
		return r, err
	}
	if err := required(sat, sel, "tagStatus", "countType", "countNumber"); err != nil {
		return r, err
	}
	s := &r.Selection
	if s.TagStatus, err = getString(sat+"/tagStatus", sel["tagStatus"]); err != nil {
		return r, err
	}
	if err := enum(sat+"/tagStatus", s.TagStatus, TagStatusTagged, TagStatusUntagged, TagStatusAny); err != nil {
		return r, err
	}
	if v, ok := sel["tagPrefixList"]; ok {
		if s.TagPrefixList, err = getStrings(sat+"/tagPrefixList", v); err != nil {
			return r, err
		}
	}
	if v, ok := sel["tagPatternList"]; ok {
		if s.TagPatternList, err = getStrings(sat+"/tagPatternList", v); err != nil {
			return r, err
		}
	}
	if v, ok := sel["storageClass"]; ok {
		if s.StorageClass, err = getString(sat+"/storageClass", v); err != nil {
			return r, err
		}
		if err := enum(sat+"/storageClass", s.StorageClass, StorageClassStandard, StorageClassArchive); err != nil {
			return r, err
		}
	}
	if s.CountType, err = getString(sat+"/countType", sel["countType"]); err != nil {
		return r, err
	}
	if err := enum(sat+"/countType", s.CountType, CountTypeImageCountMoreThan, CountTypeSinceImagePushed, CountTypeSinceImagePulled, CountTypeSinceImageTransitioned); err != nil {
		return r, err
	}
	if v, ok := sel["countUnit"]; ok {
		if s.CountUnit, err = getString(sat+"/countUnit", v); err != nil {
			return r, err
		}
		if err := enum(sat+"/countUnit", s.CountUnit, CountUnitDays); err != nil {
			return r, err
		}
	}
	if s.CountNumber, err = getInt(sat+"/countNumber", sel["countNumber"]); err != nil {
		return r, err
	}
	if s.CountNumber < 1 {
		return r, invalid("%s/countNumber: numeric instance is lower than the required minimum (minimum: 1, found: %d)", sat, s.CountNumber)
	}
	act, err := getObject(at+"/action", m["action"])
	if err != nil {
		return r, err
	}
	if err := onlyKeys(at+"/action", act, "type", "targetStorageClass"); err != nil {
		return r, err
	}
	if err := required(at+"/action", act, "type"); err != nil {
		return r, err
	}
	if r.Action.Type, err = getString(at+"/action/type", act["type"]); err != nil {
		return r, err
	}
	if err := enum(at+"/action/type", r.Action.Type, ActionExpire, ActionTransition); err != nil {
		return r, err
	}
	if v, ok := act["targetStorageClass"]; ok {
		if r.Action.TargetStorageClass, err = getString(at+"/action/targetStorageClass", v); err != nil {
			return r, err
		}
		if err := enum(at+"/action/targetStorageClass", r.Action.TargetStorageClass, StorageClassArchive); err != nil {
			return r, err
		}
	}
	return r, nil
}

// validate checks the rules against each other and the per-rule
// constraints the JSON schema cannot express, in the order ECR reports them.
// The rules that select one storage class are checked together: the
// `any` rule must have the highest priority of those, and only one of
// them may select untagged images (ECR's "Only one rule selecting a
// specific storage class is allowed to select untagged images"; its
// documented policy that archives with an `any` rule at priority 1 and
// expires archived images with another at priority 2 is valid).
func (p *Policy) validate() error {
	seen := map[int]bool{}
	untagged := map[string]int{}
	maxPrio := map[string]int{}
	for _, r := range p.Rules {
		c := r.Selection.storageClass()
		maxPrio[c] = max(maxPrio[c], r.RulePriority)
	}
	for _, r := range p.Rules {
		s := r.Selection
		if seen[r.RulePriority] {
			return invalid("rulePriority %d is used by more than one rule; rule priorities must be unique", r.RulePriority)
		}
		seen[r.RulePriority] = true
		switch s.TagStatus {
		case TagStatusTagged:
			if len(s.TagPrefixList) > 0 && len(s.TagPatternList) > 0 {
				return invalid("rule %d: tagPrefixList and tagPatternList cannot both be specified for tagStatus 'tagged'", r.RulePriority)
			}
			if len(s.TagPrefixList) == 0 && len(s.TagPatternList) == 0 {
				return invalid("rule %d: tagPrefixList or tagPatternList must be specified when tagStatus is 'tagged'", r.RulePriority)
			}
		default:
			if len(s.TagPrefixList) > 0 || len(s.TagPatternList) > 0 {
				return invalid("rule %d: tagPrefixList and tagPatternList are not allowed when tagStatus is '%s'", r.RulePriority, s.TagStatus)
			}
		}
		for _, pre := range s.TagPrefixList {
			if pre == "" {
				return invalid("rule %d: tagPrefixList entries must not be empty", r.RulePriority)
			}
		}
		for _, pat := range s.TagPatternList {
			if pat == "" {
				return invalid("rule %d: tagPatternList entries must not be empty", r.RulePriority)
			}
			if n := strings.Count(pat, "*"); n > MaxPatternWildcards {
				return invalid("rule %d: tagPatternList entry %q has %d wildcards; at most %d are allowed", r.RulePriority, pat, n, MaxPatternWildcards)
			}
		}
		class := s.storageClass()
		if s.TagStatus == TagStatusUntagged {
			untagged[class]++
		}
		if s.TagStatus == TagStatusAny && r.RulePriority != maxPrio[class] {
			if class == StorageClassStandard && s.StorageClass == "" && len(maxPrio) == 1 {
				return invalid("the rule with tagStatus 'any' (rulePriority %d) must have the highest rulePriority (%d)", r.RulePriority, maxPrio[class])
			}
			return invalid("the rule with tagStatus 'any' (rulePriority %d) must have the highest rulePriority (%d) of the rules selecting storageClass '%s'", r.RulePriority, maxPrio[class], class)
		}
		switch s.CountType {
		case CountTypeImageCountMoreThan:
			if s.CountUnit != "" {
				return invalid("rule %d: countUnit is not allowed when countType is 'imageCountMoreThan'", r.RulePriority)
			}
		default:
			if s.CountUnit == "" {
				return invalid("rule %d: countUnit must be specified when countType is '%s'", r.RulePriority, s.CountType)
			}
		}
		if err := r.validateStorage(); err != nil {
			return err
		}
	}
	for _, class := range []string{StorageClassStandard, StorageClassArchive} {
		if untagged[class] > 1 {
			if class == StorageClassStandard && len(maxPrio) == 1 {
				return invalid("only one rule may have tagStatus 'untagged'")
			}
			return invalid("only one rule selecting storageClass '%s' may have tagStatus 'untagged'", class)
		}
	}
	return nil
}

// validateStorage checks what ECR documents of storage classes: a
// transition names its target (archive), an expiry names none; archived
// images are selected with countType sinceImageTransitioned (storageClass
// archive, required with it and allowed only with it), only to be
// expired, and not before MinArchiveDays.
func (r *Rule) validateStorage() error {
	s, a, n := r.Selection, r.Action, r.RulePriority
	switch a.Type {
	case ActionTransition:
		if a.TargetStorageClass == "" {
			return invalid("rule %d: targetStorageClass must be specified when action type is 'transition'", n)
		}
	default:
		if a.TargetStorageClass != "" {
			return invalid("rule %d: targetStorageClass is only allowed when action type is 'transition'", n)
		}
	}
	if s.CountType == CountTypeSinceImageTransitioned {
		if s.StorageClass == "" {
			return invalid("rule %d: storageClass must be specified when countType is 'sinceImageTransitioned'", n)
		}
		if s.StorageClass != StorageClassArchive {
			return invalid("rule %d: storageClass must be 'archive' when countType is 'sinceImageTransitioned'", n)
		}
		if a.Type != ActionExpire {
			return invalid("rule %d: images selected by countType 'sinceImageTransitioned' are archived already; the action must be 'expire'", n)
		}
		if s.CountNumber < MinArchiveDays {
			return invalid("rule %d: archived images have a minimum storage duration of %d days; countNumber must be at least %d when countType is 'sinceImageTransitioned'", n, MinArchiveDays, MinArchiveDays)
		}
		return nil
	}
	if s.StorageClass == StorageClassArchive {
		return invalid("rule %d: storageClass 'archive' is only supported with countType 'sinceImageTransitioned'", n)
	}
	return nil
}

// String returns the policy as canonical JSON (rules in priority order).
func (p *Policy) String() string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(p)
	return strings.TrimSpace(b.String())
}

// Image is what lifecycle evaluation knows of one image of a repository.
type Image struct {
	Digest digest.Digest `json:"imageDigest"`
	// Tags are the image's tags, any order.
	Tags []string `json:"imageTags,omitempty"`
	// PushedAt is when the image was pushed.
	PushedAt time.Time `json:"imagePushedAt"`
	// LastPulledAt is when it was last pulled; zero if never.
	LastPulledAt time.Time `json:"lastRecordedPullTime,omitzero"`
	// Status is the image's storage status: active images are of the
	// standard storage class, archived ones of the archive class, and
	// activating ones (being restored) of neither: no rule acts on them.
	Status index.ImageStatus `json:"-"`
	// LastArchivedAt is when the image was last archived (zero if never).
	LastArchivedAt time.Time `json:"-"`
	// LastActivatedAt is when it was last restored from the archive
	// (zero if never).
	LastActivatedAt time.Time `json:"-"`
}

// storageClass is the storage class of img, "" while it is activating.
func (img *Image) storageClass() string {
	switch img.Status {
	case index.StatusActive:
		return StorageClassStandard
	case index.StatusArchived:
		return StorageClassArchive
	}
	return ""
}

// pushedAt is the time ECR orders and ages the image by: its push, or its
// last restore from the archive when it was restored since ("If an image
// was archived and then restored at any point in the past, the image's
// last_activated_at is used instead of pushed_at_time").
func (img *Image) pushedAt() time.Time {
	if img.LastActivatedAt.After(img.PushedAt) {
		return img.LastActivatedAt
	}
	return img.PushedAt
}

// lastUsedAt is the time sinceImagePulled ages the image by: its last
// pull; its push if never pulled; its last restore if restored and not
// pulled since.
func (img *Image) lastUsedAt() time.Time {
	t := img.LastPulledAt
	if t.IsZero() {
		t = img.PushedAt
	}
	if img.LastActivatedAt.After(t) {
		t = img.LastActivatedAt
	}
	return t
}

// Expiry is one image a policy acts on: expires (Action "expire") or
// transitions to the archive storage class (Action "transition"), and
// the rule that does.
type Expiry struct {
	Image
	// Action is ActionExpire or ActionTransition.
	Action string `json:"-"`
	// StorageClass is the image's storage class before the action:
	// StorageClassStandard or StorageClassArchive.
	StorageClass string `json:"-"`
	// RulePriority is the priority of the rule that acts on the image
	// (ECR's appliedRulePriority).
	RulePriority int `json:"appliedRulePriority"`
	// Description is that rule's description.
	Description string `json:"description,omitempty"`
}

// Matches reports whether image img falls under the rule's selection
// (tag status and prefix or pattern lists), whatever its age or rank.
func (s *Selection) Matches(img *Image) bool {
	switch s.TagStatus {
	case TagStatusAny:
		return true
	case TagStatusUntagged:
		return len(img.Tags) == 0
	case TagStatusTagged:
		if len(img.Tags) == 0 {
			return false
		}
		for _, pre := range s.TagPrefixList {
			if !slices.ContainsFunc(img.Tags, func(t string) bool { return strings.HasPrefix(t, pre) }) {
				return false
			}
		}
		for _, pat := range s.TagPatternList {
			if !slices.ContainsFunc(img.Tags, func(t string) bool { return MatchWildcard(pat, t) }) {
				return false
			}
		}
		return true
	}
	return false
}

// MatchWildcard reports whether s matches pattern, in which `*` matches any
// run of characters (also none) and every other character itself.
func MatchWildcard(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return len(s) >= len(last) && strings.HasSuffix(s, last)
}

// marks reports the images of sel (all images matching the rule,
// including those claimed by higher-priority rules, as ECR counts them)
// that the rule's count condition marks.
func (r *Rule) marks(sel []*Image, now time.Time) map[digest.Digest]bool {
	out := map[digest.Digest]bool{}
	s := r.Selection
	switch s.CountType {
	case CountTypeImageCountMoreThan:
		sorted := slices.Clone(sel)
		sort.SliceStable(sorted, func(i, j int) bool {
			a, b := sorted[i].pushedAt(), sorted[j].pushedAt()
			if !a.Equal(b) {
				return a.After(b)
			}
			return sorted[i].Digest > sorted[j].Digest
		})
		for _, img := range sorted[min(s.CountNumber, len(sorted)):] {
			out[img.Digest] = true
		}
	case CountTypeSinceImagePushed, CountTypeSinceImagePulled, CountTypeSinceImageTransitioned:
		age := time.Duration(s.CountNumber) * 24 * time.Hour
		for _, img := range sel {
			var t time.Time
			switch s.CountType {
			case CountTypeSinceImagePushed:
				t = img.pushedAt()
			case CountTypeSinceImagePulled:
				t = img.lastUsedAt()
			default:
				t = img.LastArchivedAt
				if t.IsZero() {
					continue // no archive time to age it by
				}
			}
			if now.Sub(t) > age {
				out[img.Digest] = true
			}
		}
	}
	return out
}

// Evaluate returns the images the policy expires or archives at time
// now, oldest push first (then by digest). It is a pure function of its
// arguments.
//
// Semantics (see docs/gc.md, docs/archive.md and ecr-semantics.md): rules
// apply in priority order; each rule considers every image of its storage
// class (standard: active images; archive: archived ones) that its
// selection matches and, by its count type, marks some of them; an image
// is acted on (expired, or transitioned to the archive) by the first rule
// (lowest priority number) whose selection matches it, if that rule marks
// it, and by no other rule: an image whose tags match a higher-priority
// rule's selection is never acted on by a lower-priority rule, even if the
// higher rule keeps it. For imageCountMoreThan the count is over all images
// the rule's selection matches, newest push first, as ECR's documented
// example counts them. An image restored from the archive is aged and
// ordered from its restore rather than its push. Images being restored
// (activating) are left alone by every rule.
func (p *Policy) Evaluate(images []Image, now time.Time) []Expiry {
	claimed := make(map[digest.Digest]bool, len(images))
	var out []Expiry
	for ri := range p.Rules {
		r := &p.Rules[ri]
		class := r.Selection.storageClass()
		var sel []*Image
		for i := range images {
			if images[i].storageClass() == class && r.Selection.Matches(&images[i]) {
				sel = append(sel, &images[i])
			}
		}
		marked := r.marks(sel, now)
		for _, img := range sel {
			if claimed[img.Digest] {
				continue
			}
			claimed[img.Digest] = true
			if marked[img.Digest] {
				out = append(out, Expiry{Image: *img, Action: r.Action.Type, StorageClass: class,
					RulePriority: r.RulePriority, Description: r.Description})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.PushedAt.Equal(b.PushedAt) {
			return a.PushedAt.Before(b.PushedAt)
		}
		return a.Digest < b.Digest
	})
	return out
}
