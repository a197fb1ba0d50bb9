// Package sigv4 verifies AWS Signature Version 4 (AWS4-HMAC-SHA256) on
// HTTP requests, as the ECR API's clients (the aws CLI, the AWS SDKs) sign
// them: the canonical request, the credential scope
// <date>/<region>/<service>/aws4_request (region and service compared
// with the verifier's), the clock skew, the signed x-amz-* headers and the
// payload hash. Authenticate checks everything the headers tell before
// the body is read, so that a server reads no body of a caller it cannot
// authenticate; Pending.Verify finishes with the body. It is a leaf: it
// imports nothing of Berth, and it knows secrets only through a
// Credentials lookup.
package sigv4
