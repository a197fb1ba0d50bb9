//go:build pkcs11 && cgo

package crypt

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/miekg/pkcs11"
)

// PKCS11Supported reports whether this build can talk to a PKCS#11
// module (it needs cgo and the pkcs11 build tag).
const PKCS11Supported = true

// Objects on the token, as Berth lays them out:
//
//   - every version of a KEK is an AES-256 secret key object generated
//     in the token (CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE true;
//     CKA_EXTRACTABLE false), CKA_LABEL the key's object name, CKA_ID the
//     version as 4 big-endian bytes. An AES key with another CKA_ID (made
//     by other tools) counts as version 1.
//   - a disabled key has CKA_ENCRYPT and CKA_DECRYPT false on every
//     version, so the token itself refuses to use it.
//   - a destroyed key is a data object (CKO_DATA) labelled with its name,
//     CKA_APPLICATION tombstoneApp; its versions are destroyed. The
//     tombstone is written first, so an interrupted destroy reads as
//     destroyed and completes when destroy is run again.
const tombstoneApp = "berth kek tombstone v1"

// markerApp is the CKA_APPLICATION of a data object Berth puts on its
// token at first use. A key lookup that finds nothing checks it: a
// token whose marker vanished was removed or replaced, which is an
// outage (ErrUnavailable), not a missing key.
const markerApp = "berth token v1"

const (
	gcmIVSize  = 12
	gcmTagBits = 128
)

// PKCS11Provider is a KeyProvider backed by a hardware security module
// through its PKCS#11 module: KEKs are generated inside the token and
// never leave it; wraps are AES-256-GCM computed by the token with a
// random 96-bit IV, the associated data binding key name, version and
// the caller's data (as the Keyring does). Names are RFC 7512 URIs
// (pkcs11:token=berth;object=team-a) on the configured token.
//
// When the token cannot be reached (session errors, token removed,
// device errors) calls fail with errors wrapping ErrUnavailable, and the
// next call after ReconnectInterval opens new sessions (re-initialising
// the module if needed) without a restart. It is safe for concurrent use.
type PKCS11Provider struct {
	cfg PKCS11Config
	mod *sharedModule

	mu        sync.RWMutex // write: connect, disconnect, close; read: operations
	connected bool
	closed    bool
	fatal     error // a login error: retrying could lock the token
	gen       uint64
	slot      uint
	login     pkcs11.SessionHandle // keeps the login alive; never used for operations
	pool      chan pkcs11.SessionHandle
	sem       chan struct{}
	lastTry   time.Time
	lastErr   error

	kmu   sync.Mutex
	kinfo map[string]*p11Key
}

var (
	_ KeyManager  = (*PKCS11Provider)(nil)
	_ KeyLookuper = (*PKCS11Provider)(nil)
	_ io.Closer   = (*PKCS11Provider)(nil)
)

// p11Key is what the provider knows of one key's objects.
type p11Key struct {
	versions map[uint32]pkcs11.ObjectHandle
	primary  uint32
	state    KeyState
	fetched  time.Time
	gen      uint64
}

// sharedModule is one loaded module, shared by the providers of a
// process: C_Initialize and C_Finalize are global to a module.
type sharedModule struct {
	path string
	ctx  *pkcs11.Ctx
	refs int
	init bool
}

var (
	modulesMu sync.Mutex
	modules   = map[string]*sharedModule{}
)

// OpenPKCS11 loads the module and logs in to the token. A token that
// cannot be reached now is not an error: calls fail with ErrUnavailable
// until it can. A wrong PIN is an error at once, and never retried (a
// token locks itself after a few wrong PINs).
func OpenPKCS11(cfg PKCS11Config) (*PKCS11Provider, error) {
	cfg.ensureDefaults()
	if cfg.Module == "" {
		return nil, fmt.Errorf("%w: pkcs11: no module path", ErrInvalidKey)
	}
	modulesMu.Lock()
	m := modules[cfg.Module]
	if m == nil {
		c := pkcs11.New(cfg.Module)
		if c == nil {
			modulesMu.Unlock()
			return nil, fmt.Errorf("%w: pkcs11: cannot load module %s", ErrInvalidKey, cfg.Module)
		}
		m = &sharedModule{path: cfg.Module, ctx: c}
		modules[cfg.Module] = m
	}
	m.refs++
	modulesMu.Unlock()
	p := &PKCS11Provider{cfg: cfg, mod: m, kinfo: map[string]*p11Key{}}
	p.mu.Lock()
	err := p.connectLocked()
	p.mu.Unlock()
	if err != nil && !errors.Is(err, ErrUnavailable) {
		p.Close()
		return nil, err
	}
	return p, nil
}

