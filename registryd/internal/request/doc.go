// Package request holds what registryd's protocol handlers (OCI, ECR,
// admin) share about the request being served, without importing each
// other: the record the access log and the metrics read (Info), the
// request body that counts its bytes and keeps its first read error
// (Body), and the gate that lets shutdown wait for the requests holding
// an open upload (Uploads).
package request
