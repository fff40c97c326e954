package sim

import (
	"math"
	"time"
)

// Profile returns the relative weekly demand at t, between 0 and 1 (1 is the busiest hour of the mean week),
// evaluated in t's location. The table holds the mean of each hour of the week; Profile places each hour's
// mean at the middle of the hour and interpolates linearly between neighbouring hours (wrapping from Sunday
// night to Monday morning), so demand changes smoothly from one counting interval to the next.
func Profile(t time.Time) float64 {
	x := HourOfWeek(t) - 0.5
	i := math.Floor(x)
	frac := x - i
	lo := (int(i) + len(weeklyProfile)) % len(weeklyProfile)
	hi := (lo + 1) % len(weeklyProfile)
	return weeklyProfile[lo]*(1-frac) + weeklyProfile[hi]*frac
}

// HourOfWeek returns the fractional hour of the week of t in t's location, from 0 (Monday 00:00) to just under
// 168.
func HourOfWeek(t time.Time) float64 {
	day := (int(t.Weekday()) + 6) % 7
	return float64(day*24+t.Hour()) + float64(t.Minute())/60 + float64(t.Second())/3600 +
		float64(t.Nanosecond())/3.6e12
}
