package fiware

import (
	"fmt"
	"math"
)

// UN/CEFACT unit codes understood in NGSI-LD unitCode metadata.
const (
	UnitKMH       = "KMH" // kilometre per hour
	UnitMPS       = "MTS" // metre per second
	UnitMPH       = "HM"  // mile per hour
	UnitPercent   = "P1"  // percent
	UnitOne       = "C62" // dimensionless ratio
	UnitCelsius   = "CEL" // degree Celsius
	UnitKelvin    = "KEL" // kelvin
	UnitFahrenh   = "FAH" // degree Fahrenheit
	UnitMetre     = "MTR" // metre
	UnitKilometre = "KMT" // kilometre
	UnitMMPerHour = "H67" // millimetre per hour
)

// UnsupportedUnitError says a unitCode cannot be converted to the canonical unit of a quantity.
type UnsupportedUnitError struct {
	Quantity, Unit string
	Supported      []string
}

// Error implements error.
func (e *UnsupportedUnitError) Error() string {
	return fmt.Sprintf("unitCode %q is not supported for %s (supported: %v)", e.Unit, e.Quantity, e.Supported)
}

// Sentinels for quantities that cannot be negative: the "no data" codes loop controllers and weather stations
// send in place of a measurement. They mean missing, never a value.
var nonNegativeSentinels = []float64{-1, -999, -9999}

// Sentinels for temperature, where -1 is a real reading.
var temperatureSentinels = []float64{-999, -9999}

// IsSentinel reports whether v is a "no data" code for a non-negative quantity (intensity, occupancy, speed,
// precipitation, visibility): -1, -999 or -9999.
func IsSentinel(v float64) bool { return in(v, nonNegativeSentinels) }

// IsTemperatureSentinel reports whether v is a "no data" code for a temperature: -999 or -9999.
func IsTemperatureSentinel(v float64) bool { return in(v, temperatureSentinels) }

func in(v float64, set []float64) bool {
	for _, s := range set {
		if v == s {
			return true
		}
	}
	return false
}

// OccupancyRatio converts an occupancy to a 0..1 ratio. With unitCode "P1" the value is a percentage; with
// "C62" a ratio; without a unitCode, a value above 1 is taken as a percentage (FIWARE specifies a ratio, but
// many gateways send percent), so an unlabelled 1 means fully occupied, not 1 %.
func OccupancyRatio(v float64, unit string) (float64, error) {
	switch unit {
	case UnitPercent:
		return v / 100, nil
	case UnitOne:
		return v, nil
	case "":
		if v > 1 {
			return v / 100, nil
		}
		return v, nil
	}
	return 0, &UnsupportedUnitError{Quantity: "occupancy", Unit: unit, Supported: []string{UnitOne, UnitPercent}}
}

// SpeedKMH converts a speed to km/h: "KMH" or no unitCode is km/h, "MTS" m/s, "HM" mph.
func SpeedKMH(v float64, unit string) (float64, error) {
	switch unit {
	case "", UnitKMH:
		return v, nil
	case UnitMPS:
		return v * 3.6, nil
	case UnitMPH:
		return v * 1.609344, nil
	}
	return 0, &UnsupportedUnitError{Quantity: "speed", Unit: unit, Supported: []string{UnitKMH, UnitMPS, UnitMPH}}
}

// TemperatureC converts a temperature to °C: "CEL" or no unitCode is °C, "KEL" kelvin, "FAH" °F.
func TemperatureC(v float64, unit string) (float64, error) {
	switch unit {
	case "", UnitCelsius:
		return v, nil
	case UnitKelvin:
		return v - 273.15, nil
	case UnitFahrenh:
		return (v - 32) * 5 / 9, nil
	}
	return 0, &UnsupportedUnitError{Quantity: "temperature", Unit: unit, Supported: []string{UnitCelsius, UnitKelvin, UnitFahrenh}}
}

// VisibilityM converts a visibility to metres: "MTR" or no unitCode is metres, "KMT" kilometres.
func VisibilityM(v float64, unit string) (float64, error) {
	switch unit {
	case "", UnitMetre:
		return v, nil
	case UnitKilometre:
		return v * 1000, nil
	}
	return 0, &UnsupportedUnitError{Quantity: "visibility", Unit: unit, Supported: []string{UnitMetre, UnitKilometre}}
}

// PrecipitationMMH checks a precipitation rate's unit: "H67" or no unitCode is mm/h; nothing else is converted,
// because an amount without its period cannot be turned into a rate.
func PrecipitationMMH(v float64, unit string) (float64, error) {
	switch unit {
	case "", UnitMMPerHour:
		return v, nil
	}
	return 0, &UnsupportedUnitError{Quantity: "precipitation", Unit: unit, Supported: []string{UnitMMPerHour}}
}

// finite reports whether v is a usable number.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
