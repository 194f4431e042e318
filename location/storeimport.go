package location

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/switchboard/switchboard/api"
)

// Bounds on one import.
const (
	// MaxImportRows bounds the stores of one import: a national chain;
	// bigger catalogues import in parts.
	MaxImportRows = 10_000
	// maxImportErrors bounds the errors reported; past it the rest are
	// counted in one last entry.
	maxImportErrors = 100
	// importWorkers is how many stores are written at once: writes queued
	// together share a commit in the embedded store.
	importWorkers = 32
)

// csvColumns are the columns a store CSV may have; id, name, lat, lon,
// time_zone and hours are required. capabilities are separated by "|",
// stock is "SKU:quantity|SKU:quantity".
var csvColumns = []string{"id", "name", "lat", "lon", "time_zone", "hours", "capabilities", "stock"}

// report collects import errors within the bound.
type report struct {
	res     api.ImportResult
	dropped int
}

func (r *report) add(e api.ImportError) {
	if len(r.res.Errors) < maxImportErrors {
		r.res.Errors = append(r.res.Errors, e)
	} else {
		r.dropped++
	}
}

func (r *report) done() api.ImportResult {
	if r.dropped > 0 {
		r.res.Errors = append(r.res.Errors, api.ImportError{Reason: fmt.Sprintf("and %d more broken rows", r.dropped)})
	}
	return r.res
}

// ImportCSV reads stores from CSV with a header row: good rows are stored,
// broken ones reported by line (the header is line 1). A header that is
// not CSV or lacks a required column refuses the whole file.
func (s *Service) ImportCSV(ctx context.Context, r io.Reader) (api.ImportResult, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return api.ImportResult{}, fmt.Errorf("%w: the CSV has no readable header row", ErrInvalid)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !contains(csvColumns, h) {
			return api.ImportResult{}, fmt.Errorf("%w: unknown CSV column %q (want %s)", ErrInvalid, truncate(h, 40), strings.Join(csvColumns, ","))
		}
		col[h] = i
	}
	for _, need := range csvColumns[:6] {
		if _, ok := col[need]; !ok {
			return api.ImportResult{}, fmt.Errorf("%w: the CSV lacks the column %q", ErrInvalid, need)
		}
	}
	var rep report
	var good []api.Store
	rows := 0
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			// encoding/csv resumes at the next record after a parse error.
			rep.add(api.ImportError{Line: pe.StartLine, Reason: pe.Err.Error()})
			continue
		}
		if err != nil {
			return api.ImportResult{}, fmt.Errorf("%w: reading the CSV: %v", ErrInvalid, err)
		}
		line, _ := cr.FieldPos(0) // only valid after a successful Read
		if rows++; rows > MaxImportRows {
			return api.ImportResult{}, fmt.Errorf("%w: more than %d rows; import in parts", ErrInvalid, MaxImportRows)
		}
		st, err := s.storeFromRow(rec, col)
		if err != nil {
			rep.add(api.ImportError{Line: line, Reason: err.Error()})
			continue
		}
		good = append(good, st)
	}
	rep.res.Imported, err = s.putStores(ctx, good)
	return rep.done(), err
}

func (s *Service) storeFromRow(rec []string, col map[string]int) (api.Store, error) {
	field := func(name string) string {
		i, ok := col[name]
		if !ok || i >= len(rec) {
			return ""
		}
		return strings.TrimSpace(rec[i])
	}
	if len(rec) != len(col) {
		return api.Store{}, fmt.Errorf("%d fields, want %d", len(rec), len(col))
	}
	st := api.Store{ID: field("id"), Name: field("name"), TimeZone: field("time_zone"), Hours: field("hours")}
	var err error
	if st.Lat, err = strconv.ParseFloat(field("lat"), 64); err != nil {
		return api.Store{}, fmt.Errorf("lat is not a number")
	}
	if st.Lon, err = strconv.ParseFloat(field("lon"), 64); err != nil {
		return api.Store{}, fmt.Errorf("lon is not a number")
	}
	if c := field("capabilities"); c != "" {
		st.Capabilities = strings.Split(c, "|")
	}
	if stock := field("stock"); stock != "" {
		st.Stock = map[string]int{}
		for _, item := range strings.Split(stock, "|") {
			sku, n, ok := strings.Cut(strings.TrimSpace(item), ":")
			q, err := strconv.Atoi(strings.TrimSpace(n))
			if !ok || err != nil {
				return api.Store{}, fmt.Errorf("stock item %q is not SKU:quantity", truncate(item, 40))
			}
			st.Stock[strings.TrimSpace(sku)] = q
		}
	}
	if err := s.checkStore(&st); err != nil {
		return api.Store{}, err
	}
	return st, nil
}