// Close logs out, closes the provider's sessions and, when no other
// provider of the process uses the module, finalizes and unloads it.
func (p *PKCS11Provider) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.disconnectLocked(false)
	p.closed = true
	modulesMu.Lock()
	defer modulesMu.Unlock()
	p.mod.refs--
	if p.mod.refs == 0 {
		if p.mod.init {
			p.mod.ctx.Finalize()
		}
		p.mod.ctx.Destroy()
		delete(modules, p.mod.path)
	}
	return nil
}

// errTokenGone: the token no longer holds Berth's marker object.
type errTokenGone struct{ token string }

func (e errTokenGone) Error() string {
	return fmt.Sprintf("token %q lost its objects (removed or replaced?)", e.token)
}

// errInjected marks a failure made by the FaultInjector.
type errInjected struct{ err error }

func (e errInjected) Error() string { return "injected fault: " + e.err.Error() }

// call runs one module call op, through the fault injector.
func (p *PKCS11Provider) call(op string, f func() error) error {
	if p.cfg.FaultInjector != nil {
		if err := p.cfg.FaultInjector(op); err != nil {
			return fmt.Errorf("pkcs11 %s: %w", op, errInjected{err})
		}
	}
	if err := f(); err != nil {
		return fmt.Errorf("pkcs11 %s: %w", op, err)
	}
	return nil
}

func ckr(err error) (uint, bool) {
	var e pkcs11.Error
	if errors.As(err, &e) {
		return uint(e), true
	}
	return 0, false
}

// unreachable reports whether err means the token cannot be used now
// (as opposed to a refusal about this key or this data).
func unreachable(err error) bool {
	if err == nil {
		return false
	}
	var inj errInjected
	var gone errTokenGone
	if errors.As(err, &inj) || errors.As(err, &gone) {
		return true
	}
	// Already judged: a refusal about this key or this wrap.
	for _, e := range []error{ErrUnauthenticated, ErrKeyNotFound, ErrKeyDisabled, ErrKeyDestroyed, ErrKeyExists, ErrInvalidKey} {
		if errors.Is(err, e) {
			return false
		}
	}
	code, ok := ckr(err)
	if !ok {
		return false
	}
	switch code {
	case pkcs11.CKR_DEVICE_ERROR, pkcs11.CKR_DEVICE_MEMORY, pkcs11.CKR_DEVICE_REMOVED,
		pkcs11.CKR_SESSION_CLOSED, pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_COUNT,
		pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_TOKEN_NOT_RECOGNIZED, pkcs11.CKR_USER_NOT_LOGGED_IN,
		pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED, pkcs11.CKR_GENERAL_ERROR, pkcs11.CKR_HOST_MEMORY,
		pkcs11.CKR_SLOT_ID_INVALID, pkcs11.CKR_FUNCTION_FAILED, pkcs11.CKR_OPERATION_ACTIVE:
		return true
	}
	return false
}

func staleHandle(err error) bool {
	code, ok := ckr(err)
	return ok && (code == pkcs11.CKR_KEY_HANDLE_INVALID || code == pkcs11.CKR_OBJECT_HANDLE_INVALID)
}

func pinError(err error) bool {
	code, ok := ckr(err)
	if !ok {
		return false
	}
	switch code {
	case pkcs11.CKR_PIN_INCORRECT, pkcs11.CKR_PIN_INVALID, pkcs11.CKR_PIN_LEN_RANGE,
		pkcs11.CKR_PIN_EXPIRED, pkcs11.CKR_PIN_LOCKED:
		return true
	}
	return false
}

