package embedded

import (
	"cmp"
	"context"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/switchboard/switchboard/state"
)

// The geo index is a point octree over unit vectors on the sphere. Working
// in 3-D instead of latitude/longitude has no seams: the antimeridian and
// the poles are ordinary places, and the straight-line (chord) distance
// between two unit vectors orders points exactly as the great-circle
// distance does (haversine's a is (chord/2)²), so a best-first search on
// chord distance to boxes is a correct nearest-first search on the sphere.
// A tree rather than a fixed grid adapts to density: 100,000 technicians
// in one country and a handful of stores worldwide are equally cheap.
// Moves are a delete and an insert, both O(depth).

const (
	// leafCap is how many points a leaf holds before it splits: small
	// enough that scanning a leaf is cheap, large enough that the tree is
	// shallow (measured: 16 to 32 is flat; 16 keeps leaves in few lines).
	leafCap = 16
	// maxDepth stops splitting at cells of about 0.8 m (2/2^24 of the
	// unit cube times Earth's radius): points closer than that share a
	// leaf however many they are, so duplicates cannot split forever.
	maxDepth = 24
)

type vec3 struct{ x, y, z float64 }

func unitVector(lat, lon float64) vec3 {
	φ, λ := lat*math.Pi/180, lon*math.Pi/180
	c := math.Cos(φ)
	return vec3{c * math.Cos(λ), c * math.Sin(λ), math.Sin(φ)}
}

func dist2(a, b vec3) float64 {
	dx, dy, dz := a.x-b.x, a.y-b.y, a.z-b.z
	return dx*dx + dy*dy + dz*dz
}

// chord2 is the squared chord of a great-circle distance of m metres.
func chord2(m float64) float64 {
	θ := m / state.EarthRadiusM
	if θ >= math.Pi {
		return 4
	}
	c := 2 * math.Sin(θ/2)
	return c * c
}

type geoPoint struct {
	state.GeoPoint
	v vec3
}

type octNode struct {
	center vec3
	half   float64
	depth  int
	n      int          // points in this subtree
	kids   *[8]*octNode // nil for a leaf
	pts    []*geoPoint  // a leaf's points
}

func (n *octNode) child(v vec3) int {
	i := 0
	if v.x >= n.center.x {
		i |= 1
	}
	if v.y >= n.center.y {
		i |= 2
	}
	if v.z >= n.center.z {
		i |= 4
	}
	return i
}

// boxDist2 is the squared distance from v to the node's cube (0 inside).
func (n *octNode) boxDist2(v vec3) float64 {
	d := func(p, c float64) float64 {
		if e := math.Abs(p-c) - n.half; e > 0 {
			return e * e
		}
		return 0
	}
	return d(v.x, n.center.x) + d(v.y, n.center.y) + d(v.z, n.center.z)
}

func (n *octNode) insert(p *geoPoint) {
	n.n++
	if n.kids != nil {
		n.kids[n.child(p.v)].insert(p)
		return
	}
	n.pts = append(n.pts, p)
	if len(n.pts) > leafCap && n.depth < maxDepth {
		n.split()
	}
}

func (n *octNode) split() {
	n.kids = new([8]*octNode)
	h := n.half / 2
	for i := range n.kids {
		c := n.center
		c.x += sign(i&1 != 0) * h
		c.y += sign(i&2 != 0) * h
		c.z += sign(i&4 != 0) * h
		n.kids[i] = &octNode{center: c, half: h, depth: n.depth + 1}
	}
	pts := n.pts
	n.pts = nil
	for _, p := range pts {
		n.kids[n.child(p.v)].insert(p)
	}
}

func sign(pos bool) float64 {
	if pos {
		return 1
	}
	return -1
}

// remove takes p out of the subtree (p must be in it), and folds a
// subtree that has thinned out back into a leaf, so a fleet that moves
// all day does not leave a deep, empty tree behind.
func (n *octNode) remove(p *geoPoint) {
	n.n--
	if n.kids == nil {
		for i, q := range n.pts {
			if q == p {
				last := len(n.pts) - 1
				n.pts[i], n.pts[last] = n.pts[last], nil
				n.pts = n.pts[:last]
				return
			}
		}
		return
	}
	n.kids[n.child(p.v)].remove(p)
	if n.n <= leafCap/2 {
		pts := make([]*geoPoint, 0, leafCap)
		n.collect(&pts)
		n.kids, n.pts = nil, pts
	}
}

func (n *octNode) collect(out *[]*geoPoint) {
	if n.kids == nil {
		*out = append(*out, n.pts...)
		return
	}
	for _, k := range n.kids {
		k.collect(out)
	}
}

