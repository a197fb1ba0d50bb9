package record

import (
	"encoding/json"
	"flag"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata from the values in the test")

// encodeSettingsV1 writes settings as repository records were written
// at version 1 (before the pull-through cache marker).
func encodeSettingsV1(s Settings) ([]byte, error) {
	return json.Marshal(settingsV1{Version: 1, Settings: s})
}

// encodeCacheRuleV1 writes a rule as rules were written at version 1
// (before credentials and the upstream registry's name).
func encodeCacheRuleV1(r CacheRule) ([]byte, error) {
	return json.Marshal(cacheRuleV1{Version: 1, cacheRuleFieldsV1: cacheRuleFieldsV1{Prefix: r.Prefix, UpstreamURL: r.UpstreamURL,
		UpstreamPrefix: r.UpstreamPrefix, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}})
}

// encodeRepositoryV2 writes a repository record as it was written at
// version 2 (before the last lifecycle evaluation).
func encodeRepositoryV2(r Repository) ([]byte, error) {
	return json.Marshal(repositoryV2{Version: 2, Settings: r.Settings, CacheRule: r.CacheRule})
}

// stored is one record of a testdata file.
type stored struct {
	Kind  string `json:"kind"`
	Key   string `json:"key"`
	Value string `json:"value"`
}

const (
	untaggedPolicy = `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}`
	denyDelete     = `{"Version":"2012-10-17","Statement":[{"Sid":"deny-delete","Effect":"Deny","Principal":"*","Action":["ecr:BatchDeleteImage"]}]}`
	keepHundred    = `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":100},"action":{"type":"expire"}}]}`
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// The values testdata/unversioned.json was made from (by the engine of
// its README), by kind and key.
var (
	wantSettings = map[string]Settings{
		"mutable/excl": {TagMutability: "MUTABLE_WITH_EXCLUSION", TagMutabilityExclusions: []TagFilter{{Pattern: "release-*", Type: "WILDCARD"}},
			Encryption: Encryption{Type: "AES256"}},
		"plain": {TagMutability: "MUTABLE", Encryption: Encryption{Type: "AES256"}},
		"prod/app": {TagMutability: "IMMUTABLE_WITH_EXCLUSION",
			TagMutabilityExclusions: []TagFilter{{Pattern: "latest", Type: "WILDCARD"}, {Pattern: "dev-*", Type: "WILDCARD"}},
			Encryption:              Encryption{Type: "KMS", KMSKey: "team-key"}, ScanOnPush: true,
			LifecyclePolicy: untaggedPolicy, RepositoryPolicy: denyDelete,
			ResourceTags: []ResourceTag{{Key: "team", Value: "payments"}, {Key: "env", Value: "prod"}}},
	}
	wantTemplates = map[string]Template{
		"ROOT": {Prefix: "ROOT", AppliedFor: []string{"CREATE_ON_PUSH"},
			CreatedAt: at("2026-12-02T05:31:45.743876069Z"), UpdatedAt: at("2026-12-02T05:31:45.743876069Z"),
			Settings: Settings{TagMutability: "MUTABLE", Encryption: Encryption{Type: "AES256"}}},
		"prod": {Prefix: "prod", Description: "production images", AppliedFor: []string{"CREATE_ON_PUSH", "PULL_THROUGH_CACHE"},
			CustomRoleARN: "arn:aws:iam::123456789012:role/ecr-templates",
			CreatedAt:     at("2026-12-02T05:31:45.744114356Z"), UpdatedAt: at("2026-12-02T05:31:45.744114356Z"),
			Settings: Settings{TagMutability: "IMMUTABLE", Encryption: Encryption{Type: "KMS", KMSKey: "team-key"}, ScanOnPush: true,
				LifecyclePolicy: keepHundred, ResourceTags: []ResourceTag{{Key: "env", Value: "prod"}}}},
	}
	wantRules = map[string]CacheRule{
		"ROOT": {Prefix: "ROOT", UpstreamURL: "http://127.0.0.1:5000", UpstreamPrefix: "ROOT",
			CreatedAt: at("2026-12-02T05:31:45.744592636Z"), UpdatedAt: at("2026-12-02T05:31:45.744592636Z")},
		"docker-hub": {Prefix: "docker-hub", UpstreamURL: "registry-1.docker.io", UpstreamPrefix: "library",
			CreatedAt: at("2026-12-02T05:31:45.744370604Z"), UpdatedAt: at("2026-12-02T05:31:45.744370604Z")},
	}
)

func readStored(t *testing.T, name string) []stored {
	b, err := os.ReadFile(name)
	require.NoError(t, err)
	var out []stored
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

// checkDecodes decodes every record of file and compares it with the
// values above; it returns how many of each kind it found.
func checkDecodes(t *testing.T, file string) map[string]int {
	n := map[string]int{}
	for _, r := range readStored(t, file) {
		n[r.Kind]++
		switch r.Kind {
		case "repository-settings":
			got, err := DecodeRepository([]byte(r.Value))
			require.NoError(t, err, r.Key)
			assert.Equal(t, Repository{Settings: wantSettings[r.Key]}, got, r.Key)
		case "repository":
			got, err := DecodeRepository([]byte(r.Value))
			require.NoError(t, err, r.Key)
			assert.Equal(t, wantRepositories[r.Key], got, r.Key)
		case "repository-v3":
			got, err := DecodeRepository([]byte(r.Value))
			require.NoError(t, err, r.Key)
			assert.Equal(t, wantRepositoriesV3[r.Key], got, r.Key)
		case "creation-template":
			got, err := DecodeTemplate([]byte(r.Value))
			require.NoError(t, err, r.Key)
			assert.Equal(t, wantTemplates[r.Key], got, r.Key)
		case "pull-through-cache-rule":
			got, err := DecodeCacheRule([]byte(r.Value))
			require.NoError(t, err, r.Key)
			assert.Equal(t, wantRules[r.Key], got, r.Key)
		default:
			t.Fatalf("unknown kind %q", r.Kind)
		}
	}
	return n
}

// TestDecodeUnversioned is the migration: the records the engine wrote
// before records had a version load, field for field.
func TestDecodeUnversioned(t *testing.T) {
	n := checkDecodes(t, "testdata/unversioned.json")
	assert.Equal(t, map[string]int{"repository-settings": 3, "creation-template": 2, "pull-through-cache-rule": 2}, n)
}

// TestVersion1Golden pins the stored form of version 1: encoding the
// values gives testdata/v1.json byte for byte, and it decodes to them.
func TestVersion1Golden(t *testing.T) {
	var recs []stored
	for _, k := range []string{"mutable/excl", "plain", "prod/app"} {
		b, err := encodeSettingsV1(wantSettings[k])
		require.NoError(t, err)
		recs = append(recs, stored{Kind: "repository-settings", Key: k, Value: string(b)})
	}
	for _, k := range []string{"ROOT", "prod"} {
		b, err := EncodeTemplate(wantTemplates[k])
		require.NoError(t, err)
		recs = append(recs, stored{Kind: "creation-template", Key: k, Value: string(b)})
	}
	for _, k := range []string{"ROOT", "docker-hub"} {
		b, err := encodeCacheRuleV1(wantRules[k])
		require.NoError(t, err)
		recs = append(recs, stored{Kind: "pull-through-cache-rule", Key: k, Value: string(b)})
	}
	got, err := json.MarshalIndent(recs, "", "  ")
	require.NoError(t, err)
	got = append(got, '\n')
	if *update {
		require.NoError(t, os.WriteFile("testdata/v1.json", got, 0o644))
	}
	want, err := os.ReadFile("testdata/v1.json")
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got), "the stored form of version 1 changed: that is a new version")
	checkDecodes(t, "testdata/v1.json")
}

// wantRepositories are the repository records of testdata/v2.json.
var wantRepositories = map[string]Repository{
	"plain":      {Settings: wantSettings["plain"]},
	"prod/app":   {Settings: wantSettings["prod/app"]},
	"hub/alpine": {Settings: Settings{TagMutability: "MUTABLE", Encryption: Encryption{Type: "AES256"}}, CacheRule: "hub"},
}

// TestVersion2Golden pins the stored form of version 2 of repository
// records: encoding the values gives testdata/v2.json byte for byte, and
// it decodes to them.
func TestVersion2Golden(t *testing.T) {
	var recs []stored
	for _, k := range []string{"hub/alpine", "plain", "prod/app"} {
		b, err := encodeRepositoryV2(wantRepositories[k])
		require.NoError(t, err)
		recs = append(recs, stored{Kind: "repository", Key: k, Value: string(b)})
	}
	got, err := json.MarshalIndent(recs, "", "  ")
	require.NoError(t, err)
	got = append(got, '\n')
	if *update {
		require.NoError(t, os.WriteFile("testdata/v2.json", got, 0o644))
	}
	want, err := os.ReadFile("testdata/v2.json")
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got), "the stored form of version 2 changed: that is a new version")
	assert.Equal(t, map[string]int{"repository": 3}, checkDecodes(t, "testdata/v2.json"))
}

