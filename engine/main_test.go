package engine

import (
	"fmt"
	"os"
	"testing"
)

// testChildren are the child processes of tests that kill a process of
// their own (the crash tests): a test starts this test binary again with
// the child's environment variable set, and TestMain runs the child in
// place of the tests, so that no test of the child's run reports a skip
// and a run of the tests never meets a child test that has nothing to do.
// The map's key is the environment variable; its value, when set, is the
// child's argument (its store directory). The function returns the exit
// code. Files that define children add them from init.
var testChildren = map[string]func(arg string) int{}

// TestMain dispatches a child process (see testChildren), or runs the
// tests on the backend BERTH_ENGINE_BACKEND names (backend_test.go).
func TestMain(m *testing.M) {
	for env, child := range testChildren {
		if arg := os.Getenv(env); arg != "" {
			os.Exit(child(arg))
		}
	}
	stop, err := startTestBackend()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	code := m.Run()
	stop()
	os.Exit(code)
}

// childFailed reports a child's error on stdout, where the parent reads it,
// and returns the exit code of a child that failed.
func childFailed(err error) int {
	fmt.Printf("error: %v\n", err)
	return 3
}
