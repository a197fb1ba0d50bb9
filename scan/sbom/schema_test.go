package sbom

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
)

// The official schemas, vendored in testdata/schema (README.md there
// names their sources), each loaded under its $id so that nothing is
// fetched.
var schemaFiles = map[string]string{
	"spdx-2.3.schema.json": "http://spdx.org/rdf/terms/2.3",
	"bom-1.5.schema.json":  "http://cyclonedx.org/schema/bom-1.5.schema.json",
	"bom-1.6.schema.json":  "http://cyclonedx.org/schema/bom-1.6.schema.json",
	"spdx.schema.json":     "http://cyclonedx.org/schema/spdx.schema.json",
	"jsf-0.82.schema.json": "http://cyclonedx.org/schema/jsf-0.82.schema.json",
}

var (
	schemasOnce sync.Once
	schemas     map[string]*jsonschema.Schema
	schemasErr  error
)

// schema returns the compiled schema with the given $id. Formats
// (date-time, uri, iri-reference, email...) are asserted, not only noted.
func schema(t *testing.T, id string) *jsonschema.Schema {
	t.Helper()
	schemasOnce.Do(func() {
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		for file, url := range schemaFiles {
			b, err := os.ReadFile(filepath.Join("testdata/schema", file))
			if err != nil {
				schemasErr = err
				return
			}
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
			if err != nil {
				schemasErr = err
				return
			}
			if err := c.AddResource(url, doc); err != nil {
				schemasErr = err
				return
			}
		}
		schemas = map[string]*jsonschema.Schema{}
		for _, url := range []string{schemaFiles["spdx-2.3.schema.json"], schemaFiles["bom-1.5.schema.json"], schemaFiles["bom-1.6.schema.json"]} {
			s, err := c.Compile(url)
			if err != nil {
				schemasErr = err
				return
			}
			schemas[url] = s
		}
	})
	require.NoError(t, schemasErr)
	s := schemas[id]
	require.NotNil(t, s, id)
	return s
}

// validate checks doc against the schema with the given $id.
func validate(t *testing.T, id string, doc []byte) {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	require.NoError(t, err)
	require.NoError(t, schema(t, id).Validate(inst))
}

// TestSchemasRefuse checks that the schemas, as loaded, refuse what they
// should: a validation that accepted anything would make the fixture
// tests pass for nothing.
func TestSchemasRefuse(t *testing.T) {
	for _, tc := range []struct{ id, doc string }{
		{schemaFiles["spdx-2.3.schema.json"], `{"spdxVersion":"SPDX-2.3"}`},
		{schemaFiles["spdx-2.3.schema.json"], `{"SPDXID":"SPDXRef-DOCUMENT","spdxVersion":"SPDX-2.3","dataLicense":"CC0-1.0","name":"x","documentNamespace":"https://x/y","creationInfo":{"created":"2026-01-01T00:00:00Z","creators":["Tool: x"]},"packages":[{"SPDXID":"SPDXRef-x","name":"x"}]}`},
		{schemaFiles["bom-1.5.schema.json"], `{"bomFormat":"CycloneDX","specVersion":"1.5","components":[{"type":"no-such-type","name":"x"}]}`},
		{schemaFiles["bom-1.6.schema.json"], `{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"type":"library","name":"x","licenses":[{"license":{"id":"not-an-spdx-id"}}]}]}`},
		{schemaFiles["bom-1.6.schema.json"], `{"bomFormat":"CycloneDX","specVersion":"1.6","serialNumber":"not-a-urn"}`},
	} {
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(tc.doc)))
		require.NoError(t, err)
		require.Error(t, schema(t, tc.id).Validate(inst), tc.doc)
	}
	// And they accept a minimal valid document of each.
	validate(t, schemaFiles["bom-1.6.schema.json"], []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"type":"library","name":"x","licenses":[{"license":{"id":"MIT"}}]}]}`))
}
