package traci

// TraCI constants used by this package, named and numbered as in SUMO's tools/traci/constants.py (API 20, SUMO
// 1.15). Only what the package sends or reads is listed.
const (
	cmdGetVersion = 0x00
	cmdSimStep    = 0x02
	cmdClose      = 0x7f

	cmdGetInductionLoop = 0xa0
	cmdGetTrafficLight  = 0xa2
	cmdGetSimulation    = 0xab
	cmdGetLaneArea      = 0xad
	cmdSetTrafficLight  = 0xc2

	// responseOffset is added to a get command's id to form the id of its answer.
	responseOffset = 0x10

	typeInteger    = 0x09
	typeDouble     = 0x0b
	typeString     = 0x0c
	typeStringList = 0x0e
	typeCompound   = 0x0f

	statusOK = 0x00

	varIDList                = 0x00
	varLastStepVehicleNumber = 0x10
	varLastStepMeanSpeed     = 0x11
	varLastStepOccupancy     = 0x13
	varTime                  = 0x66
	varDepartedNumber        = 0x73
	varArrivedNumber         = 0x79
	varDeltaT                = 0x7b
	varMinExpectedNumber     = 0x7d

	tlRedYellowGreenState = 0x20
	tlPhaseIndex          = 0x22
	tlProgram             = 0x23
	tlPhaseDuration       = 0x24
	tlControlledLanes     = 0x26
	tlControlledLinks     = 0x27
	tlCurrentPhase        = 0x28
	tlCurrentProgram      = 0x29
	tlCompleteDefinition  = 0x2b
	tlCompleteProgram     = 0x2c
	tlNextSwitch          = 0x2d
)

// maxMessage bounds a response read off the wire, so a corrupt length cannot make the client allocate gigabytes.
const maxMessage = 64 << 20
