package regression

import "errors"

// Sentinel errors. Every error returned by this package wraps one of these with
// context; test for them with errors.Is.
var (
	// ErrNonFinite reports a NaN or ±Inf input. The receiver is left untouched.
	ErrNonFinite = errors.New("non-finite value")
	// ErrDimension reports an input whose length does not match the model.
	ErrDimension = errors.New("dimension mismatch")
	// ErrInvalidConfig reports an invalid configuration or parameter.
	ErrInvalidConfig = errors.New("invalid configuration")
	// ErrInvalidState reports a snapshot that cannot be restored.
	ErrInvalidState = errors.New("invalid state")
	// ErrNumerical reports an update rejected because it would have produced a
	// non-finite or indefinite result (for example features near 1e154 whose
	// squares overflow). The receiver is left untouched.
	ErrNumerical = errors.New("numerical failure")
	// ErrIllConditioned reports a batch problem that is rank deficient or too
	// ill-conditioned to solve in float64.
	ErrIllConditioned = errors.New("ill-conditioned problem")
	// ErrNotReady reports a quantity that needs more data than has been seen,
	// such as the noise variance before the first nFeatures+1 updates.
	ErrNotReady = errors.New("not enough data")
)
