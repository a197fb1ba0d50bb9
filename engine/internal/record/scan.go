package record

import (
	"encoding/json"
	"fmt"
	"time"
)

// The versions of the scanning records (docs/scanning.md, docs/keys.md).
const (
	ScanVersion                  = 1
	ScanJobVersion               = 1
	VulnDatabaseVersion          = 1
	ScanningConfigurationVersion = 1
)

// Scan is an image's scan record (key s).
type Scan struct {
	// Status is ECR's imageScanStatus.status: IN_PROGRESS, COMPLETE,
	// FAILED, UNSUPPORTED_IMAGE, SCAN_ELIGIBILITY_EXPIRED.
	Status string `json:"status"`
	// Description is the status's description.
	Description string `json:"description,omitempty"`
	// StartedAt is when the last scan was asked for.
	StartedAt time.Time `json:"startedAt,omitzero"`
	// CompletedAt is when the last scan or re-match completed.
	CompletedAt time.Time `json:"completedAt,omitzero"`
	// ManualAt is when the last manual scan was started.
	ManualAt time.Time `json:"manualAt,omitzero"`
	// Database is the vulnerability database version matched against.
	Database uint64 `json:"database,omitempty"`
	// DatabaseUpdatedAt is when that version was imported.
	DatabaseUpdatedAt time.Time `json:"databaseUpdatedAt,omitzero"`
	// Inventory is the image's software inventory (scan.Inventory's JSON),
	// kept so that a re-match reads no layer.
	Inventory json.RawMessage `json:"inventory,omitempty"`
	// Findings are the findings (scan.Finding's JSON list).
	Findings json.RawMessage `json:"findings,omitempty"`
	// Counts are the findings by severity.
	Counts map[string]int `json:"counts,omitempty"`
}

// ScanJob is a queued scan (key Q).
type ScanJob struct {
	// Kind is "scan" (inventory and match) or "rematch" (match the stored
	// inventory again).
	Kind string `json:"kind"`
	// QueuedAt is when the job was queued.
	QueuedAt time.Time `json:"queuedAt"`
	// NotBefore delays a retry.
	NotBefore time.Time `json:"notBefore,omitzero"`
	// Attempts counts the runs started.
	Attempts int `json:"attempts,omitempty"`
	// LastError is the error of the last failed run.
	LastError string `json:"lastError,omitempty"`
}

// VulnDatabase is the state of the vulnerability database (registry
// setting vulnDatabase): the version served, the one before it (for a
// rollback) and the next version number.
type VulnDatabase struct {
	Current  *VulnVersion `json:"current,omitempty"`
	Previous *VulnVersion `json:"previous,omitempty"`
	// Next is the number the next import writes its records under.
	Next uint64 `json:"next"`
}

// VulnVersion describes one imported version of the database.
type VulnVersion struct {
	Version    uint64    `json:"version"`
	ImportedAt time.Time `json:"importedAt"`
	Source     string    `json:"source"`
	// Digest identifies the content: the sha256 of the sorted ids and
	// modification times of the records.
	Digest     string         `json:"digest"`
	Records    int            `json:"records"`
	Withdrawn  int            `json:"withdrawn,omitempty"`
	Ecosystems map[string]int `json:"ecosystems,omitempty"`
}

// ScanningConfiguration is the registry's scanning configuration
// (registry setting scanningConfiguration).
type ScanningConfiguration struct {
	ScanType  string         `json:"scanType"`
	Rules     []ScanningRule `json:"rules,omitempty"`
	UpdatedAt time.Time      `json:"updatedAt,omitzero"`
}

// ScanningRule is one rule: a frequency and the repositories it covers.
type ScanningRule struct {
	Frequency string       `json:"frequency"`
	Filters   []ScanFilter `json:"filters"`
}

// ScanFilter is a repository filter of a rule.
type ScanFilter struct {
	Filter string `json:"filter"`
	Type   string `json:"type"`
}

type (
	scanV1 struct {
		Version int `json:"version"`
		Scan
	}
	scanJobV1 struct {
		Version int `json:"version"`
		ScanJob
	}
	vulnDatabaseV1 struct {
		Version int `json:"version"`
		VulnDatabase
	}
	scanningConfigurationV1 struct {
		Version int `json:"version"`
		ScanningConfiguration
	}
)

// EncodeScan returns the stored form of a scan record.
func EncodeScan(s Scan) ([]byte, error) { return json.Marshal(scanV1{ScanVersion, s}) }

// DecodeScan reads a scan record.
func DecodeScan(b []byte) (Scan, error) {
	var r scanV1
	err := decodeVersioned(b, "scan record", ScanVersion, &r)
	return r.Scan, err
}

// EncodeScanJob returns the stored form of a scan job.
func EncodeScanJob(j ScanJob) ([]byte, error) { return json.Marshal(scanJobV1{ScanJobVersion, j}) }

// DecodeScanJob reads a scan job.
func DecodeScanJob(b []byte) (ScanJob, error) {
	var r scanJobV1
	err := decodeVersioned(b, "scan job", ScanJobVersion, &r)
	return r.ScanJob, err
}

// EncodeVulnDatabase returns the stored form of the database's state.
func EncodeVulnDatabase(d VulnDatabase) ([]byte, error) {
	return json.Marshal(vulnDatabaseV1{VulnDatabaseVersion, d})
}

// DecodeVulnDatabase reads the database's state.
func DecodeVulnDatabase(b []byte) (VulnDatabase, error) {
	var r vulnDatabaseV1
	err := decodeVersioned(b, "vulnerability database state", VulnDatabaseVersion, &r)
	return r.VulnDatabase, err
}

// EncodeScanningConfiguration returns the stored form of the registry's
// scanning configuration.
func EncodeScanningConfiguration(c ScanningConfiguration) ([]byte, error) {
	return json.Marshal(scanningConfigurationV1{ScanningConfigurationVersion, c})
}

// DecodeScanningConfiguration reads the registry's scanning configuration.
func DecodeScanningConfiguration(b []byte) (ScanningConfiguration, error) {
	var r scanningConfigurationV1
	err := decodeVersioned(b, "scanning configuration", ScanningConfigurationVersion, &r)
	return r.ScanningConfiguration, err
}

// decodeVersioned decodes a record written with a version field since its
// first version (no version 0): strictly, at a version this build knows.
func decodeVersioned(b []byte, what string, known int, into any) error {
	v, err := version(b)
	if err != nil {
		return err
	}
	if v != known {
		return fmt.Errorf("%w: %s of version %d (this build knows %d)", ErrVersion, what, v, known)
	}
	if err := decodeStrict(b, into); err != nil {
		return fmt.Errorf("record: %s: %w", what, err)
	}
	return nil
}