// connectLocked initialises the module if needed, finds the token, opens
// the login session and logs in. Called with p.mu held for writing.
func (p *PKCS11Provider) connectLocked() error {
	c := p.mod.ctx
	modulesMu.Lock()
	if !p.mod.init {
		err := p.call("Initialize", func() error { return c.Initialize() })
		if code, _ := ckr(err); err != nil && code != pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED {
			modulesMu.Unlock()
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		p.mod.init = true
	}
	modulesMu.Unlock()
	slot, err := p.findSlot()
	if errors.Is(err, ErrUnavailable) {
		// A module that was initialised before the token came back
		// may list slots as they were: start it again if we are its
		// only user.
		modulesMu.Lock()
		if p.mod.refs == 1 {
			c.Finalize()
			err = p.call("Initialize", func() error { return c.Initialize() })
			if code, _ := ckr(err); err != nil && code != pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED {
				p.mod.init = false
				modulesMu.Unlock()
				return fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
			modulesMu.Unlock()
			slot, err = p.findSlot()
		} else {
			modulesMu.Unlock()
		}
	}
	if err != nil {
		return err
	}
	var s pkcs11.SessionHandle
	err = p.call("OpenSession", func() (err error) {
		s, err = c.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
		return err
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	err = p.call("Login", func() error { return c.Login(s, pkcs11.CKU_USER, p.cfg.PIN) })
	if code, _ := ckr(err); err != nil && code != pkcs11.CKR_USER_ALREADY_LOGGED_IN {
		c.CloseSession(s)
		if pinError(err) {
			p.fatal = fmt.Errorf("%w: token %q: login refused (%v); fix the PIN and restart", ErrInvalidKey, p.cfg.Token, err)
			return p.fatal
		}
		return fmt.Errorf("%w: token %q: %w", ErrUnavailable, p.cfg.Token, err)
	}
	if err := p.ensureMarker(s); err != nil {
		c.Logout(s)
		c.CloseSession(s)
		return fmt.Errorf("%w: token %q: %w", ErrUnavailable, p.cfg.Token, err)
	}
	p.slot, p.login = slot, s
	p.pool = make(chan pkcs11.SessionHandle, p.cfg.MaxSessions)
	p.sem = make(chan struct{}, p.cfg.MaxSessions)
	p.connected = true
	p.gen++
	return nil
}

func markerTemplate() []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA),
		pkcs11.NewAttribute(pkcs11.CKA_APPLICATION, markerApp),
	}
}

// ensureMarker puts Berth's marker object on the token if it has none.
func (p *PKCS11Provider) ensureMarker(s pkcs11.SessionHandle) error {
	hs, err := p.find(s, markerTemplate())
	if err != nil || len(hs) > 0 {
		return err
	}
	tmpl := append(markerTemplate(),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, "berth"),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, []byte("berth key-encryption keys live on this token")))
	return p.call("CreateObject", func() error {
		_, err := p.mod.ctx.CreateObject(s, tmpl)
		return err
	})
}

// checkToken tells a healthy token (nil) from one that is unreachable,
// removed or replaced (an error for which unreachable is true). Some
// modules (SoftHSM2 among them) answer a failed AES-GCM tag check with
// CKR_GENERAL_ERROR, so a failed decrypt is judged by this probe.
func (p *PKCS11Provider) checkToken(s pkcs11.SessionHandle) error {
	err := p.call("GetSessionInfo", func() error {
		_, err := p.mod.ctx.GetSessionInfo(s)
		return err
	})
	if err != nil {
		if !unreachable(err) {
			err = fmt.Errorf("%w: %w", errTokenGone{p.cfg.Token}, err)
		}
		return err
	}
	hs, err := p.find(s, markerTemplate())
	if err != nil {
		return err
	}
	if len(hs) == 0 {
		return errTokenGone{p.cfg.Token}
	}
	return nil
}

