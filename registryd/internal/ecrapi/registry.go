package ecrapi

import (
	"fmt"
	"strings"

	"github.com/berthstore/berth/engine"
)

// registry is the registry the API answers for: its ID (an account) and
// region, in ARNs and registryId fields.
type registry struct {
	account, region string
}

// checkID refuses a registry ID that is not this registry's.
func (g registry) checkID(id string) error {
	if id != "" && id != g.account {
		return errorf(ecrInvalidParameter, "registryId %q is not this registry's (%s)", truncate(id, 20), g.account)
	}
	return nil
}

// checkRepository validates the registry ID and the repository name of
// an input.
func (g registry) checkRepository(id, name string) error {
	if err := g.checkID(id); err != nil {
		return err
	}
	return checkRepositoryName(name)
}

// checkRepositoryName validates a repository name.
func checkRepositoryName(name string) error {
	if name == "" {
		return errorf(ecrInvalidParameter, "repositoryName is required")
	}
	if err := engine.ValidateRepositoryName(name); err != nil {
		return errorf(ecrInvalidParameter, "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*'' (%q)", truncate(name, 300))
	}
	return nil
}

// repositoryARN is a repository's ARN.
func (g registry) repositoryARN(name string) string {
	return fmt.Sprintf("arn:aws:ecr:%s:%s:repository/%s", g.region, g.account, name)
}

// repositoryFromARN returns the repository an ARN of this registry names.
func (g registry) repositoryFromARN(arn string) (string, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || !strings.HasPrefix(parts[1], "aws") || parts[2] != "ecr" || !strings.HasPrefix(parts[5], "repository/") {
		return "", errorf(ecrInvalidParameter, "Invalid parameter at 'resourceArn': %q is not a repository ARN (arn:aws:ecr:<region>:<account>:repository/<name>)", truncate(arn, 300))
	}
	if parts[3] != g.region || parts[4] != g.account {
		return "", errorf(ecrInvalidParameter, "Invalid parameter at 'resourceArn': %q is not in this registry (%s, %s)", truncate(arn, 300), g.region, g.account)
	}
	name := strings.TrimPrefix(parts[5], "repository/")
	if err := engine.ValidateRepositoryName(name); err != nil {
		return "", errorf(ecrInvalidParameter, "Invalid parameter at 'resourceArn': repository name %q is invalid", truncate(name, 300))
	}
	return name, nil
}

// repositoryNotFound words a missing repository as ECR does.
func (g registry) repositoryNotFound(err error, name string) error {
	if toError(err).Type == ecrRepositoryNotFound {
		return errorf(ecrRepositoryNotFound, "The repository with name '%s' does not exist in the registry with id '%s'", name, g.account)
	}
	return err
}
