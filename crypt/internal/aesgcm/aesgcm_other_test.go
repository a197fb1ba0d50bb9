//go:build !amd64 || purego

package aesgcm

// asmImpls are the assembly implementations of amd64 (see asmImpl), none
// of which exists in this build.
var asmImpls = []asmImpl{
	{name: "vaes", missing: "amd64 without the purego build tag"},
	{name: "vaes-avx2", missing: "amd64 without the purego build tag"},
}