// findSlot finds the slot holding the configured token.
func (p *PKCS11Provider) findSlot() (uint, error) {
	c := p.mod.ctx
	var slots []uint
	err := p.call("GetSlotList", func() (err error) {
		slots, err = c.GetSlotList(true)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	for _, sl := range slots {
		var ti pkcs11.TokenInfo
		err := p.call("GetTokenInfo", func() (err error) {
			ti, err = c.GetTokenInfo(sl)
			return err
		})
		if err != nil {
			continue
		}
		if strings.TrimRight(ti.Label, " \x00") == p.cfg.Token {
			return sl, nil
		}
	}
	return 0, fmt.Errorf("%w: pkcs11: token %q not present", ErrUnavailable, p.cfg.Token)
}

// disconnectLocked closes every session and forgets the token; the next
// call reconnects (at once unless backoff is set).
func (p *PKCS11Provider) disconnectLocked(backoff bool) {
	if !p.connected {
		return
	}
	c := p.mod.ctx
	for {
		select {
		case s := <-p.pool:
			c.CloseSession(s)
			continue
		default:
		}
		break
	}
	c.Logout(p.login)
	c.CloseSession(p.login)
	p.connected = false
	p.gen++
	if !backoff {
		p.lastTry = time.Time{}
	}
	p.kmu.Lock()
	clear(p.kinfo)
	p.kmu.Unlock()
}

// acquire returns with p.mu held for reading and the token connected,
// or with an error and no lock held.
func (p *PKCS11Provider) acquire() (uint64, error) {
	for {
		p.mu.RLock()
		switch {
		case p.closed:
			p.mu.RUnlock()
			return 0, fmt.Errorf("%w: pkcs11 provider closed", ErrUnavailable)
		case p.fatal != nil:
			err := p.fatal
			p.mu.RUnlock()
			return 0, err
		case p.connected:
			return p.gen, nil
		}
		p.mu.RUnlock()
		p.mu.Lock()
		if !p.connected && !p.closed && p.fatal == nil {
			if !p.lastTry.IsZero() && p.cfg.Now().Sub(p.lastTry) < p.cfg.ReconnectInterval {
				err := p.lastErr
				p.mu.Unlock()
				return 0, err
			}
			if err := p.connectLocked(); err != nil {
				p.lastTry, p.lastErr = p.cfg.Now(), err
				p.mu.Unlock()
				return 0, err
			}
		}
		p.mu.Unlock()
	}
}

// fail disconnects after an unreachable-token error seen in generation gen.
func (p *PKCS11Provider) fail(gen uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gen == gen && p.connected {
		p.disconnectLocked(false)
	}
}

// do runs fn in a session of the connected token. An error meaning the
// token is unreachable disconnects and is returned wrapping ErrUnavailable.
func (p *PKCS11Provider) do(ctx context.Context, fn func(s pkcs11.SessionHandle, gen uint64) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	gen, err := p.acquire()
	if err != nil {
		return err
	}
	s, err := p.session(ctx)
	if err == nil {
		err = fn(s, gen)
		p.release(s, err == nil)
	}
	p.mu.RUnlock()
	if unreachable(err) {
		p.fail(gen)
		return fmt.Errorf("%w: token %q: %w", ErrUnavailable, p.cfg.Token, err)
	}
	return err
}

// session takes an idle session or opens one; at most MaxSessions are in use.
func (p *PKCS11Provider) session(ctx context.Context) (pkcs11.SessionHandle, error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	select {
	case s := <-p.pool:
		return s, nil
	default:
	}
	var s pkcs11.SessionHandle
	err := p.call("OpenSession", func() (err error) {
		s, err = p.mod.ctx.OpenSession(p.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
		return err
	})
	if err != nil {
		<-p.sem
		return 0, err
	}
	return s, nil
}

// release returns a session to the pool, or closes it after an error (a
// failed call may leave an operation active in it).
func (p *PKCS11Provider) release(s pkcs11.SessionHandle, ok bool) {
	if ok {
		p.pool <- s
	} else {
		p.mod.ctx.CloseSession(s)
	}
	<-p.sem
}

// parseName parses a key name and checks that it names this token.
func (p *PKCS11Provider) parseName(name string) (PKCS11URI, error) {
	u, err := ParsePKCS11URI(name)
	if err != nil {
		return u, err
	}
	if u.Token != p.cfg.Token {
		return u, fmt.Errorf("%w: %q: token %q is not the configured token %q", ErrKeyNotFound, name, u.Token, p.cfg.Token)
	}
	return u, nil
}

// find lists the objects matching tmpl.
func (p *PKCS11Provider) find(s pkcs11.SessionHandle, tmpl []*pkcs11.Attribute) ([]pkcs11.ObjectHandle, error) {
	c := p.mod.ctx
	if err := p.call("FindObjectsInit", func() error { return c.FindObjectsInit(s, tmpl) }); err != nil {
		return nil, err
	}
	var out []pkcs11.ObjectHandle
	for {
		var hs []pkcs11.ObjectHandle
		err := p.call("FindObjects", func() (err error) {
			hs, _, err = c.FindObjects(s, 64)
			return err
		})
		if err != nil {
			c.FindObjectsFinal(s)
			return nil, err
		}
		if len(hs) == 0 {
			break
		}
		out = append(out, hs...)
	}
	return out, p.call("FindObjectsFinal", func() error { return c.FindObjectsFinal(s) })
}

func aesKeyTemplate(object string) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, object),
	}
}

