package index

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// Value encoding. Every value starts with a format-version byte (valueV1),
// followed by fields in a compact binary form:
//
//	uvarint   unsigned LEB128 (encoding/binary.AppendUvarint)
//	varint    zig-zag signed (encoding/binary.AppendVarint)
//	bytes     uvarint length, then the bytes
//	string    same as bytes
//	time      varint: 0 for the zero time.Time, else UnixNano (+1 when >= 0)
//	list      uvarint count, then the elements
//	map       uvarint count, then key/value strings sorted by key
//
// The parts that the key already holds (repository, digest, tag, id) are
// not repeated in the value. The manifest payload is stored last, so that
// ManifestMeta decodes the header without touching it.
const valueV1 byte = 1

// valueV2 is the format of manifest and blob records that carry archive
// tier fields (a manifest's status and archive times, a blob's tier),
// appended to version 1's fields (before a manifest's payload). Records
// whose archive fields are all zero are still written as version 1.
const valueV2 byte = 2

// encoder appends fields to a byte slice.
type encoder struct{ b []byte }

func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) bytes(p []byte)   { e.uvarint(uint64(len(p))); e.b = append(e.b, p...) }
func (e *encoder) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }

// time encodes t as 0 for the zero time and otherwise as UnixNano, plus one
// when it is not negative, so that the Unix epoch and the zero time stay
// distinct. Times beyond the UnixNano range (years before 1678 or after
// 2262) are clamped by time.Time.UnixNano.
func (e *encoder) time(t time.Time) {
	if t.IsZero() {
		e.varint(0)
		return
	}
	n := t.UnixNano()
	if n >= 0 && n < math.MaxInt64 {
		n++
	}
	e.varint(n)
}

func (e *encoder) digests(ds []digest.Digest) {
	e.uvarint(uint64(len(ds)))
	for _, d := range ds {
		e.str(string(d))
	}
}

func (e *encoder) strMap(m map[string]string) {
	e.uvarint(uint64(len(m)))
	for _, k := range sortedKeys(m) {
		e.str(k)
		e.str(m[k])
	}
}

// decoder reads fields; the first error sticks and later reads return zero
// values, so a decode function checks d.err once at its end.
type decoder struct {
	b   []byte
	err error
}

func newDecoder(what string, v []byte) *decoder {
	d, _ := newDecoderUpTo(what, v, valueV1)
	return d
}

// newDecoderUpTo is newDecoder for a record with formats 1 to newest; it
// also returns the value's format.
func newDecoderUpTo(what string, v []byte, newest byte) (*decoder, byte) {
	d := &decoder{b: v}
	if len(v) == 0 {
		d.err = fmt.Errorf("%s: empty value: %w", what, ErrCorrupt)
		return d, 0
	}
	if v[0] < valueV1 || v[0] > newest {
		d.err = fmt.Errorf("%s: unknown value format %d: %w", what, v[0], ErrCorrupt)
		return d, 0
	}
	d.b = v[1:]
	return d, v[0]
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("truncated or malformed %s: %w", what, ErrCorrupt)
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// raw returns the next length-prefixed field without copying it.
func (d *decoder) raw() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail("length")
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) bytes() []byte {
	p := d.raw()
	if p == nil {
		return nil
	}
	return append([]byte(nil), p...)
}

func (d *decoder) str() string { return string(d.raw()) }

func (d *decoder) time() time.Time {
	n := d.varint()
	if n == 0 || d.err != nil {
		return time.Time{}
	}
	if n > 0 {
		n--
	}
	return time.Unix(0, n).UTC()
}

// count reads a list length and checks it against the bytes left (every
// element takes at least one byte), so corrupt counts cannot allocate huge
// slices.
func (d *decoder) count() int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64(len(d.b)) {
		d.fail("count")
		return 0
	}
	return int(n)
}

func (d *decoder) digests() []digest.Digest {
	n := d.count()
	if n == 0 {
		return nil
	}
	ds := make([]digest.Digest, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		ds = append(ds, digest.Digest(d.str()))
	}
	return ds
}

func (d *decoder) strMap() map[string]string {
	n := d.count()
	if n == 0 {
		return nil
	}
	m := make(map[string]string, n)
	for i := 0; i < n && d.err == nil; i++ {
		k := d.str()
		m[k] = d.str()
	}
	return m
}

