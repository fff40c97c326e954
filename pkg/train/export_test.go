package train

// Exports for the tests of package train_test (wire_test.go), which go through pkg/wire.

type (
	Obs     = obs
	FrameT  = frameT
	VectorT = vectorT
)

var (
	TinyNames        = tinyNames
	RestartFixture   = restartFixture
	TinyConfig       = tinyConfig
	MustLearner      = mustLearner
	MustApply        = mustApply
	SnapshotsEqual   = snapshotsEqual
	UpdatesEqual     = updatesEqual
	TestFrame        = frame
	NewRand          = newRand
	CheckSame        = checkSame
	ReferencePredict = referencePredict
	NewTrafficSeries = newTrafficSeries
)

const (
	TestIntersection = testIntersection
	TestApproach     = testApproach
)

// NewObs returns the target of a test window.
func NewObs(flow float64, missing, gap bool) obs { return obs{flow: flow, missing: missing, gap: gap} }

// Names returns the feature names of a traffic series.
func (s trafficSeries) Names() []string { return s.names }

// Frames returns the frames of a traffic series.
func (s trafficSeries) Frames() []frameT { return s.frames }