// wantRepositoriesV3 are the repository records of testdata/v3.json.
var wantRepositoriesV3 = map[string]Repository{
	"plain": {Settings: wantSettings["plain"]},
	"prod/app": {Settings: wantSettings["prod/app"],
		LifecycleEvaluatedAt: time.Date(2025, 3, 4, 5, 6, 7, 8000000, time.UTC)},
	"hub/alpine": {Settings: Settings{TagMutability: "MUTABLE", Encryption: Encryption{Type: "AES256"}}, CacheRule: "hub"},
}

// TestVersion3Golden pins the stored form of version 3 of repository
// records: encoding the values gives testdata/v3.json byte for byte, and
// it decodes to them.
func TestVersion3Golden(t *testing.T) {
	var recs []stored
	for _, k := range []string{"hub/alpine", "plain", "prod/app"} {
		b, err := EncodeRepository(wantRepositoriesV3[k])
		require.NoError(t, err)
		recs = append(recs, stored{Kind: "repository-v3", Key: k, Value: string(b)})
	}
	golden(t, "testdata/v3.json", recs)
	assert.Equal(t, map[string]int{"repository-v3": 3}, checkDecodes(t, "testdata/v3.json"))
}

// wantRulesV2 are the pull-through cache rules of
// testdata/cacherules-v2.json: one with credentials and an upstream
// registry's name, one without (as a version 1 rule reads).
var wantRulesV2 = map[string]CacheRule{
	"docker-hub": {Prefix: "docker-hub", UpstreamURL: "registry-1.docker.io", UpstreamPrefix: "ROOT",
		CreatedAt: at("2026-12-02T05:31:45.744370604Z"), UpdatedAt: at("2026-12-03T06:00:00.5Z"),
		UpstreamRegistry: "docker-hub", CredentialARN: "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/docker-hub"},
	"local": {Prefix: "local", UpstreamURL: "http://127.0.0.1:5000", UpstreamPrefix: "ROOT",
		CreatedAt: at("2026-12-02T05:31:45.744592636Z"), UpdatedAt: at("2026-12-02T05:31:45.744592636Z")},
}

