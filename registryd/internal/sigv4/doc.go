// Package sigv4 verifies AWS Signature Version 4 (AWS4-HMAC-SHA256) on
// HTTP requests, as the ECR API's clients (the aws CLI, the AWS SDKs) sign
// them: the canonical request, the credential scope
// <date>/<region>/ecr/aws4_request, the clock skew, the signed x-amz-*
// headers and the payload hash. It is a leaf: it imports nothing of Berth,
// and it knows secrets only through a Credentials lookup.
package sigv4
