package auth

// The ECR API's access keys (SigV4): the credentials file.

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrECRCredentials reports an unusable ECR credentials file.
var ErrECRCredentials = errors.New("auth: bad ECR credentials file")

// ecrCredentials are the access keys the ECR API accepts: access key ID
// to its secret and the user it authenticates (for repository policies).
type ecrCredentials struct {
	keys map[string]ecrKey
}

// ecrKey is one access key's secret and user.
type ecrKey struct {
	secret, user string
}

// lookup is a sigv4.Credentials.
func (c *ecrCredentials) lookup(id string) (string, bool) {
	k, ok := c.keys[id]
	return k.secret, ok
}

// user is the user an access key authenticates.
func (c *ecrCredentials) user(id string) string { return c.keys[id].user }

// loadECRCredentials reads a credentials file: one
// ACCESS_KEY_ID:SECRET_ACCESS_KEY[:USER] a line (USER, the name
// repository policies know the key's holder by, defaults to the access
// key ID; AWS secrets never hold a colon); blank lines and lines starting
// with # are skipped.
func loadECRCredentials(path string) (*ecrCredentials, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrECRCredentials, err)
	}
	defer f.Close()
	c := &ecrCredentials{keys: map[string]ecrKey{}}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		fields := strings.Split(l, ":")
		if len(fields) < 2 || len(fields) > 3 || fields[0] == "" || fields[1] == "" || strings.ContainsAny(fields[0], " \t/") {
			return nil, fmt.Errorf("%w: %s:%d: want ACCESS_KEY_ID:SECRET_ACCESS_KEY or ACCESS_KEY_ID:SECRET_ACCESS_KEY:USER", ErrECRCredentials, path, line)
		}
		id, k := fields[0], ecrKey{secret: fields[1], user: fields[0]}
		if len(fields) == 3 {
			if !validUserName(fields[2]) {
				return nil, fmt.Errorf("%w: %s:%d: user %q: want 1 to 64 of A-Z a-z 0-9 + = , . @ _ -", ErrECRCredentials, path, line, fields[2])
			}
			k.user = fields[2]
		}
		if _, dup := c.keys[id]; dup {
			return nil, fmt.Errorf("%w: %s:%d: access key %q given twice", ErrECRCredentials, path, line, id)
		}
		c.keys[id] = k
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrECRCredentials, path, err)
	}
	if len(c.keys) == 0 {
		return nil, fmt.Errorf("%w: %s holds no access key", ErrECRCredentials, path)
	}
	return c, nil
}

// validUserName reports whether name is an IAM user name.
func validUserName(name string) bool { return validEntityName(name, 64) }
