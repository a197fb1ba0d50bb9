package sbom

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSPDXExpression(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"MIT", "MIT", true},
		{"mit", "MIT", true},
		{"  Apache-2.0 ", "Apache-2.0", true},
		{"GPL-2.0-only OR MIT", "GPL-2.0-only OR MIT", true},
		{"(MIT OR Apache-2.0) AND BSD-3-Clause", "(MIT OR Apache-2.0) AND BSD-3-Clause", true},
		{"Apache-2.0 WITH LLVM-exception", "Apache-2.0 WITH LLVM-exception", true},
		{"GPL-2.0", "GPL-2.0", true}, // deprecated, still on the list
		{"Apache 2.0", "", false},
		{"GPLv2+", "", false},
		{"BSD", "", false},
		{"LicenseRef-Custom", "", false}, // the package's own reference means nothing here
		{"", "", false},
	} {
		got, ok := spdxExpression(tc.in)
		require.Equal(t, tc.ok, ok, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
}

func TestLicenseRefs(t *testing.T) {
	r := newLicenseRefs()
	require.Equal(t, "LicenseRef-Apache-2.0", r.ref("Apache 2.0"))
	require.Equal(t, "LicenseRef-Apache-2.0", r.ref("Apache 2.0"))
	require.Equal(t, "LicenseRef-GPLv2", r.ref("GPLv2+"))
	// Another text that comes to the same name gets a hash of its own.
	other := r.ref("GPLv2")
	require.Regexp(t, `^LicenseRef-GPLv2-[0-9a-f]{8}$`, other)
	require.Equal(t, "LicenseRef-unnamed", r.ref("+++"))
	require.Equal(t, []string{"Apache 2.0", "GPLv2+", "GPLv2", "+++"}, r.order)
}
