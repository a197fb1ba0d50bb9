package ecrapi

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/berthstore/berth/engine"
)

// registry is the registry the API answers for: its ID (an account) and
// region, in ARNs and registryId fields.
type registry struct {
	account, region string
}

// registryIDPattern is the pattern of a registryId (an account ID).
var registryIDPattern = regexp.MustCompile(`^[0-9]{12}$`)

// checkID refuses a registry ID that is not this registry's.
func (g registry) checkID(id string) error {
	switch {
	case id == "" || id == g.account:
		return nil
	case !registryIDPattern.MatchString(id):
		return invalidParameter("registryId", mustMatch, "[0-9]{12}")
	}
	return invalidParameter("registryId", "the registry with id '%s' is not this registry ('%s'): Berth serves one registry", id, g.account)
}

// checkRepository validates the registry ID and the repository name of
// an input.
func (g registry) checkRepository(id, name string) error {
	if err := g.checkID(id); err != nil {
		return err
	}
	return checkRepositoryName(name)
}

// repositoryNamePattern is ECR's pattern of repository names, as its
// InvalidParameterException quotes it.
const repositoryNamePattern = "(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*"

// maxRepositoryName is ECR's longest repository name.
const maxRepositoryName = 256

// checkRepositoryName validates a repository name (the OCI grammar,
// which takes the names ECR's pattern takes and a few more).
func checkRepositoryName(name string) error {
	return checkRepositoryNameAt("repositoryName", name)
}

// checkRepositoryNameAt validates a repository name given as field.
func checkRepositoryNameAt(field, name string) error {
	if err := checkLength(field, len(name), 1, maxRepositoryName); err != nil {
		return err
	}
	if err := engine.ValidateRepositoryName(name); err != nil {
		return invalidParameter(field, "must satisfy regular expression '%s'", repositoryNamePattern)
	}
	return nil
}

// repositoryARN is a repository's ARN.
func (g registry) repositoryARN(name string) string {
	return fmt.Sprintf("arn:aws:ecr:%s:%s:repository/%s", g.region, g.account, name)
}

// repositoryFromARN returns the repository an ARN of this registry names.
func (g registry) repositoryFromARN(arn string) (string, error) {
	if arn == "" {
		return "", invalidParameter("resourceArn", mustNotBeNull)
	}
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || !strings.HasPrefix(parts[1], "aws") || parts[2] != "ecr" || !strings.HasPrefix(parts[5], "repository/") {
		return "", invalidParameter("resourceArn", "Invalid ARN")
	}
	if parts[3] != g.region || parts[4] != g.account {
		return "", invalidParameter("resourceArn", "the ARN '%s' is not of this registry (region %s, registry id '%s')", truncate(arn, 300), g.region, g.account)
	}
	name := strings.TrimPrefix(parts[5], "repository/")
	if err := checkRepositoryNameAt("resourceArn", name); err != nil {
		return "", err
	}
	return name, nil
}

// keyARN is the ARN of key-encryption key name, as policies name it.
func (g registry) keyARN(name string) string {
	return fmt.Sprintf("arn:aws:kms:%s:%s:key/%s", g.region, g.account, name)
}

// repositoryNotFound words err, an error of a call about repository
// name, as ECR does: a missing repository (RepositoryNotFoundException)
// and every other condition word knows.
func (g registry) repositoryNotFound(err error, name string) error {
	return g.word(err, subject{repository: name})
}
