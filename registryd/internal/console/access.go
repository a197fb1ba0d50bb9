package console

// Every page and action asks the one Authorizer, with the actions of the
// API that shows or does the same thing.

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/authz"
)

// pullAccess is what reading an image's bytes needs: its manifest and
// its blobs (the OCI API's pull).
func pullAccess(repo string) []authz.Access {
	return []authz.Access{
		{Action: authz.BatchGetImage, Resource: authz.Repository(repo)},
		{Action: authz.GetDownloadURLForLayer, Resource: authz.Repository(repo)},
	}
}

// one is a single question.
func one(action authz.Action, res authz.Resource) []authz.Access {
	return []authz.Access{{Action: action, Resource: res}}
}

// require asks every question of accesses and returns the refusal (an
// error wrapping engine.ErrAccessDenied, a 403) of the first one refused.
func (c *Console) require(r *http.Request, v *visit, accesses []authz.Access) error {
	return authz.All(r.Context(), c.az, v.who, accesses...)
}

// can reports whether every question of accesses is answered yes: what a
// page asks before it offers a button or a link to an action.
func (c *Console) can(r *http.Request, v *visit, accesses []authz.Access) bool {
	return c.require(r, v, accesses) == nil
}

// errBadRequest is the console's own refusal of a malformed request.
var errBadRequest = errors.New("console: bad request")

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadRequest, fmt.Sprintf(format, args...))
}

// statusOf maps an error to the page's status and the words it shows:
// never an internal error's text.
func statusOf(err error) (int, string) {
	switch {
	case errors.Is(err, engine.ErrAccessDenied):
		return http.StatusForbidden, "Access denied: your policies do not allow this."
	case errors.Is(err, engine.ErrAuditUnavailable), errors.Is(err, engine.ErrKeyUnavailable), errors.Is(err, engine.ErrClosed):
		return http.StatusServiceUnavailable, "The registry cannot answer now; try again in a moment."
	case errors.Is(err, engine.ErrNameUnknown):
		return http.StatusNotFound, "No such repository."
	case errors.Is(err, engine.ErrManifestUnknown):
		return http.StatusNotFound, "No such image."
	case errors.Is(err, fs.ErrNotExist):
		return http.StatusNotFound, "No such file in this image."
	case errors.Is(err, engine.ErrNotAnImage):
		return http.StatusBadRequest, "This manifest has no file system (an index or an artifact): open one of its images."
	case errors.Is(err, errBadRequest), errors.Is(err, engine.ErrNameInvalid), errors.Is(err, engine.ErrTagInvalid),
		errors.Is(err, engine.ErrDigestInvalid), errors.Is(err, engine.ErrInvalidArgument), errors.Is(err, fs.ErrInvalid):
		return http.StatusBadRequest, "Bad request: " + err.Error()
	case errors.Is(err, engine.ErrImageReferenced):
		return http.StatusConflict, "This image is listed by an index of the repository: delete the index first."
	case errors.Is(err, engine.ErrTagImmutable):
		return http.StatusConflict, err.Error()
	}
	return http.StatusInternalServerError, "Internal error."
}

// fail answers err as an error page.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, v *visit, err error) {
	status, msg := statusOf(err)
	if status == http.StatusInternalServerError {
		c.log.Error("console", "path", r.URL.Path, "err", err)
	}
	c.render(w, r, v, status, "error", "Error", errorData{Status: status, Message: msg})
}

// errorData is the error page's.
type errorData struct {
	Status  int
	Message string
}

// plainError answers an error page that needs no session.
func (c *Console) plainError(w http.ResponseWriter, status int, msg string) {
	c.renderPlain(w, status, "error", "Error", errorData{Status: status, Message: msg})
}
