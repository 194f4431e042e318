package state

import "math"

// ValidCoordinates reports whether lat/lon can be stored in a geo set.
func ValidCoordinates(lat, lon float64) bool {
	return !math.IsNaN(lat) && !math.IsNaN(lon) &&
		lat >= -MaxLatitude && lat <= MaxLatitude &&
		lon >= -180 && lon <= 180
}

// Distance returns the great-circle distance in metres between two points,
// with the formula and radius Redis uses.
func Distance(lat1, lon1, lat2, lon2 float64) float64 {
	const rad = math.Pi / 180
	φ1, φ2 := lat1*rad, lat2*rad
	u := math.Sin((φ2 - φ1) / 2)
	v := math.Sin((lon2 - lon1) * rad / 2)
	a := u*u + math.Cos(φ1)*math.Cos(φ2)*v*v
	return 2 * EarthRadiusM * math.Asin(math.Sqrt(a))
}
