package engine

// The secret store: small values (the credentials a pull-through cache
// rule authenticates to its upstream registry with, ECR's credentialArn)
// kept in the index sealed as blobs are: each under a data key of its
// own, which is stored only wrapped by a key-encryption key (the
// registry's default key or a named one). Rotating that key rewraps the
// data keys (rewrap.go); destroying it shreds the secrets it alone
// wraps. A value leaves the engine only through SecretValue: never in
// a listing, an error or a log line. docs/security.md, "Secrets".

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/berthstore/berth/crypt"
	"github.com/berthstore/berth/engine/internal/errdefs"
	"github.com/berthstore/berth/engine/internal/iam"
	"github.com/berthstore/berth/engine/internal/record"
	"github.com/berthstore/berth/index"
)

// MaxSecretSize is the largest secret value, Secrets Manager's limit
// for a secret string (65,536 bytes).
const MaxSecretSize = 65536

// secretNamePattern is Secrets Manager's: 1 to 512 characters of
// letters, digits and /_+=.@-.
var secretNamePattern = regexp.MustCompile(`^[A-Za-z0-9/_+=.@-]{1,512}$`)

// ErrSecretNotFound: no stored secret has the name.
var ErrSecretNotFound = errors.New("engine: secret not found")

// ErrSecretInUse: a pull-through cache rule names the secret, so it
// cannot be deleted.
var ErrSecretInUse = errors.New("engine: secret in use")

