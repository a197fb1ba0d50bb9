package engine

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestScanFilterMatches(t *testing.T) {
	for _, tt := range []struct {
		filter, repo string
		want         bool
	}{
		{"*", "a", true},
		{"*", "team/app", true},
		{"team/*", "team/app", true},
		{"team/*", "team", false},
		{"team*", "team", true},
		{"prod-*-api", "prod-eu-api", true},
		{"prod-*-api", "prod-eu-api2", false},
		{"*-api", "api", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "acb", false},
		{"exact", "exact", true},
		{"exact", "exactly", false},
	} {
		require.Equal(t, tt.want, ScanRepositoryFilter{Filter: tt.filter, FilterType: ScanFilterWildcard}.matches(tt.repo), "%s ~ %s", tt.filter, tt.repo)
	}
}

func TestScanningConfigurationValidate(t *testing.T) {
	f := []ScanRepositoryFilter{{Filter: "*", FilterType: ScanFilterWildcard}}
	for _, tt := range []struct {
		name string
		c    ScanningConfiguration
		ok   bool
	}{
		{"basic, no rules", ScanningConfiguration{ScanType: ScanTypeBasic}, true},
		{"basic on push", ScanningConfiguration{ScanType: ScanTypeBasic, Rules: []ScanningRule{{ScanFrequency: ScanFrequencyOnPush, RepositoryFilters: f}}}, true},
		{"basic continuous", ScanningConfiguration{ScanType: ScanTypeBasic, Rules: []ScanningRule{{ScanFrequency: ScanFrequencyContinuous, RepositoryFilters: f}}}, false},
		{"enhanced both", ScanningConfiguration{ScanType: ScanTypeEnhanced, Rules: []ScanningRule{
			{ScanFrequency: ScanFrequencyContinuous, RepositoryFilters: f}, {ScanFrequency: ScanFrequencyOnPush, RepositoryFilters: f}}}, true},
		{"three rules", ScanningConfiguration{ScanType: ScanTypeEnhanced, Rules: []ScanningRule{
			{ScanFrequency: ScanFrequencyContinuous, RepositoryFilters: f}, {ScanFrequency: ScanFrequencyOnPush, RepositoryFilters: f}, {ScanFrequency: ScanFrequencyManual, RepositoryFilters: f}}}, false},
		{"twice one frequency", ScanningConfiguration{ScanType: ScanTypeEnhanced, Rules: []ScanningRule{
			{ScanFrequency: ScanFrequencyOnPush, RepositoryFilters: f}, {ScanFrequency: ScanFrequencyOnPush, RepositoryFilters: f}}}, false},
		{"unknown type", ScanningConfiguration{ScanType: "DEEP"}, false},
		{"unknown frequency", ScanningConfiguration{ScanType: ScanTypeBasic, Rules: []ScanningRule{{ScanFrequency: "HOURLY", RepositoryFilters: f}}}, false},
		{"no filters", ScanningConfiguration{ScanType: ScanTypeBasic, Rules: []ScanningRule{{ScanFrequency: ScanFrequencyOnPush}}}, false},
		{"bad filter type", ScanningConfiguration{ScanType: ScanTypeBasic, Rules: []ScanningRule{{ScanFrequency: ScanFrequencyOnPush,
			RepositoryFilters: []ScanRepositoryFilter{{Filter: "a", FilterType: "REGEX"}}}}}, false},
		{"bad filter", ScanningConfiguration{ScanType: ScanTypeBasic, Rules: []ScanningRule{{ScanFrequency: ScanFrequencyOnPush,
			RepositoryFilters: []ScanRepositoryFilter{{Filter: "Upper Case", FilterType: ScanFilterWildcard}}}}}, false},
	} {
		err := tt.c.Validate()
		if tt.ok {
			require.NoError(t, err, tt.name)
		} else {
			require.ErrorIs(t, err, ErrInvalidArgument, tt.name)
		}
	}
}
