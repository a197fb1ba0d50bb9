package record

import (
	"encoding/json"
	"time"
)

// The versions of the replication records (docs/replication.md,
// docs/keys.md).
const (
	ReplicationConfigurationVersion = 1
	ReplicationJobVersion           = 1
	ReplicationStatusVersion        = 1
)

// ReplicationConfiguration is the registry's replication configuration
// (registry setting replicationConfiguration).
type ReplicationConfiguration struct {
	Rules     []ReplicationRule `json:"rules,omitempty"`
	UpdatedAt time.Time         `json:"updatedAt,omitzero"`
}

// ReplicationRule is one rule: where to, and which repositories.
type ReplicationRule struct {
	Destinations []ReplicationDestination `json:"destinations"`
	Filters      []ReplicationFilter      `json:"filters,omitempty"`
}

// ReplicationDestination names a registry: its region and registry ID.
type ReplicationDestination struct {
	Region     string `json:"region"`
	RegistryID string `json:"registryId"`
}

// ReplicationFilter selects repositories (type PREFIX_MATCH).
type ReplicationFilter struct {
	Filter string `json:"filter"`
	Type   string `json:"type"`
}

// ReplicationJob is a queued replication of one reference of a
// repository to one destination (key y).
type ReplicationJob struct {
	// Digest is the image the reference named when it was queued.
	Digest string `json:"digest"`
	// Seq numbers the job: a job put again (a later push of its tag)
	// has a higher one, so that finishing the older never removes it.
	Seq uint64 `json:"seq"`
	// QueuedAt is when the push that queued it was committed.
	QueuedAt time.Time `json:"queuedAt"`
	// Attempts counts the failed attempts; NextAttempt delays the next.
	Attempts    int       `json:"attempts,omitempty"`
	NextAttempt time.Time `json:"nextAttempt,omitzero"`
	LastError   string    `json:"lastError,omitempty"`
	// Failed is set once the job is given up: it stays, not run, until a
	// retry; FailureCode says why.
	Failed      bool   `json:"failed,omitempty"`
	FailureCode string `json:"failureCode,omitempty"`
}

// ReplicationStatus is an image's replication status at one destination
// (key Y).
type ReplicationStatus struct {
	// Status is IN_PROGRESS, COMPLETE or FAILED.
	Status string `json:"status"`
	// FailureCode and FailureReason say why a FAILED one failed.
	FailureCode   string    `json:"failureCode,omitempty"`
	FailureReason string    `json:"failureReason,omitempty"`
	UpdatedAt     time.Time `json:"updatedAt"`
}

type (
	replicationConfigurationV1 struct {
		Version int `json:"version"`
		ReplicationConfiguration
	}
	replicationJobV1 struct {
		Version int `json:"version"`
		ReplicationJob
	}
	replicationStatusV1 struct {
		Version int `json:"version"`
		ReplicationStatus
	}
)

// EncodeReplicationConfiguration returns the stored form of the
// replication configuration.
func EncodeReplicationConfiguration(c ReplicationConfiguration) ([]byte, error) {
	return json.Marshal(replicationConfigurationV1{ReplicationConfigurationVersion, c})
}

// DecodeReplicationConfiguration reads the replication configuration.
func DecodeReplicationConfiguration(b []byte) (ReplicationConfiguration, error) {
	var r replicationConfigurationV1
	err := decodeVersioned(b, "replication configuration", ReplicationConfigurationVersion, &r)
	return r.ReplicationConfiguration, err
}

// EncodeReplicationJob returns the stored form of a replication job.
func EncodeReplicationJob(j ReplicationJob) ([]byte, error) {
	return json.Marshal(replicationJobV1{ReplicationJobVersion, j})
}

// DecodeReplicationJob reads a replication job.
func DecodeReplicationJob(b []byte) (ReplicationJob, error) {
	var r replicationJobV1
	err := decodeVersioned(b, "replication job", ReplicationJobVersion, &r)
	return r.ReplicationJob, err
}

// EncodeReplicationStatus returns the stored form of a replication
// status.
func EncodeReplicationStatus(s ReplicationStatus) ([]byte, error) {
	return json.Marshal(replicationStatusV1{ReplicationStatusVersion, s})
}

// DecodeReplicationStatus reads a replication status.
func DecodeReplicationStatus(b []byte) (ReplicationStatus, error) {
	var r replicationStatusV1
	err := decodeVersioned(b, "replication status", ReplicationStatusVersion, &r)
	return r.ReplicationStatus, err
}
