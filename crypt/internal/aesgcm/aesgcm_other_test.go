//go:build !amd64 || purego

package aesgcm

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// asmImpls are the assembly implementations of amd64 (see asmImpl), none
// of which exists in this build.
var asmImpls = []asmImpl{
	{name: ImplVAES, missing: "amd64 without the purego build tag"},
	{name: ImplVAESAVX2, missing: "amd64 without the purego build tag"},
}

// checkDetection has nothing to check in this build: it has no assembly,
// whatever the CPU.
func checkDetection(testing.TB) {}

func TestNoAsmInThisBuild(t *testing.T) {
	t.Setenv(EnvVar, "")
	c, err := Current()
	require.NoError(t, err)
	require.Equal(t, ImplStdlib, c.Impl)
	a, err := New(make([]byte, 32))
	require.NoError(t, err)
	std, err := newStdlib(make([]byte, 32))
	require.NoError(t, err)
	require.IsType(t, std, a)
}