// TestCacheRuleVersion2Golden pins the stored form of version 2 of
// pull-through cache rules: encoding the values gives
// testdata/cacherules-v2.json byte for byte, and it decodes to them.
func TestCacheRuleVersion2Golden(t *testing.T) {
	var recs []stored
	for _, k := range []string{"docker-hub", "local"} {
		b, err := EncodeCacheRule(wantRulesV2[k])
		require.NoError(t, err)
		recs = append(recs, stored{Kind: "pull-through-cache-rule", Key: k, Value: string(b)})
	}
	golden(t, "testdata/cacherules-v2.json", recs)
	for _, r := range readStored(t, "testdata/cacherules-v2.json") {
		got, err := DecodeCacheRule([]byte(r.Value))
		require.NoError(t, err, r.Key)
		assert.Equal(t, wantRulesV2[r.Key], got, r.Key)
	}
	_, err := DecodeCacheRule([]byte(`{"version":1,"prefix":"hub","upstreamUrl":"quay.io","upstreamPrefix":"ROOT","createdAt":"2026-12-02T05:31:45Z","updatedAt":"2026-12-02T05:31:45Z","credentialArn":"x"}`))
	require.Error(t, err, "version 2's field in a version 1 rule")
}

// wantSecret is the secret of testdata/secrets-v1.json.
var wantSecret = Secret{Key: "berth-default", KeyVersion: 2, WrappedKey: []byte{1, 2, 3, 4}, Sealed: []byte("sealed bytes"),
	CreatedAt: at("2026-12-02T05:31:45.744370604Z"), UpdatedAt: at("2026-12-03T06:00:00.5Z")}