// end checks that the whole value was consumed.
func (d *decoder) end(what string) error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%s: %d trailing bytes: %w", what, len(d.b), ErrCorrupt)
	}
	if d.err != nil && what != "" {
		return fmt.Errorf("%s: %w", what, d.err)
	}
	return d.err
}

// --- tags ---

func encodeTag(d digest.Digest) []byte {
	b := make([]byte, 0, 1+len(d))
	b = append(b, valueV1)
	return append(b, d...)
}

func decodeTag(v []byte) (digest.Digest, error) {
	if len(v) < 2 || v[0] != valueV1 {
		return "", fmt.Errorf("tag value: %w", ErrCorrupt)
	}
	return digest.Digest(v[1:]), nil
}

// --- repositories ---

func encodeRepository(r *Repository) []byte {
	e := encoder{b: make([]byte, 0, 16+len(r.Settings))}
	e.b = append(e.b, valueV1)
	e.time(r.CreatedAt)
	e.bytes(r.Settings)
	return e.b
}

func decodeRepository(name string, v []byte) (*Repository, error) {
	d := newDecoder("repository value", v)
	r := &Repository{Name: name}
	r.CreatedAt = d.time()
	r.Settings = d.bytes()
	if err := d.end("repository value"); err != nil {
		return nil, err
	}
	return r, nil
}

// --- manifests ---

func encodeManifest(m *Manifest) []byte {
	n := 64 + len(m.MediaType) + len(m.ArtifactType) + len(m.Subject) + len(m.Payload) +
		80*(len(m.Blobs)+len(m.Children))
	e := encoder{b: make([]byte, 0, n)}
	archived := m.Status != StatusActive || !m.LastArchivedAt.IsZero() || !m.LastActivatedAt.IsZero()
	if archived {
		e.b = append(e.b, valueV2)
	} else {
		e.b = append(e.b, valueV1)
	}
	e.str(m.MediaType)
	e.str(m.ArtifactType)
	e.str(string(m.Subject))
	e.time(m.PushedAt)
	e.time(m.LastPulledAt)
	e.digests(m.Blobs)
	e.digests(m.Children)
	e.strMap(m.Annotations)
	if archived {
		e.uvarint(uint64(m.Status))
		e.time(m.LastArchivedAt)
		e.time(m.LastActivatedAt)
	}
	e.bytes(m.Payload)
	return e.b
}

// decodeManifest decodes a manifest value; the payload is copied only when
// withPayload is set.
func decodeManifest(repo string, dg digest.Digest, v []byte, withPayload bool) (*Manifest, error) {
	const what = "manifest value"
	d, format := newDecoderUpTo(what, v, valueV2)
	m := &Manifest{Repo: repo, Digest: dg}
	m.MediaType = d.str()
	m.ArtifactType = d.str()
	m.Subject = digest.Digest(d.str())
	m.PushedAt = d.time()
	m.LastPulledAt = d.time()
	m.Blobs = d.digests()
	m.Children = d.digests()
	m.Annotations = d.strMap()
	if format == valueV2 {
		st := d.uvarint()
		if st > uint64(StatusActivating) {
			d.fail("image status")
		}
		m.Status = ImageStatus(st)
		m.LastArchivedAt = d.time()
		m.LastActivatedAt = d.time()
	}
	raw := d.raw()
	m.PayloadSize = int64(len(raw))
	if withPayload && raw != nil {
		m.Payload = append([]byte(nil), raw...)
	}
	if err := d.end(what); err != nil {
		return nil, err
	}
	return m, nil
}

// --- blobs ---

func encodeBlob(bl *Blob) []byte {
	e := encoder{b: make([]byte, 0, 48+len(bl.FileID)+64*len(bl.Wraps))}
	if bl.Tier != TierHot {
		e.b = append(e.b, valueV2)
	} else {
		e.b = append(e.b, valueV1)
	}
	e.varint(bl.Size)
	e.varint(bl.StoredSize)
	e.time(bl.CreatedAt)
	e.uvarint(uint64(len(bl.Wraps)))
	for _, w := range bl.Wraps {
		e.str(w.KeyID)
		e.uvarint(uint64(w.Version))
		e.bytes(w.Wrapped)
	}
	e.bytes(bl.FileID)
	if bl.Tier != TierHot {
		e.uvarint(uint64(bl.Tier))
	}
	return e.b
}

