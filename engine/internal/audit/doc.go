// Package audit is Berth's audit log: every authorization decision for an
// authenticated request, allowed or denied, and every change made through
// Berth's APIs, kept on disk, bounded, queryable and exportable. It is a
// pure storage package: the engine owns a Log (in <data>/audit) and the
// authorization seam appends to it; it imports nothing of Berth.
//
// The nouns:
//
//   - A Record is one event: who (principal ARN, user, account, type,
//     source address, user agent), what (action, resource, repository),
//     the decision and the statement that made it, whether it changed
//     something, how it ended (error code and message), and through
//     which API.
//   - A line is a record on disk: one line of JSON in the shape of a
//     CloudTrail event (event.go), so that an export is the lines
//     themselves and `jq` and CloudTrail tooling read it.
//   - A segment is a file of lines, appended to and never rewritten
//     (segment.go). Its name carries its sequence number and the time of
//     its first record; times never go down within a segment. The writer
//     begins a new segment at Options.SegmentBytes, at each UTC midnight
//     and when the clock steps back.
//   - The Log is the directory of segments: Append (with group commit:
//     one write, and one fdatasync for the durable records, for every
//     append waiting), Records and Export (queries that read only the
//     segments whose time span meets theirs), Status (health), and
//     retention by age and by size (retention.go).
//
// The durability rule: Append returns when the record is written to the
// operating system, so that a crash of the process (SIGKILL) loses no
// acknowledged record; a durable Append (denials, changes) returns only
// after fdatasync, so that a crash of the machine loses none either. A
// failure to write fails the Append, and the caller refuses the request
// it was recording. docs/audit.md gives the format, the reasons and the
// measured costs.
package audit