// TestSecretVersion1Golden pins the stored form of version 1 of sealed
// secrets.
func TestSecretVersion1Golden(t *testing.T) {
	b, err := EncodeSecret(wantSecret)
	require.NoError(t, err)
	golden(t, "testdata/secrets-v1.json", []stored{{Kind: "secret", Key: "ecr-pullthroughcache/docker-hub", Value: string(b)}})
	for _, r := range readStored(t, "testdata/secrets-v1.json") {
		got, err := DecodeSecret([]byte(r.Value))
		require.NoError(t, err)
		assert.Equal(t, wantSecret, got)
	}
	for _, bad := range []string{`{"key":"k"}`, `{"version":2,"key":"k"}`, `{"version":1,"key":"k","value":"x"}`, `{`} {
		_, err := DecodeSecret([]byte(bad))
		require.Error(t, err, bad)
	}
}

// golden compares recs, as a testdata file holds them, with file (and
// rewrites it with -update).
func golden(t *testing.T, file string, recs []stored) {
	t.Helper()
	got, err := json.MarshalIndent(recs, "", "  ")
	require.NoError(t, err)
	got = append(got, '\n')
	if *update {
		require.NoError(t, os.WriteFile(file, got, 0o644))
	}
	want, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got), "the stored form changed: that is a new version")
}

func TestRoundTrip(t *testing.T) {
	for k, s := range wantSettings {
		for _, rule := range []string{"", "hub", "ROOT"} {
			r := Repository{Settings: s, CacheRule: rule}
			b, err := EncodeRepository(r)
			require.NoError(t, err)
			got, err := DecodeRepository(b)
			require.NoError(t, err)
			assert.Equal(t, r, got, k)
		}
	}
	b, err := EncodeRepository(Repository{})
	require.NoError(t, err)
	assert.JSONEq(t, `{"version":3,"settings":{"encryption":{}}}`, string(b))
	got, err := DecodeRepository(b)
	require.NoError(t, err)
	assert.Equal(t, Repository{}, got)
	b, err = EncodeRepository(Repository{CacheRule: "hub"})
	require.NoError(t, err)
	assert.JSONEq(t, `{"version":3,"settings":{"encryption":{}},"cacheRule":"hub"}`, string(b))
}

func TestDecodeRefuses(t *testing.T) {
	tests := []struct {
		name, value string
		version     bool // the error is ErrVersion
	}{
		{"newer version", `{"version":4,"settings":{}}`, true},
		{"version zero written out", `{"version":0,"settings":{}}`, true},
		{"negative version", `{"version":-1}`, true},
		{"field version 1 does not have", `{"version":1,"settings":{"encryption":{}},"extra":1}`, false},
		{"version 2's field in a version 1 record", `{"version":1,"settings":{"encryption":{}},"cacheRule":"hub"}`, false},
		{"field version 2 does not have", `{"version":2,"settings":{"encryption":{}},"createdBy":"x"}`, false},
		{"version 3's field in a version 2 record", `{"version":2,"settings":{"encryption":{}},"lifecycleEvaluatedAt":"2025-01-01T00:00:00Z"}`, false},
		{"field version 3 does not have", `{"version":3,"settings":{"encryption":{}},"createdBy":"x"}`, false},
		{"nested field version 1 does not have", `{"version":1,"settings":{"encryption":{"cipher":"x"}}}`, false},
		{"data after the record", `{"version":1,"settings":{}} {}`, false},
		{"not JSON", `{"version":`, false},
		{"version not a number", `{"version":"1"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeRepository([]byte(tt.value))
			require.Error(t, err)
			if tt.version {
				require.ErrorIs(t, err, ErrVersion)
			}
			_, err = DecodeTemplate([]byte(tt.value))
			require.Error(t, err)
			_, err = DecodeCacheRule([]byte(tt.value))
			require.Error(t, err)
		})
	}
}
