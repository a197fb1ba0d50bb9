// Package request holds what registryd's protocol handlers (OCI, ECR,
// admin) and its authorization seam share about the request being
// served, without importing each other: the record the access log, the
// metrics and access decisions read (Info: request ID, the client's
// address through trusted proxies, TLS, user agent, the authenticated
// principal, route, repository, ECR operation), the request body that
// counts its bytes and keeps its first read error (Body), and the gate
// that lets shutdown wait for the requests holding an open upload
// (Uploads).
package request
