package sbom

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/github/go-spdx/v2/spdxexp"
)

// spdxExpression returns the license a package database records as a
// valid SPDX license expression ("MIT", "GPL-2.0-only OR MIT", a single
// identifier in its canonical case) and true, or false when it is not
// one ("Apache 2.0", "GPLv2+", a LicenseRef of the package's own, which
// means nothing outside the package). Deprecated identifiers ("GPL-2.0")
// are valid: the SPDX license list keeps them.
func spdxExpression(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", false
	}
	norm, invalid := spdxexp.ValidateAndNormalizeLicensesWithOptions([]string{s}, spdxexp.ValidateLicensesOptions{
		FailAllLicenseRefs:  true,
		FailAllDocumentRefs: true,
	})
	if len(invalid) > 0 || len(norm) != 1 {
		return "", false
	}
	return norm[0], true
}

// licenseRefs names the licenses that are not SPDX expressions within
// one SPDX document: LicenseRef-TEXT, TEXT the license with every
// character outside [A-Za-z0-9.-] as "-", and a hash of the license
// appended when two licenses come to the same name.
type licenseRefs struct {
	byText map[string]string // license as recorded → LicenseRef
	used   map[string]bool
	order  []string // licenses, in the order they were named
}

func newLicenseRefs() *licenseRefs {
	return &licenseRefs{byText: map[string]string{}, used: map[string]bool{}}
}

// ref returns the LicenseRef of the license text.
func (l *licenseRefs) ref(text string) string {
	if r, ok := l.byText[text]; ok {
		return r
	}
	r := "LicenseRef-" + idText(text)
	if l.used[r] {
		sum := sha256.Sum256([]byte(text))
		r += "-" + hex.EncodeToString(sum[:4])
	}
	l.used[r] = true
	l.byText[text] = r
	l.order = append(l.order, text)
	return r
}

// idText maps s to the characters SPDX identifiers allow:
// [A-Za-z0-9.-], every other character (a run of them) as one "-".
func idText(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.'
		switch {
		case ok:
			b.WriteRune(r)
			dash = false
		case !dash:
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.Trim(b.String(), "-")
	if out == "" {
		return "unnamed"
	}
	return out
}