// SecretInfo describes a stored secret; it never holds the value.
type SecretInfo struct {
	// Name is the secret's name (ecr-pullthroughcache/docker-hub).
	Name string `json:"name"`
	// ARN is arn:aws:secretsmanager:<region>:<account>:secret:<name>, what
	// a pull-through cache rule's credentialArn names.
	ARN string `json:"arn"`
	// Key is the key-encryption key that wraps the secret's data key.
	Key       string    `json:"key"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// SecretARN is the ARN of secret name,
// arn:aws:secretsmanager:<region>:<account>:secret:<name>.
func (e *Engine) SecretARN(name string) string {
	return iam.SecretARN(e.opts.Region, e.opts.Account, name)
}

// SecretNameFromARN returns the name of the stored secret arn names: the
// registry's own region and account, and a valid name (Berth's ARNs
// carry no random suffix: the name is what follows "secret:"). Errors
// wrap ErrInvalidArgument.
func (e *Engine) SecretNameFromARN(arn string) (string, error) {
	prefix := e.SecretARN("")
	name, ok := strings.CutPrefix(arn, prefix)
	if !ok {
		return "", fmt.Errorf("%w: %q is not the ARN of a secret of this registry (%s<name>)", ErrInvalidArgument, errdefs.Truncate(arn), prefix)
	}
	if err := ValidateSecretName(name); err != nil {
		return "", err
	}
	return name, nil
}

// ValidateSecretName checks a secret's name against Secrets Manager's
// rules; errors wrap ErrInvalidArgument.
func ValidateSecretName(name string) error {
	if !secretNamePattern.MatchString(name) {
		return fmt.Errorf("%w: secret name %q: want 1 to 512 letters, digits and /_+=.@-", ErrInvalidArgument, errdefs.Truncate(name))
	}
	return nil
}

// secretAD is the associated data of a secret's wrap and sealed value:
// its name, so that neither can be moved to another secret.
func secretAD(name string) []byte { return []byte("secret\x00" + name) }

// secretLock is the lock every change of secrets takes: the one of
// pull-through cache rules, so that a rule never comes to name a secret
// that a concurrent delete removes.
const secretLock = "cache-rule\x00"

// PutSecret stores value as secret name, creating it or replacing its
// value, sealed under a new data key wrapped by key (the registry's
// default key when ""). created reports a new secret. The value is at
// most MaxSecretSize bytes and never leaves the engine but through
// SecretValue.
func (e *Engine) PutSecret(ctx context.Context, name string, value []byte, key string) (info SecretInfo, created bool, err error) {
	if err := e.checkOpen(); err != nil {
		return info, false, err
	}
	if err := ValidateSecretName(name); err != nil {
		return info, false, err
	}
	if len(value) == 0 || len(value) > MaxSecretSize {
		return info, false, fmt.Errorf("%w: a secret value is 1 to %d bytes (got %d)", ErrInvalidArgument, MaxSecretSize, len(value))
	}
	if key == "" {
		key = crypt.DefaultKeyName
	}
	if err := e.checkSecretKey(ctx, key); err != nil {
		return info, false, err
	}
	dk, err := crypt.NewDataKey()
	if err != nil {
		return info, false, err
	}
	defer clear(dk)
	w, err := e.keys.Wrap(ctx, key, dk, secretAD(name))
	if err != nil {
		return info, false, keyErr(fmt.Errorf("secret %s: wrapping under %q: %w", name, key, err))
	}
	sealed, err := crypt.SealValue(dk, value, secretAD(name))
	if err != nil {
		return info, false, err
	}
	unlock := e.repoLocks.Lock(secretLock)
	defer unlock()
	now := e.now()
	rec := record.Secret{Key: w.KeyName, KeyVersion: w.Version, WrappedKey: w.Ciphertext, Sealed: sealed, CreatedAt: now, UpdatedAt: now}
	old, err := e.loadSecret(name)
	switch {
	case err == nil:
		rec.CreatedAt = old.CreatedAt
	case errors.Is(err, ErrSecretNotFound):
		created = true
	default:
		return info, false, err
	}
	if err := e.writeSecret(name, rec); err != nil {
		return info, false, err
	}
	return e.secretInfo(name, rec), created, nil
}

// checkSecretKey makes sure key exists and is usable to seal a secret
// (whether or not blobs are encrypted: a secret always is).
func (e *Engine) checkSecretKey(ctx context.Context, key string) error {
	k, err := crypt.LookupKey(ctx, e.keys, key)
	switch {
	case errors.Is(err, crypt.ErrKeyNotFound), errors.Is(err, crypt.ErrInvalidKey), errors.Is(err, crypt.ErrUnsupported):
		return fmt.Errorf("%w: encryption key %q: %w", ErrInvalidArgument, key, err)
	case err != nil:
		return keyErr(err)
	case k.State == crypt.KeyDestroyed:
		return fmt.Errorf("%w: key %q", ErrKeyDestroyed, key)
	case k.State != crypt.KeyEnabled:
		return fmt.Errorf("%w: key %q is %s", ErrKeyUnavailable, key, k.State)
	}
	return nil
}

// writeSecret commits rec as secret name (synced).
func (e *Engine) writeSecret(name string, rec record.Secret) error {
	v, err := record.EncodeSecret(rec)
	if err != nil {
		return err
	}
	b := e.db.NewBatch()
	defer b.Close()
	if err := b.PutSecret(name, v); err != nil {
		return storageErr(err)
	}
	return storageErr(b.Commit(true))
}

// loadSecret reads the record of secret name.
func (e *Engine) loadSecret(name string) (record.Secret, error) {
	v, err := e.db.Secret(name)
	if errors.Is(err, index.ErrNotFound) || errors.Is(err, index.ErrInvalidKey) {
		return record.Secret{}, fmt.Errorf("%w: %s", ErrSecretNotFound, errdefs.Truncate(name))
	}
	if err != nil {
		return record.Secret{}, storageErr(err)
	}
	rec, err := record.DecodeSecret(v)
	if err != nil {
		return record.Secret{}, fmt.Errorf("%w: secret %s: %v", ErrCorrupt, name, err)
	}
	return rec, nil
}

func (e *Engine) secretInfo(name string, rec record.Secret) SecretInfo {
	return SecretInfo{Name: name, ARN: e.SecretARN(name), Key: rec.Key, CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt}
}

// Secret describes secret name (not its value), or fails with
// ErrSecretNotFound.
func (e *Engine) Secret(ctx context.Context, name string) (SecretInfo, error) {
	if err := e.checkOpen(); err != nil {
		return SecretInfo{}, err
	}
	rec, err := e.loadSecret(name)
	if err != nil {
		return SecretInfo{}, err
	}
	return e.secretInfo(name, rec), nil
}

// Secrets lists the stored secrets in name order, without their values.
func (e *Engine) Secrets(ctx context.Context) ([]SecretInfo, error) {
	if err := e.checkOpen(); err != nil {
		return nil, err
	}
	out := []SecretInfo{}
	err := e.db.ListSecrets(func(name string, v []byte) error {
		rec, err := record.DecodeSecret(v)
		if err != nil {
			return fmt.Errorf("%w: secret %s: %v", ErrCorrupt, name, err)
		}
		out = append(out, e.secretInfo(name, rec))
		return nil
	})
	return out, storageErr(err)
}

// SecretValue opens secret name and returns its value: through its
// wrap, so a disabled key fails with ErrKeyUnavailable and a destroyed
// one with ErrKeyDestroyed. The caller must not log or return it.
func (e *Engine) SecretValue(ctx context.Context, name string) ([]byte, error) {
	if err := e.checkOpen(); err != nil {
		return nil, err
	}
	rec, err := e.loadSecret(name)
	if err != nil {
		return nil, err
	}
	dk, err := e.keys.Unwrap(ctx, crypt.WrappedKey{KeyName: rec.Key, Version: rec.KeyVersion, Ciphertext: rec.WrappedKey}, secretAD(name))
	if err != nil {
		return nil, keyErr(fmt.Errorf("secret %s: %w", name, err))
	}
	defer clear(dk)
	v, err := crypt.OpenValue(dk, rec.Sealed, secretAD(name))
	if err != nil {
		return nil, keyErr(fmt.Errorf("secret %s: %w", name, err))
	}
	return v, nil
}

// DeleteSecret removes secret name, or fails with ErrSecretNotFound, or
// with ErrSecretInUse while a pull-through cache rule names it (update
// or delete the rule first).
func (e *Engine) DeleteSecret(ctx context.Context, name string) error {
	if err := e.checkOpen(); err != nil {
		return err
	}
	unlock := e.repoLocks.Lock(secretLock)
	defer unlock()
	if _, err := e.loadSecret(name); err != nil {
		return err
	}
	rules, err := e.cachedRules()
	if err != nil {
		return err
	}
	arn := e.SecretARN(name)
	var users []string
	for _, r := range rules {
		if r.CredentialARN == arn {
			users = append(users, r.ECRRepositoryPrefix)
		}
	}
	if len(users) > 0 {
		return fmt.Errorf("%w: %s is the credentialArn of the pull-through cache rules of prefixes %s: update or delete them first", ErrSecretInUse, name, strings.Join(users, ", "))
	}
	return e.removeSecret(name)
}

func (e *Engine) removeSecret(name string) error {
	b := e.db.NewBatch()
	defer b.Close()
	if err := b.DeleteSecret(name); err != nil {
		return storageErr(err)
	}
	return storageErr(b.Commit(true))
}

// rewrapSecrets moves every secret's wrap under an older version of key
// canon to version v (after a rotation), as RewrapKey does for blobs;
// it returns how many it moved and how many did not open.
func (e *Engine) rewrapSecrets(ctx context.Context, canon string, v uint32) (moved, failed int, err error) {
	var stale []string
	err = e.db.ListSecrets(func(name string, val []byte) error {
		rec, err := record.DecodeSecret(val)
		if err != nil {
			failed++
			return nil
		}
		if rec.KeyVersion < v && crypt.CanonicalKeyName(rec.Key) == canon {
			stale = append(stale, name)
		}
		return nil
	})
	if err != nil {
		return 0, failed, storageErr(err)
	}
	if len(stale) == 0 {
		return 0, failed, nil
	}
	unlock := e.repoLocks.Lock(secretLock)
	defer unlock()
	for _, name := range stale {
		rec, err := e.loadSecret(name)
		if errors.Is(err, ErrSecretNotFound) {
			continue
		}
		if err != nil {
			return moved, failed, err
		}
		if rec.KeyVersion >= v || crypt.CanonicalKeyName(rec.Key) != canon {
			continue
		}
		old := crypt.WrappedKey{KeyName: rec.Key, Version: rec.KeyVersion, Ciphertext: rec.WrappedKey}
		dk, err := e.keys.Unwrap(ctx, old, secretAD(name))
		if err == nil {
			var nw crypt.WrappedKey
			nw, err = e.keys.Wrap(ctx, rec.Key, dk, secretAD(name))
			clear(dk)
			if err == nil {
				rec.KeyVersion, rec.WrappedKey = nw.Version, nw.Ciphertext
				if err := e.writeSecret(name, rec); err != nil {
					return moved, failed, err
				}
				moved++
				continue
			}
		}
		if errors.Is(err, crypt.ErrUnavailable) || errors.Is(err, crypt.ErrKeyDisabled) || ctx.Err() != nil {
			return moved, failed, keyErr(err)
		}
		e.log.Warn("key rewrap: the wrap of a secret does not open; left as it is", "secret", name, "key", rec.Key, "version", rec.KeyVersion, "err", err)
		failed++
	}
	return moved, failed, nil
}

// sweepShreddedSecrets removes the secrets whose key is destroyed: their
// values can never be read again. It returns their names.
func (e *Engine) sweepShreddedSecrets(ctx context.Context) ([]string, error) {
	destroyed, err := e.destroyedKeys(ctx)
	if err != nil || len(destroyed) == 0 {
		return nil, err
	}
	unlock := e.repoLocks.Lock(secretLock)
	defer unlock()
	var gone []string
	err = e.db.ListSecrets(func(name string, v []byte) error {
		rec, err := record.DecodeSecret(v)
		if err == nil && destroyed[crypt.CanonicalKeyName(rec.Key)] {
			gone = append(gone, name)
		}
		return nil
	})
	if err != nil {
		return nil, storageErr(err)
	}
	for i, name := range gone {
		if err := e.removeSecret(name); err != nil {
			return gone[:i], err
		}
	}
	return gone, nil
}

// secretKeyCounts counts, by canonical key name, the secrets each key
// wraps and how many of those wraps are older than version (the key's
// primary version, from primary).
func (e *Engine) secretKeyCounts(primary func(canon string) uint32) (count, stale map[string]int, err error) {
	count, stale = map[string]int{}, map[string]int{}
	err = e.db.ListSecrets(func(_ string, v []byte) error {
		rec, err := record.DecodeSecret(v)
		if err != nil {
			return nil // fsck's to report; a listing of keys goes on
		}
		c := crypt.CanonicalKeyName(rec.Key)
		count[c]++
		if rec.KeyVersion < primary(c) {
			stale[c]++
		}
		return nil
	})
	return count, stale, storageErr(err)
}
