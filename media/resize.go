package media

import (
	"image"
	"image/color"
	"image/draw"

	xdraw "golang.org/x/image/draw"
)

// orientedSize is the size of a w×h image after EXIF orientation o:
// orientations 5 to 8 swap the axes.
func orientedSize(w, h, o int) (int, int) {
	if o >= 5 && o <= 8 {
		return h, w
	}
	return w, h
}

// srcPoint maps a destination pixel of the oriented image back to the
// stored one (EXIF 2.32 table for tag 0x0112).
func srcPoint(o, x, y, w, h int) (int, int) {
	switch o {
	case 2:
		return w - 1 - x, y
	case 3:
		return w - 1 - x, h - 1 - y
	case 4:
		return x, h - 1 - y
	case 5:
		return y, x
	case 6:
		return y, h - 1 - x
	case 7:
		return w - 1 - y, h - 1 - x
	case 8:
		return w - 1 - y, x
	}
	return x, y
}

// orient applies EXIF orientation o. A YCbCr image (every JPEG) stays
// YCbCr, at 4:4:4 so odd sizes need no chroma rounding, copying samples
// without colour conversion; anything else becomes NRGBA.
func orient(src image.Image, o int) image.Image {
	if o <= 1 || o > 8 {
		return src
	}
	b := src.Bounds()
	w, h := b.Dx(), b.Dy()
	ow, oh := orientedSize(w, h, o)
	if y, ok := src.(*image.YCbCr); ok {
		dst := image.NewYCbCr(image.Rect(0, 0, ow, oh), image.YCbCrSubsampleRatio444)
		for dy := 0; dy < oh; dy++ {
			row := dy * dst.YStride
			for dx := 0; dx < ow; dx++ {
				sx, sy := srcPoint(o, dx, dy, w, h)
				sx, sy = sx+b.Min.X, sy+b.Min.Y
				ci := y.COffset(sx, sy)
				dst.Y[row+dx] = y.Y[y.YOffset(sx, sy)]
				dst.Cb[row+dx] = y.Cb[ci]
				dst.Cr[row+dx] = y.Cr[ci]
			}
		}
		return dst
	}
	dst := image.NewNRGBA(image.Rect(0, 0, ow, oh))
	for dy := 0; dy < oh; dy++ {
		for dx := 0; dx < ow; dx++ {
			sx, sy := srcPoint(o, dx, dy, w, h)
			dst.Set(dx, dy, src.At(sx+b.Min.X, sy+b.Min.Y))
		}
	}
	return dst
}

// thumbSize fits w×h into a square of side max, never enlarging.
func thumbSize(w, h, max int) (int, int) {
	if w <= max && h <= max {
		return w, h
	}
	if w >= h {
		return max, max1(h * max / w)
	}
	return max1(w * max / h), max
}

func max1(v int) int {
	if v < 1 {
		return 1
	}
	return v
}

// shrink scales src down to tw×th. A YCbCr source is averaged box by box
// on its planes (every source sample counts once: no aliasing, and about
// ten times faster than a kernel resampler over 12 megapixels); anything
// else goes through x/image/draw's bilinear filter onto white, since the
// thumbnail is a JPEG and has no alpha.
func shrink(src image.Image, tw, th int) image.Image {
	if y, ok := src.(*image.YCbCr); ok {
		return boxYCbCr(y, tw, th)
	}
	dst := image.NewRGBA(image.Rect(0, 0, tw, th))
	draw.Draw(dst, dst.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	xdraw.BiLinear.Scale(dst, dst.Bounds(), src, src.Bounds(), xdraw.Over, nil)
	return dst
}

// boxYCbCr averages each plane of src over the boxes of a tw×th grid.
func boxYCbCr(src *image.YCbCr, tw, th int) *image.YCbCr {
	b := src.Bounds()
	w, h := b.Dx(), b.Dy()
	dst := image.NewYCbCr(image.Rect(0, 0, tw, th), image.YCbCrSubsampleRatio444)
	plane(dst.Y, tw, th, src.Y[src.YOffset(b.Min.X, b.Min.Y):], src.YStride, w, h, w, h)
	// Chroma planes have their own (subsampled) size; map them onto the
	// same grid through the full-size coordinates they stand for.
	cb := image.Rect(0, 0, w, h)
	cw, ch := chromaSize(src.SubsampleRatio, cb.Dx(), cb.Dy())
	off := src.COffset(b.Min.X, b.Min.Y)
	plane(dst.Cb, tw, th, src.Cb[off:], src.CStride, cw, ch, w, h)
	plane(dst.Cr, tw, th, src.Cr[off:], src.CStride, cw, ch, w, h)
	return dst
}

func chromaSize(r image.YCbCrSubsampleRatio, w, h int) (int, int) {
	switch r {
	case image.YCbCrSubsampleRatio422:
		return (w + 1) / 2, h
	case image.YCbCrSubsampleRatio420:
		return (w + 1) / 2, (h + 1) / 2
	case image.YCbCrSubsampleRatio440:
		return w, (h + 1) / 2
	case image.YCbCrSubsampleRatio411:
		return (w + 3) / 4, h
	case image.YCbCrSubsampleRatio410:
		return (w + 3) / 4, (h + 1) / 2
	}
	return w, h
}

// plane box-averages a pw×ph plane (stride s) into a tw×th one. fullW and
// fullH are the image's size, so planes of different resolution land on
// the same boxes.
func plane(dst []uint8, tw, th int, src []uint8, s, pw, ph, fullW, fullH int) {
	sums := make([]uint32, tw)
	counts := make([]uint32, tw)
	xmap := make([]int32, pw)
	for x := range pw {
		xmap[x] = int32(min(x*fullW/pw*tw/fullW, tw-1))
	}
	last := -1
	for y := 0; y < ph; y++ {
		ty := min(y*fullH/ph*th/fullH, th-1)
		line := src[y*s : y*s+pw]
		for x, v := range line {
			i := xmap[x]
			sums[i] += uint32(v)
			counts[i]++
		}
		next := th
		if y+1 < ph {
			next = min((y+1)*fullH/ph*th/fullH, th-1)
		}
		if next != ty || y+1 == ph {
			out := dst[ty*tw : ty*tw+tw]
			for i := range out {
				switch {
				case counts[i] > 0:
					out[i] = uint8((sums[i] + counts[i]/2) / counts[i])
				case i > 0: // a plane narrower than the target
					out[i] = out[i-1]
				}
				sums[i], counts[i] = 0, 0
			}
			// A plane shorter than the target leaves rows between.
			for r := last + 1; r < ty; r++ {
				copy(dst[r*tw:r*tw+tw], out)
			}
			last = ty
		}
	}
}
