package policy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseRefusesWhatItCannotEnforce(t *testing.T) {
	tests := []struct {
		name, text string
	}{
		{"not JSON", `{`},
		{"no version", `{"Statement":[{"Effect":"Deny","Principal":"*","Action":"ecr:*"}]}`},
		{"no statements", `{"Version":"2012-10-17","Statement":[]}`},
		{"bad effect", `{"Version":"2012-10-17","Statement":{"Effect":"Maybe","Principal":"*","Action":"ecr:*"}}`},
		{"no principal", `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"ecr:*"}}`},
		{"string principal not star", `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"bob","Action":"ecr:*"}}`},
		{"unknown principal kind", `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":{"Mystery":"x"},"Action":"ecr:*"}}`},
		{"no action", `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*"}}`},
		{"action without service", `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"PutImage"}}`},
		{"condition", `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"ecr:*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}}`},
		{"not action", `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","NotAction":"ecr:*"}}`},
		{"not principal", `{"Version":"2012-10-17","Statement":{"Effect":"Deny","NotPrincipal":"*","Action":"ecr:*"}}`},
		{"unknown element", `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"ecr:*","Extra":1}}`},
		{"duplicate sid", `{"Version":"2012-10-17","Statement":[{"Sid":"a","Effect":"Deny","Principal":"*","Action":"ecr:*"},{"Sid":"a","Effect":"Allow","Principal":"*","Action":"ecr:*"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse(tt.text)
			require.ErrorIs(t, err, ErrInvalid)
			require.Nil(t, p)
		})
	}
}

func TestEvaluate(t *testing.T) {
	const account = "000000000000"
	alice := Principal{Account: account, User: "alice"}
	bob := Principal{Account: account, User: "bob"}
	anon := Principal{Account: account}
	p, err := Parse(`{"Version":"2008-10-17","Statement":[
		{"Sid":"everyone pulls","Effect":"Allow","Principal":"*","Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]},
		{"Sid":"bob never pushes","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":["ecr:PutImage","ecr:*LayerUpload","ecr:UploadLayerPart"]},
		{"Sid":"no one deletes","Effect":"Deny","Principal":{"AWS":["000000000000"]},"Action":"ecr:batchdelete*"},
		{"Sid":"a service","Effect":"Deny","Principal":{"Service":"codebuild.amazonaws.com"},"Action":"*"}
	]}`)
	require.NoError(t, err)
	require.Len(t, p.Statements, 4)
	tests := []struct {
		who    Principal
		action string
		want   Decision
	}{
		{alice, "ecr:BatchGetImage", Allowed},
		{anon, "ecr:BatchGetImage", Allowed},
		{alice, "ecr:PutImage", NoMatch},
		{bob, "ecr:PutImage", Denied},
		{bob, "ecr:InitiateLayerUpload", Denied},
		{bob, "ecr:CompleteLayerUpload", Denied},
		{bob, "ecr:BatchGetImage", Allowed},
		{alice, "ecr:BatchDeleteImage", Denied},
		{anon, "ecr:BatchDeleteImage", NoMatch /* an account principal names no anonymous caller */},
		{alice, "ecr:ListImages", NoMatch},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, p.Evaluate(tt.who, tt.action), "%s %s", tt.who.ARN(), tt.action)
	}
	var none *Policy
	assert.Equal(t, NoMatch, none.Evaluate(alice, "ecr:PutImage"))
	assert.Equal(t, "arn:aws:iam::000000000000:user/alice", alice.ARN())
	assert.Empty(t, anon.ARN())
}

func TestWildcardMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"ecr:*", "ecr:putimage", true},
		{"ecr:batch*", "ecr:batchgetimage", true},
		{"ecr:*layer*", "ecr:uploadlayerpart", true},
		{"ecr:get?", "ecr:getx", true},
		{"ecr:get?", "ecr:get", false},
		{"ecr:putimage", "ecr:putimagex", false},
		{"*image", "ecr:putimage", true},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYbZ", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, wildcardMatch(tt.pattern, tt.s), "%q %q", tt.pattern, tt.s)
	}
}

// FuzzParse: any text either parses into a policy that evaluates without
// panicking, or fails with ErrInvalid.
func FuzzParse(f *testing.F) {
	f.Add(`{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":{"AWS":["000000000000","arn:aws:iam::000000000000:user/bob"]},"Action":["ecr:*Image"]}}`)
	f.Add(`{"Version":"2008-10-17","Statement":[{"Sid":"x","Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}`)
	f.Add(`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"Service":["a","b"]},"Action":"ecr:Get?"}]}`)
	f.Fuzz(func(t *testing.T, text string) {
		p, err := Parse(text)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalid)
			return
		}
		for _, who := range []Principal{{Account: "000000000000", User: "bob"}, {Account: "000000000000"}} {
			p.Evaluate(who, "ecr:PutImage")
		}
	})
}