func tombstoneTemplate(object string) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA),
		pkcs11.NewAttribute(pkcs11.CKA_APPLICATION, tombstoneApp),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, object),
	}
}

func versionOf(id []byte) uint32 {
	if len(id) == 4 {
		if v := binary.BigEndian.Uint32(id); v != 0 {
			return v
		}
	}
	return 1
}

// key returns what the token holds for object (nil: nothing), from the
// cache unless refresh or the cached entry is old.
func (p *PKCS11Provider) key(s pkcs11.SessionHandle, gen uint64, object string, refresh bool) (*p11Key, error) {
	p.kmu.Lock()
	k := p.kinfo[object]
	p.kmu.Unlock()
	if k != nil && !refresh && k.gen == gen && p.cfg.Now().Sub(k.fetched) < p.cfg.KeyInfoTTL {
		return k, nil
	}
	hs, err := p.find(s, aesKeyTemplate(object))
	if err != nil {
		return nil, err
	}
	k = &p11Key{versions: map[uint32]pkcs11.ObjectHandle{}, state: KeyEnabled, fetched: p.cfg.Now(), gen: gen}
	for _, h := range hs {
		var attrs []*pkcs11.Attribute
		err := p.call("GetAttributeValue", func() (err error) {
			attrs, err = p.mod.ctx.GetAttributeValue(s, h, []*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_ID, nil),
				pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, nil),
			})
			return err
		})
		if err != nil {
			return nil, err
		}
		var id []byte
		decrypt := true
		for _, a := range attrs {
			switch a.Type {
			case pkcs11.CKA_ID:
				id = a.Value
			case pkcs11.CKA_DECRYPT:
				decrypt = len(a.Value) == 1 && a.Value[0] != 0
			}
		}
		v := versionOf(id)
		if _, dup := k.versions[v]; dup {
			continue
		}
		k.versions[v] = h
		k.primary = max(k.primary, v)
		if !decrypt {
			k.state = KeyDisabled
		}
	}
	ts, err := p.find(s, tombstoneTemplate(object))
	if err != nil {
		return nil, err
	}
	switch {
	case len(ts) > 0:
		k.state = KeyDestroyed
	case len(k.versions) == 0:
		if err := p.checkToken(s); err != nil {
			return nil, err
		}
		k = nil
	}
	p.kmu.Lock()
	if k == nil {
		delete(p.kinfo, object)
	} else {
		p.kinfo[object] = k
	}
	p.kmu.Unlock()
	return k, nil
}

func (p *PKCS11Provider) forget(object string) {
	p.kmu.Lock()
	delete(p.kinfo, object)
	p.kmu.Unlock()
}

