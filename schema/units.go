package schema

import (
	"fmt"
	"strconv"
)

// Units. New ones are added at the end; the numbers never change.
const (
	UnitNone       Unit = iota // dimensionless
	UnitCelsius                // degC
	UnitKelvin                 // K
	UnitPascal                 // Pa
	UnitVolt                   // V
	UnitAmpere                 // A
	UnitWatt                   // W
	UnitPercent                // %
	UnitMetre                  // m
	UnitMetrePerS              // m/s
	UnitMetrePerS2             // m/s2
	UnitRadPerS                // rad/s
	UnitMicroTesla             // uT
	UnitLux                    // lx
	UnitHertz                  // Hz
	UnitRPM                    // rpm
	unitCount
)

var unitSymbols = [unitCount]string{"", "degC", "K", "Pa", "V", "A", "W", "%", "m", "m/s", "m/s2", "rad/s", "uT", "lx", "Hz", "rpm"}

// String returns the unit's symbol, or "unit(N)" for a number this build
// does not know.
func (u Unit) String() string {
	if u < unitCount {
		return unitSymbols[u]
	}
	return "unit(" + strconv.Itoa(int(u)) + ")"
}

// MarshalText renders the symbol.
func (u Unit) MarshalText() ([]byte, error) { return []byte(u.String()), nil }

// UnmarshalText parses a symbol.
func (u *Unit) UnmarshalText(b []byte) error {
	for i, s := range unitSymbols {
		if s == string(b) {
			*u = Unit(i)
			return nil
		}
	}
	return fmt.Errorf("unknown unit %q", b)
}

// Fix qualities, as in NMEA GGA.
const (
	FixNone FixQuality = iota
	FixGPS
	FixDGPS
	FixPPS
	FixRTK
	FixFloatRTK
	FixEstimated
	fixCount
)

var fixNames = [fixCount]string{"none", "gps", "dgps", "pps", "rtk", "float-rtk", "estimated"}

func (q FixQuality) String() string {
	if q < fixCount {
		return fixNames[q]
	}
	return "fix(" + strconv.Itoa(int(q)) + ")"
}

// MarshalText renders the name.
func (q FixQuality) MarshalText() ([]byte, error) { return []byte(q.String()), nil }

// UnmarshalText parses a name.
func (q *FixQuality) UnmarshalText(b []byte) error {
	for i, s := range fixNames {
		if s == string(b) {
			*q = FixQuality(i)
			return nil
		}
	}
	return fmt.Errorf("unknown fix quality %q", b)
}
