package aesgcm

import (
	"crypto/cipher"
	"log/slog"
	"sync"
	"time"
)

// selector decides which implementation New uses (see Current) and runs
// the self-test of the assembly path once, the first time that path would
// be used.
type selector struct {
	// path is the assembly path this CPU and build run best (ImplVAES or
	// ImplVAESAVX2), or "" for none.
	path string
	// newAsm returns path's AEAD for a 32-byte key, using the assembly for
	// messages of at least threshold bytes: the self-test makes its AEADs
	// with 0, New with asmThreshold.
	newAsm func(key []byte, threshold int) (cipher.AEAD, error)
	// logger receives the one error a failed self-test logs; nil means
	// slog.Default().
	logger *slog.Logger

	once        sync.Once
	selfTestErr error         // nil if the self-test passed
	selfTestDur time.Duration // how long it took
}

// defaultSelector is the selector of New and Current.
var defaultSelector = &selector{
	path:   asmPath,
	newAsm: func(key []byte, threshold int) (cipher.AEAD, error) { return newAsmPath(asmPath, key, threshold) },
}

// new returns the AEAD New returns for key: the chosen assembly path's for
// a 32-byte key, else crypto/cipher's.
func (s *selector) new(key []byte) (cipher.AEAD, error) {
	c, err := s.choose()
	if err != nil {
		return nil, err
	}
	if c.Impl == ImplStdlib || len(key) != 32 {
		return newStdlib(key)
	}
	return s.newAsm(key, asmThreshold)
}

// choose returns the implementation to use now for 32-byte keys, in this
// order: an invalid BERTH_AESGCM is an error; FIPS 140-3 mode,
// BERTH_AESGCM=stdlib and ForceStdlib choose the standard library; so does
// a CPU or build without an assembly path; otherwise the assembly path, if
// its self-test (run now if it has not run) passed.
func (s *selector) choose() (Choice, error) {
	envStdlib, err := envSetting()
	if err != nil {
		return Choice{}, err
	}
	switch {
	case fipsEnabled():
		return Choice{ImplStdlib, "FIPS 140-3 mode: only the standard library's validated AES-GCM"}, nil
	case envStdlib:
		return Choice{ImplStdlib, EnvVar + "=stdlib"}, nil
	case forceStdlib.Load():
		return Choice{ImplStdlib, "forced by the program (crypt.UseStdlibAESGCM)"}, nil
	case s.path == "":
		return Choice{ImplStdlib, "no assembly path for this CPU or build"}, nil
	}
	s.once.Do(s.runSelfTest)
	if s.selfTestErr != nil {
		return Choice{ImplStdlib, "self-test of " + s.path + " failed: " + s.selfTestErr.Error()}, nil
	}
	return Choice{s.path, "CPU support and self-test passed"}, nil
}

// runSelfTest runs selfTest on the assembly path and, if it fails, logs
// that once: the process uses the standard library from then on.
func (s *selector) runSelfTest() {
	start := time.Now()
	s.selfTestErr = selfTest(func(key []byte) (cipher.AEAD, error) { return s.newAsm(key, 0) })
	s.selfTestDur = time.Since(start)
	if s.selfTestErr == nil {
		return
	}
	l := s.logger
	if l == nil {
		l = slog.Default()
	}
	l.Error("aesgcm: the assembly AES-GCM differs from crypto/cipher's; using crypto/cipher's for the life of the process",
		"path", s.path, "err", s.selfTestErr, "selftest", s.selfTestDur)
}