func usable(name string, k *p11Key) error {
	switch {
	case k == nil:
		return fmt.Errorf("%w: %q", ErrKeyNotFound, name)
	case k.state == KeyDestroyed:
		return fmt.Errorf("%w: %q", ErrKeyDestroyed, name)
	case k.state == KeyDisabled:
		return fmt.Errorf("%w: %q", ErrKeyDisabled, name)
	}
	return nil
}

// Wrap seals dataKey in the token under the primary version of keyName.
func (p *PKCS11Provider) Wrap(ctx context.Context, keyName string, dataKey, ad []byte) (WrappedKey, error) {
	u, err := p.parseName(keyName)
	if err != nil {
		return WrappedKey{}, err
	}
	canon := u.String()
	var out WrappedKey
	err = p.do(ctx, func(s pkcs11.SessionHandle, gen uint64) error {
		for attempt := 0; ; attempt++ {
			k, err := p.key(s, gen, u.Object, attempt > 0)
			if err != nil {
				return err
			}
			if err := usable(keyName, k); err != nil {
				return err
			}
			ct, err := p.encrypt(s, k.versions[k.primary], dataKey, wrapAD(canon, k.primary, ad))
			if (staleHandle(err) || isCKR(err, pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED)) && attempt == 0 {
				continue
			}
			if err != nil {
				return p.refusal(keyName, err)
			}
			out = WrappedKey{KeyName: keyName, Version: k.primary, Ciphertext: ct}
			return nil
		}
	})
	return out, err
}

// Unwrap opens w in the token.
func (p *PKCS11Provider) Unwrap(ctx context.Context, w WrappedKey, ad []byte) ([]byte, error) {
	u, err := p.parseName(w.KeyName)
	if err != nil {
		return nil, err
	}
	if len(w.Ciphertext) < gcmIVSize+gcmTagBits/8 {
		return nil, fmt.Errorf("%w: wrap under %q too short", ErrUnauthenticated, w.KeyName)
	}
	canon := u.String()
	var dk []byte
	err = p.do(ctx, func(s pkcs11.SessionHandle, gen uint64) error {
		for attempt := 0; ; attempt++ {
			k, err := p.key(s, gen, u.Object, attempt > 0)
			if err != nil {
				return err
			}
			if err := usable(w.KeyName, k); err != nil {
				return err
			}
			h, ok := k.versions[w.Version]
			if !ok {
				if attempt == 0 {
					continue
				}
				return fmt.Errorf("%w: %q version %d", ErrKeyNotFound, w.KeyName, w.Version)
			}
			dk, err = p.decrypt(s, h, w.Ciphertext, wrapAD(canon, w.Version, ad))
			if (staleHandle(err) || isCKR(err, pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED)) && attempt == 0 {
				continue
			}
			if isCKR(err, pkcs11.CKR_GENERAL_ERROR) || isCKR(err, pkcs11.CKR_FUNCTION_FAILED) {
				if terr := p.checkToken(s); terr != nil {
					return terr
				}
				return fmt.Errorf("%w: wrap under %q v%d: %w", ErrUnauthenticated, w.KeyName, w.Version, err)
			}
			if err != nil {
				return p.refusal(w.KeyName, err)
			}
			return nil
		}
	})
	return dk, err
}

func isCKR(err error, code uint) bool {
	c, ok := ckr(err)
	return ok && c == code
}

// refusal turns the token's refusal to encrypt or decrypt into the
// package's errors.
func (p *PKCS11Provider) refusal(name string, err error) error {
	code, ok := ckr(err)
	switch {
	case !ok || unreachable(err):
		return err
	case code == pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED:
		return fmt.Errorf("%w: %q: %w", ErrKeyDisabled, name, err)
	case staleHandle(err):
		return fmt.Errorf("%w: %q: %w", ErrKeyNotFound, name, err)
	}
	// CKR_ENCRYPTED_DATA_INVALID, CKR_ENCRYPTED_DATA_LEN_RANGE,
	// CKR_AEAD_DECRYPT_FAILED and the like: the wrap does not open.
	return fmt.Errorf("%w: wrap under %q: %w", ErrUnauthenticated, name, err)
}