func decodeBlob(dg digest.Digest, v []byte) (*Blob, error) {
	const what = "blob value"
	d, format := newDecoderUpTo(what, v, valueV2)
	bl := &Blob{Digest: dg}
	bl.Size = d.varint()
	bl.StoredSize = d.varint()
	bl.CreatedAt = d.time()
	if n := d.count(); n > 0 {
		bl.Wraps = make([]KeyWrap, 0, n)
		for i := 0; i < n && d.err == nil; i++ {
			var w KeyWrap
			w.KeyID = d.str()
			ver := d.uvarint()
			if ver > math.MaxUint32 {
				d.fail("key version")
			}
			w.Version = uint32(ver)
			w.Wrapped = d.bytes()
			bl.Wraps = append(bl.Wraps, w)
		}
	}
	bl.FileID = d.bytes()
	if format == valueV2 {
		t := d.uvarint()
		if t > uint64(TierArchive) {
			d.fail("tier")
		}
		bl.Tier = Tier(t)
	}
	if err := d.end(what); err != nil {
		return nil, err
	}
	return bl, nil
}

// --- links ---

func encodeLink(at time.Time) []byte {
	e := encoder{b: make([]byte, 0, 12)}
	e.b = append(e.b, valueV1)
	e.time(at)
	return e.b
}

func decodeLink(v []byte) (time.Time, error) {
	d := newDecoder("link", v)
	t := d.time()
	return t, d.end("link")
}

// --- referrers ---

func encodeReferrer(r *Referrer) []byte {
	e := encoder{b: make([]byte, 0, 32+len(r.MediaType)+len(r.ArtifactType))}
	e.b = append(e.b, valueV1)
	e.str(r.MediaType)
	e.str(r.ArtifactType)
	e.varint(r.Size)
	e.strMap(r.Annotations)
	return e.b
}

func decodeReferrer(subject, dg digest.Digest, v []byte) (Referrer, error) {
	const what = "referrer value"
	d := newDecoder(what, v)
	r := Referrer{Subject: subject, Digest: dg}
	r.MediaType = d.str()
	r.ArtifactType = d.str()
	r.Size = d.varint()
	r.Annotations = d.strMap()
	return r, d.end(what)
}

// --- uploads ---

func encodeUpload(u *Upload) []byte {
	e := encoder{b: make([]byte, 0, 32+len(u.Repo)+len(u.State))}
	e.b = append(e.b, valueV1)
	e.str(u.Repo)
	e.time(u.StartedAt)
	e.time(u.UpdatedAt)
	e.bytes(u.State)
	return e.b
}

func decodeUpload(id string, v []byte) (*Upload, error) {
	const what = "upload value"
	d := newDecoder(what, v)
	u := &Upload{ID: id}
	u.Repo = d.str()
	u.StartedAt = d.time()
	u.UpdatedAt = d.time()
	u.State = d.bytes()
	if err := d.end(what); err != nil {
		return nil, err
	}
	return u, nil
}

// --- tier jobs ---

func encodeTierJob(j *TierJob) []byte {
	e := encoder{b: make([]byte, 0, 16+80*len(j.Manifests))}
	e.b = append(e.b, valueV1)
	e.uvarint(uint64(j.Kind))
	e.digests(j.Manifests)
	e.time(j.CreatedAt)
	return e.b
}

func decodeTierJob(repo string, dg digest.Digest, v []byte) (*TierJob, error) {
	const what = "tier job value"
	d := newDecoder(what, v)
	j := &TierJob{Repo: repo, Digest: dg}
	k := d.uvarint()
	if k != uint64(JobArchive) && k != uint64(JobRestore) && d.err == nil {
		d.fail("job kind")
	}
	j.Kind = TierJobKind(k)
	j.Manifests = d.digests()
	j.CreatedAt = d.time()
	if err := d.end(what); err != nil {
		return nil, err
	}
	return j, nil
}

// --- templates and cache rules: opaque values ---

func encodeOpaque(v []byte) []byte {
	b := make([]byte, 0, 1+len(v))
	b = append(b, valueV1)
	return append(b, v...)
}

func decodeOpaque(kind byte, v []byte) ([]byte, error) {
	if len(v) < 1 || v[0] != valueV1 {
		return nil, fmt.Errorf("%s value: %w", opaqueKinds[kind], ErrCorrupt)
	}
	return append([]byte(nil), v[1:]...), nil
}

// sortedKeys returns the keys of m in order, so that encodings are
// deterministic.
func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}