// geoJSON is the part of RFC 7946 a store import reads.
type geoJSON struct {
	Type     string            `json:"type"`
	Features []json.RawMessage `json:"features"`
}

type geoFeature struct {
	Type     string `json:"type"`
	Geometry *struct {
		Type        string    `json:"type"`
		Coordinates []float64 `json:"coordinates"`
	} `json:"geometry"`
	Properties struct {
		ID           string         `json:"id"`
		Name         string         `json:"name"`
		TimeZone     string         `json:"time_zone"`
		Hours        string         `json:"hours"`
		Capabilities []string       `json:"capabilities"`
		Stock        map[string]int `json:"stock"`
	} `json:"properties"`
	ID any `json:"id"`
}

// ImportGeoJSON reads stores from a GeoJSON FeatureCollection of Point
// features (coordinates [lon, lat], RFC 7946), properties as in CSV:
// good features are stored, broken ones reported by index.
func (s *Service) ImportGeoJSON(ctx context.Context, data []byte) (api.ImportResult, error) {
	var fc geoJSON
	if err := json.Unmarshal(data, &fc); err != nil || fc.Type != "FeatureCollection" {
		return api.ImportResult{}, fmt.Errorf("%w: the body is not a GeoJSON FeatureCollection", ErrInvalid)
	}
	if len(fc.Features) > MaxImportRows {
		return api.ImportResult{}, fmt.Errorf("%w: more than %d features; import in parts", ErrInvalid, MaxImportRows)
	}
	var rep report
	var good []api.Store
	for i, raw := range fc.Features {
		st, err := s.storeFromFeature(raw)
		if err != nil {
			idx := i
			rep.add(api.ImportError{Feature: &idx, Reason: err.Error()})
			continue
		}
		good = append(good, st)
	}
	var err error
	rep.res.Imported, err = s.putStores(ctx, good)
	return rep.done(), err
}

func (s *Service) storeFromFeature(raw json.RawMessage) (api.Store, error) {
	var f geoFeature
	if err := json.Unmarshal(raw, &f); err != nil {
		return api.Store{}, fmt.Errorf("not a feature with the expected properties")
	}
	if f.Type != "Feature" || f.Geometry == nil || f.Geometry.Type != "Point" || len(f.Geometry.Coordinates) < 2 {
		return api.Store{}, fmt.Errorf("not a Point feature")
	}
	p := f.Properties
	st := api.Store{ID: p.ID, Name: p.Name, Lat: f.Geometry.Coordinates[1], Lon: f.Geometry.Coordinates[0],
		TimeZone: p.TimeZone, Hours: p.Hours, Capabilities: p.Capabilities, Stock: p.Stock}
	if st.ID == "" {
		if id, ok := f.ID.(string); ok {
			st.ID = id
		}
	}
	if err := s.checkStore(&st); err != nil {
		return api.Store{}, err
	}
	return st, nil
}

// putStores writes stores importWorkers at a time and returns how many
// were stored.
func (s *Service) putStores(ctx context.Context, stores []api.Store) (int, error) {
	for i := 0; i < len(stores); i += importWorkers {
		chunk := stores[i:min(i+importWorkers, len(stores))]
		fns := make([]func() error, len(chunk))
		for j := range chunk {
			fns[j] = func() error { return s.putStore(ctx, &chunk[j]) }
		}
		if err := parallel(fns...); err != nil {
			return i, err
		}
	}
	return len(stores), nil
}

func contains(l []string, s string) bool {
	for _, v := range l {
		if v == s {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