func (p *PKCS11Provider) encrypt(s pkcs11.SessionHandle, h pkcs11.ObjectHandle, plain, aad []byte) ([]byte, error) {
	iv := make([]byte, gcmIVSize)
	if _, err := io.ReadFull(rand.Reader, iv); err != nil {
		return nil, fmt.Errorf("crypt: reading IV: %w", err)
	}
	params := pkcs11.NewGCMParams(iv, aad, gcmTagBits)
	defer params.Free()
	c := p.mod.ctx
	mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}
	if err := p.call("EncryptInit", func() error { return c.EncryptInit(s, mech, h) }); err != nil {
		return nil, err
	}
	var ct []byte
	if err := p.call("Encrypt", func() (err error) { ct, err = c.Encrypt(s, plain); return err }); err != nil {
		return nil, err
	}
	// Some modules choose the IV themselves and write it back.
	if used := params.IV(); len(used) == gcmIVSize {
		iv = used
	}
	return append(iv, ct...), nil
}

func (p *PKCS11Provider) decrypt(s pkcs11.SessionHandle, h pkcs11.ObjectHandle, sealed, aad []byte) ([]byte, error) {
	params := pkcs11.NewGCMParams(sealed[:gcmIVSize], aad, gcmTagBits)
	defer params.Free()
	c := p.mod.ctx
	mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}
	if err := p.call("DecryptInit", func() error { return c.DecryptInit(s, mech, h) }); err != nil {
		return nil, err
	}
	var pt []byte
	if err := p.call("Decrypt", func() (err error) { pt, err = c.Decrypt(s, sealed[gcmIVSize:]); return err }); err != nil {
		return nil, err
	}
	if len(pt) != DataKeySize {
		return nil, fmt.Errorf("%w: unwrapped key of %d bytes", ErrUnauthenticated, len(pt))
	}
	return pt, nil
}

// generate makes version v of object inside the token.
func (p *PKCS11Provider) generate(s pkcs11.SessionHandle, object string, v uint32) error {
	id := binary.BigEndian.AppendUint32(nil, v)
	tmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, true),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, false),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, object),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
	}
	mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}
	return p.call("GenerateKey", func() error {
		_, err := p.mod.ctx.GenerateKey(s, mech, tmpl)
		return err
	})
}

// CreateKey generates version 1 of a new key inside the token.
func (p *PKCS11Provider) CreateKey(ctx context.Context, name string) error {
	u, err := p.parseName(name)
	if err != nil {
		return err
	}
	return p.do(ctx, func(s pkcs11.SessionHandle, gen uint64) error {
		k, err := p.key(s, gen, u.Object, true)
		if err != nil {
			return err
		}
		if k != nil {
			return fmt.Errorf("%w: %q (%s)", ErrKeyExists, name, k.state)
		}
		defer p.forget(u.Object)
		return p.generate(s, u.Object, 1)
	})
}

// RotateKey generates the next version of key name inside the token and
// makes it primary.
func (p *PKCS11Provider) RotateKey(ctx context.Context, name string) (uint32, error) {
	u, err := p.parseName(name)
	if err != nil {
		return 0, err
	}
	var v uint32
	err = p.do(ctx, func(s pkcs11.SessionHandle, gen uint64) error {
		k, err := p.key(s, gen, u.Object, true)
		if err != nil {
			return err
		}
		if err := usable(name, k); err != nil {
			return err
		}
		defer p.forget(u.Object)
		v = k.primary + 1
		return p.generate(s, u.Object, v)
	})
	return v, err
}

