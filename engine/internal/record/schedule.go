package record

// The records of the engine's own work: lifecycle policy previews and
// the state of its schedules (docs/keys.md, "Engine records").

import (
	"encoding/json"
	"fmt"
	"time"
)

// The versions the Encode functions of this file write.
const (
	// PreviewVersion is the version of a preview header; it also governs
	// the form of the preview's results, which carry no version of their
	// own (a preview is written whole, header and results in one batch).
	PreviewVersion = 1
	// ScheduleVersion is the version of a schedule's state.
	ScheduleVersion = 1
)

// Preview is the header of a repository's lifecycle policy preview.
type Preview struct {
	// Policy is the policy text previewed.
	Policy string `json:"policy"`
	// Status is IN_PROGRESS, COMPLETE or FAILED (EXPIRED is computed
	// when it is read, from FinishedAt).
	Status string `json:"status"`
	// StartedAt and FinishedAt bound the evaluation; FinishedAt is zero
	// while it runs.
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	// Expiring is the number of results (images the policy expires).
	Expiring int `json:"expiring"`
	// Error says why a FAILED preview failed.
	Error string `json:"error,omitempty"`
}

// PreviewResult is one image a preview lists (its digest is its key).
type PreviewResult struct {
	// Tags are the image's tags.
	Tags []string `json:"tags,omitempty"`
	// PushedAt and LastPulledAt are the image's times (LastPulledAt zero
	// if never pulled).
	PushedAt     time.Time `json:"pushedAt"`
	LastPulledAt time.Time `json:"lastPulledAt,omitzero"`
	// RulePriority and Description name the rule that selects the image.
	RulePriority int    `json:"rulePriority"`
	Description  string `json:"description,omitempty"`
	// Action is what the rule does to it (EXPIRE, TRANSITION), and
	// TargetStorageClass where a transition takes it.
	Action             string `json:"action"`
	TargetStorageClass string `json:"targetStorageClass,omitempty"`
}

// Schedule is the state of one of the engine's schedules (lifecycle, gc):
// when its next run is due and how its last one went, so that a restart
// neither postpones a run nor forgets one cut short.
type Schedule struct {
	// NextDue is when the next run is due.
	NextDue time.Time `json:"nextDue,omitzero"`
	// Running is set while a run is under way: found set by Open, it says
	// that the run was cut short (a crash), and the next start resumes it.
	Running bool `json:"running,omitempty"`
	// RunID names the last run started; StartedAt and FinishedAt bound
	// it (FinishedAt is the previous run's while one is under way).
	RunID      string    `json:"runId,omitempty"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	// Result is how the last finished run ended (ok, failed).
	Result string `json:"result,omitempty"`
	// Cursor is the last repository a lifecycle run under way has
	// finished ("" before the first): a resumed run goes on after it.
	Cursor string `json:"cursor,omitempty"`
}

type (
	previewV1 struct {
		Version int `json:"version"`
		Preview
	}
	scheduleV1 struct {
		Version int `json:"version"`
		Schedule
	}
)

// EncodePreview returns the stored form of a preview header.
func EncodePreview(p Preview) ([]byte, error) {
	return json.Marshal(previewV1{Version: PreviewVersion, Preview: p})
}

// DecodePreview reads a preview header and returns its version, which
// says how to read its results.
func DecodePreview(b []byte) (Preview, int, error) {
	v, err := version(b)
	if err != nil {
		return Preview{}, 0, err
	}
	if v != PreviewVersion {
		return Preview{}, 0, fmt.Errorf("%w: lifecycle preview of version %d (this build knows %d)", ErrVersion, v, PreviewVersion)
	}
	var r previewV1
	if err := decodeStrict(b, &r); err != nil {
		return Preview{}, 0, fmt.Errorf("record: lifecycle preview: %w", err)
	}
	return r.Preview, v, nil
}

// EncodePreviewResult returns the stored form of a preview result, in
// the form of PreviewVersion.
func EncodePreviewResult(r PreviewResult) ([]byte, error) { return json.Marshal(r) }

// DecodePreviewResult reads a preview result of a preview of version v.
func DecodePreviewResult(b []byte, v int) (PreviewResult, error) {
	if v != PreviewVersion {
		return PreviewResult{}, fmt.Errorf("%w: lifecycle preview result of version %d (this build knows %d)", ErrVersion, v, PreviewVersion)
	}
	var r PreviewResult
	if err := decodeStrict(b, &r); err != nil {
		return PreviewResult{}, fmt.Errorf("record: lifecycle preview result: %w", err)
	}
	return r, nil
}

// EncodeSchedule returns the stored form of a schedule's state.
func EncodeSchedule(s Schedule) ([]byte, error) {
	return json.Marshal(scheduleV1{Version: ScheduleVersion, Schedule: s})
}

// DecodeSchedule reads a schedule's state.
func DecodeSchedule(b []byte) (Schedule, error) {
	v, err := version(b)
	if err != nil {
		return Schedule{}, err
	}
	if v != ScheduleVersion {
		return Schedule{}, fmt.Errorf("%w: schedule of version %d (this build knows %d)", ErrVersion, v, ScheduleVersion)
	}
	var r scheduleV1
	if err := decodeStrict(b, &r); err != nil {
		return Schedule{}, fmt.Errorf("record: schedule: %w", err)
	}
	return r.Schedule, nil
}