// geoIndex is one geo set in memory: the tree plus a member map. Its
// lock is taken for writing only by the committer, after a commit.
type geoIndex struct {
	mu     sync.RWMutex
	byName map[string]*geoPoint
	root   *octNode
}

func newGeoIndex() *geoIndex {
	// The unit sphere fits in the cube of half-side 1; a hair more keeps
	// points at exactly ±1 strictly inside.
	return &geoIndex{byName: make(map[string]*geoPoint), root: &octNode{half: 1 + 1e-9}}
}

// put adds or moves a point. Callers hold mu for writing.
func (g *geoIndex) put(p state.GeoPoint) {
	if old := g.byName[p.Member]; old != nil {
		g.root.remove(old)
	}
	gp := &geoPoint{GeoPoint: p, v: unitVector(p.Lat, p.Lon)}
	g.byName[p.Member] = gp
	g.root.insert(gp)
}

// del removes a member if present. Callers hold mu for writing.
func (g *geoIndex) del(member string) {
	if old := g.byName[member]; old != nil {
		g.root.remove(old)
		delete(g.byName, member)
	}
}

// queueItem is a node or a point waiting in the best-first queue, keyed
// by its squared chord distance (a lower bound for a node).
type queueItem struct {
	d2   float64
	node *octNode
	pt   *geoPoint
}

// minQueue is a binary heap; hand-written because container/heap's
// interface calls cost more than the search itself.
type minQueue []queueItem

func (q *minQueue) push(it queueItem) {
	*q = append(*q, it)
	h := *q
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if h[p].d2 <= h[i].d2 {
			break
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

func (q *minQueue) pop() queueItem {
	h := *q
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < len(h) && h[l].d2 < h[m].d2 {
			m = l
		}
		if r := l + 1; r < len(h) && h[r].d2 < h[m].d2 {
			m = r
		}
		if m == i {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	*q = h
	return top
}

var queuePool = sync.Pool{New: func() any { q := make(minQueue, 0, 256); return &q }}

// cancelEvery is how many queue pops pass between context checks: a
// check is ~20ns, a pop ~10ns, so this keeps the overhead negligible
// while a search over a huge radius still stops within microseconds.
const cancelEvery = 1024

// nearest returns up to k (0: all) points within radiusM of lat/lon,
// nearest first. Callers hold mu for reading.
func (g *geoIndex) nearest(ctx context.Context, lat, lon, radiusM float64, k int) ([]state.GeoResult, error) {
	q := unitVector(lat, lon)
	// A little slack on the chord bound: the final test is the exact
	// haversine distance, so floating noise must not drop a boundary point.
	limit := chord2(radiusM)*(1+1e-9) + 1e-18
	qp := queuePool.Get().(*minQueue)
	defer func() { *qp = (*qp)[:0]; queuePool.Put(qp) }()
	queue := qp
	if g.root.n > 0 {
		queue.push(queueItem{d2: g.root.boxDist2(q), node: g.root})
	}
	var out []state.GeoResult
	for pops := 1; len(*queue) > 0; pops++ {
		if pops%cancelEvery == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		it := queue.pop()
		if it.d2 > limit {
			break
		}
		if p := it.pt; p != nil {
			d := state.Distance(lat, lon, p.Lat, p.Lon)
			if d > radiusM {
				continue
			}
			out = append(out, state.GeoResult{GeoPoint: p.GeoPoint, DistanceM: d})
			if k > 0 && len(out) == k {
				// Points tied with the k-th (same spot, or the same
				// distance to floating noise) must all be seen for the
				// tie-break by member to be honest: keep popping up to
				// the k-th's distance, then sort and cut.
				limit = min(limit, it.d2*(1+1e-9)+1e-18)
			}
			continue
		}
		n := it.node
		if n.kids == nil {
			for _, p := range n.pts {
				if d2 := dist2(q, p.v); d2 <= limit {
					queue.push(queueItem{d2: d2, pt: p})
				}
			}
			continue
		}
		for _, c := range n.kids {
			if c.n == 0 {
				continue
			}
			if d2 := c.boxDist2(q); d2 <= limit {
				queue.push(queueItem{d2: d2, node: c})
			}
		}
	}
	sortResults(out)
	if k > 0 && len(out) > k {
		out = out[:k]
	}
	return out, nil
}

// sortResults orders by haversine distance, then member. The search pops
// in chord order, which agrees except for floating noise between points
// at (nearly) the same distance, and in no particular order among ties.
func sortResults(rs []state.GeoResult) {
	slices.SortFunc(rs, func(a, b state.GeoResult) int {
		return cmp.Or(cmp.Compare(a.DistanceM, b.DistanceM), strings.Compare(a.Member, b.Member))
	})
}