// SetKeyState disables or re-enables every version of key name (the
// token then refuses or allows encrypt and decrypt with it), or destroys
// them all: a tombstone object is written first, then every version is
// destroyed inside the token.
func (p *PKCS11Provider) SetKeyState(ctx context.Context, name string, state KeyState) error {
	u, err := p.parseName(name)
	if err != nil {
		return err
	}
	return p.do(ctx, func(s pkcs11.SessionHandle, gen uint64) error {
		k, err := p.key(s, gen, u.Object, true)
		if err != nil {
			return err
		}
		defer p.forget(u.Object)
		switch {
		case k == nil:
			return fmt.Errorf("%w: %q", ErrKeyNotFound, name)
		case k.state == KeyDestroyed && state == KeyDestroyed:
			return p.destroyVersions(s, k) // finish an interrupted destroy
		case k.state == KeyDestroyed:
			return fmt.Errorf("%w: %q", ErrKeyDestroyed, name)
		}
		c := p.mod.ctx
		switch state {
		case KeyEnabled, KeyDisabled:
			on := state == KeyEnabled
			for _, h := range k.versions {
				err := p.call("SetAttributeValue", func() error {
					return c.SetAttributeValue(s, h, []*pkcs11.Attribute{
						pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, on),
						pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, on),
					})
				})
				if err != nil {
					return err
				}
			}
			return nil
		case KeyDestroyed:
			tmpl := append(tombstoneTemplate(u.Object),
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
				pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
				pkcs11.NewAttribute(pkcs11.CKA_VALUE, []byte("destroyed "+p.cfg.Now().UTC().Format(time.RFC3339))))
			err := p.call("CreateObject", func() error {
				_, err := c.CreateObject(s, tmpl)
				return err
			})
			if err != nil {
				return err
			}
			return p.destroyVersions(s, k)
		}
		return fmt.Errorf("%w: unknown key state %q", ErrInvalidKey, state)
	})
}

func (p *PKCS11Provider) destroyVersions(s pkcs11.SessionHandle, k *p11Key) error {
	for _, h := range k.versions {
		err := p.call("DestroyObject", func() error { return p.mod.ctx.DestroyObject(s, h) })
		if err != nil && !staleHandle(err) {
			return err
		}
	}
	return nil
}

// LookupKey describes key name.
func (p *PKCS11Provider) LookupKey(ctx context.Context, name string) (KeyInfo, error) {
	u, err := p.parseName(name)
	if err != nil {
		return KeyInfo{}, err
	}
	var info KeyInfo
	err = p.do(ctx, func(s pkcs11.SessionHandle, gen uint64) error {
		k, err := p.key(s, gen, u.Object, false)
		if err != nil {
			return err
		}
		if k == nil {
			return fmt.Errorf("%w: %q", ErrKeyNotFound, name)
		}
		info = p.info(u.Object, k)
		return nil
	})
	return info, err
}

func (p *PKCS11Provider) info(object string, k *p11Key) KeyInfo {
	ki := KeyInfo{Name: PKCS11URI{Token: p.cfg.Token, Object: object}.String(), State: k.state}
	if k.state != KeyDestroyed {
		ki.PrimaryVersion, ki.Versions = k.primary, len(k.versions)
	}
	return ki
}

// Keys lists the AES keys and the destroyed keys of the token, by name.
func (p *PKCS11Provider) Keys(ctx context.Context) ([]KeyInfo, error) {
	var out []KeyInfo
	err := p.do(ctx, func(s pkcs11.SessionHandle, gen uint64) error {
		labels := map[string]bool{}
		for _, tmpl := range [][]*pkcs11.Attribute{
			{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES)},
			{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA), pkcs11.NewAttribute(pkcs11.CKA_APPLICATION, tombstoneApp)},
		} {
			hs, err := p.find(s, tmpl)
			if err != nil {
				return err
			}
			for _, h := range hs {
				var attrs []*pkcs11.Attribute
				err := p.call("GetAttributeValue", func() (err error) {
					attrs, err = p.mod.ctx.GetAttributeValue(s, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil)})
					return err
				})
				if err != nil {
					return err
				}
				if len(attrs) == 1 && len(attrs[0].Value) > 0 {
					labels[string(attrs[0].Value)] = true
				}
			}
		}
		for l := range labels {
			k, err := p.key(s, gen, l, true)
			if err != nil {
				return err
			}
			if k != nil {
				out = append(out, p.info(l, k))
			}
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}
