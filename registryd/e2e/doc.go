// Package e2e holds registryd's end-to-end tests: a real engine store
// behind the real server on 127.0.0.1, driven by real clients
// (go-containerregistry, oras-go, skopeo, crane) and by raw HTTP for the
// ECR behaviours (create on push through templates, tag immutability).
// It has no non-test code.
package e2e
