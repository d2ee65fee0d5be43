/// An overlay that cannot be drawn: sizes that disagree, a bad scale, too many classes.
public struct OverlayError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// An RGB overlay before encoding, and where its legend went.
public struct OverlayImage: Sendable {
    public let width: Int
    public let height: Int
    /// Interleaved RGB, row-major.
    public var rgb: [UInt8]
    /// The legend panel (x, y, width, height), or nil when the image is too small for one.
    public let legend: LegendBox?
}

public struct LegendBox: Sendable, Equatable {
    public let x: Int
    public let y: Int
    public let width: Int
    public let height: Int
    public let columns: Int
    /// Font pixels per bitmap-font pixel.
    public let fontScale: Int
}

/// Draws class masks over a radiograph: the film in gray, each class filled in
/// its own colour at `fillAlpha` with a contour in the full colour, and a legend
/// of class names with colour swatches in the corner that covers the least of
/// the hand. Colours: docs/overlay-colours.md.
///
/// One pass over the pixels does the fill and the contour; a contour pixel is a
/// pixel of the class with a 4-neighbour outside it (outside the image counts
/// as outside), found for all classes at once by AND-ing the neighbours' class
/// bits. Contours are 1 px below 1024 px on the long side and 2 px from there
/// (a pixel within two 4-steps of the outside).
public enum OverlayRenderer {
    public struct Colour: Sendable, Equatable {
        public let r: UInt8, g: UInt8, b: UInt8
        public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) { self.r = r; self.g = g; self.b = b }
    }

    /// One colour per competition class, in class order. Chosen so that bones
    /// that touch (along a finger, across fingers, among the carpals and
    /// forearm) are at least ΔE 74 apart in CIELAB, all of them saturated and of
    /// mid-to-high lightness so they stand out on a dark film.
    public static let palette: [Colour] = [
        Colour(165, 90, 180),   // finger-1
        Colour(105, 135, 45),   // finger-2
        Colour(225, 30, 195),   // finger-3
        Colour(0, 225, 105),    // finger-4
        Colour(255, 0, 15),     // finger-5
        Colour(0, 240, 255),    // finger-6
        Colour(255, 105, 0),    // finger-7
        Colour(255, 210, 0),    // finger-8
        Colour(195, 90, 135),   // finger-9
        Colour(225, 225, 120),  // finger-10
        Colour(165, 75, 255),   // finger-11
        Colour(30, 150, 105),   // finger-12
        Colour(0, 255, 0),      // finger-13
        Colour(0, 195, 255),    // finger-14
        Colour(255, 0, 75),     // finger-15
        Colour(90, 105, 240),   // finger-16
        Colour(255, 165, 45),   // finger-17
        Colour(255, 135, 255),  // finger-18
        Colour(165, 120, 0),    // finger-19
        Colour(150, 210, 0),    // Trapezium
        Colour(180, 165, 255),  // Trapezoid
        Colour(0, 240, 195),    // Capitate
        Colour(255, 0, 255),    // Hamate
        Colour(210, 90, 75),    // Scaphoid
        Colour(0, 135, 225),    // Lunate
        Colour(30, 150, 0),     // Triquetrum
        Colour(255, 180, 120),  // Pisiform
        Colour(135, 210, 120),  // Radius
        Colour(255, 0, 150),    // Ulna
    ]

    /// The fill's opacity: 90/256 ≈ 0.35 in the fixed-point blend.
    public static let fillAlpha256 = 90
    public static let legendTextColour = Colour(235, 235, 235)
    /// Names of classes with no pixel at all, beside a hollow swatch.
    public static let legendAbsentTextColour = Colour(150, 150, 150)

    /// PNG bytes (8-bit RGB) of the overlay; see `renderPixels`.
    public static func render(gray: GrayImage, classes: ClassBitmap, classNames: [String], scale: Double = 1) throws -> [UInt8] {
        let image = try renderPixels(gray: gray, classes: classes, classNames: classNames, scale: scale)
        return try PNGCodec.encodeFast(pixels: image.rgb, width: image.width, height: image.height, channels: 3)
    }

    /// The overlay as RGB pixels, the size of the input or scaled by `scale`
    /// (bilinear for the film, nearest for the masks).
    public static func renderPixels(gray: GrayImage, classes: ClassBitmap, classNames: [String], scale: Double = 1) throws -> OverlayImage {
        guard gray.width == classes.width && gray.height == classes.height else {
            throw OverlayError("masks are \(classes.width)x\(classes.height) but the image is \(gray.width)x\(gray.height)")
        }
        guard classNames.count == classes.classCount else {
            throw OverlayError("\(classNames.count) class names for \(classes.classCount) classes")
        }
        guard classes.classCount <= palette.count else {
            throw OverlayError("the overlay has colours for \(palette.count) classes, not \(classes.classCount)")
        }
        guard scale.isFinite && scale > 0 else { throw OverlayError("overlay scale must be above 0, not \(scale)") }
        guard gray.width > 0 && gray.height > 0 else { throw OverlayError("the image has no pixels") }
        let width = max(1, Int((Double(gray.width) * scale).rounded()))
        let height = max(1, Int((Double(gray.height) * scale).rounded()))
        guard width <= 16384 && height <= 16384 else {
            throw OverlayError("an overlay of \(width)x\(height) is over the limit of 16384x16384")
        }

        let film = resampledGray(gray, width: width, height: height)
        let masks = width == gray.width && height == gray.height
            ? classes.bits : resampledMasks(classes, width: width, height: height)
        let contourWidth = max(width, height) >= 1024 ? 2 : 1
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        compose(film: film, masks: masks, width: width, height: height, contourWidth: contourWidth, into: &rgb)

        var present: UInt32 = 0
        for bits in classes.bits { present |= bits }
        let legend = drawLegend(names: classNames, present: present, film: film, masks: masks,
                                width: width, height: height, into: &rgb)
        return OverlayImage(width: width, height: height, rgb: rgb, legend: legend)
    }

    // MARK: - Resampling

    /// The film on 8 bits at the output size: rounded when the size is kept,
    /// else bilinear with pixel centres aligned (OpenCV's INTER_LINEAR).
    static func resampledGray(_ gray: GrayImage, width: Int, height: Int) -> [UInt8] {
        let sw = gray.width, sh = gray.height
        var out = [UInt8](repeating: 0, count: width * height)
        // Clamped so that NaN (false in both comparisons) becomes 0 rather than a trap.
        @inline(__always) func byte(_ v: Float) -> UInt8 { UInt8((v > 0 ? (v < 255 ? v : 255) : 0) + 0.5) }
        gray.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                if width == sw && height == sh {
                    for i in 0..<(width * height) { dst[i] = byte(src[i]) }
                    return
                }
                func taps(_ n: Int, _ sn: Int) -> ([Int], [Int], [Float]) {
                    var lo = [Int](repeating: 0, count: n), hi = lo, frac = [Float](repeating: 0, count: n)
                    let ratio = Double(sn) / Double(n)
                    for i in 0..<n {
                        let s = max(0, min(Double(sn - 1), (Double(i) + 0.5) * ratio - 0.5))
                        let f = s.rounded(.down)
                        lo[i] = Int(f); hi[i] = min(Int(f) + 1, sn - 1); frac[i] = Float(s - f)
                    }
                    return (lo, hi, frac)
                }
                let (x0, x1, fx) = taps(width, sw)
                let (y0, y1, fy) = taps(height, sh)
                for y in 0..<height {
                    let r0 = y0[y] * sw, r1 = y1[y] * sw, wy = fy[y]
                    for x in 0..<width {
                        let top = src[r0 + x0[x]] + (src[r0 + x1[x]] - src[r0 + x0[x]]) * fx[x]
                        let bottom = src[r1 + x0[x]] + (src[r1 + x1[x]] - src[r1 + x0[x]]) * fx[x]
                        dst[y * width + x] = byte(top + (bottom - top) * wy)
                    }
                }
            }
        }
        return out
    }

    /// Masks at the output size, nearest neighbour (pixel centres aligned).
    static func resampledMasks(_ classes: ClassBitmap, width: Int, height: Int) -> [UInt32] {
        let sw = classes.width, sh = classes.height
        let xs = (0..<width).map { min(sw - 1, Int((Double($0) + 0.5) * Double(sw) / Double(width))) }
        let ys = (0..<height).map { min(sh - 1, Int((Double($0) + 0.5) * Double(sh) / Double(height))) }
        var out = [UInt32](repeating: 0, count: width * height)
        classes.bits.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<height {
                    let row = ys[y] * sw
                    for x in 0..<width { dst[y * width + x] = src[row + xs[x]] }
                }
            }
        }
        return out
    }

    // MARK: - Fill and contour

    /// Each pixel's bits ANDed with its 4 neighbours' (0 past the border): the
    /// classes whose pixel here is not on the outline.
    static func eroded(_ bits: UnsafeBufferPointer<UInt32>, width: Int, height: Int) -> [UInt32] {
        var out = [UInt32](repeating: 0, count: width * height)
        out.withUnsafeMutableBufferPointer { dst in
            guard width > 2 && height > 2 else { return }
            for y in 1..<(height - 1) {
                let row = y * width
                for x in 1..<(width - 1) {
                    let i = row + x
                    let b = bits[i]
                    if b == 0 { continue }
                    dst[i] = b & bits[i - 1] & bits[i + 1] & bits[i - width] & bits[i + width]
                }
            }
        }
        return out
    }

    static func compose(film: [UInt8], masks: [UInt32], width: Int, height: Int, contourWidth: Int, into rgb: inout [UInt8]) {
        let alpha = UInt32(fillAlpha256), keep = 256 - alpha
        // Colours premultiplied by the fill's alpha, plus 128 for rounding.
        let tint: [(UInt32, UInt32, UInt32)] = palette.map {
            (UInt32($0.r) * alpha + 128, UInt32($0.g) * alpha + 128, UInt32($0.b) * alpha + 128)
        }
        masks.withUnsafeBufferPointer { bits in
            // A 2-px outline is what a second erosion removes: erode once here,
            // once more per pixel below.
            let inner: [UInt32]? = contourWidth >= 2 ? eroded(bits, width: width, height: height) : nil
            func run(_ core: UnsafeBufferPointer<UInt32>) {
                film.withUnsafeBufferPointer { gray in
                    rgb.withUnsafeMutableBufferPointer { out in
                        tint.withUnsafeBufferPointer { tint in
                            palette.withUnsafeBufferPointer { full in
                                for y in 0..<height {
                                    let row = y * width
                                    let interiorRow = y > 0 && y < height - 1
                                    for x in 0..<width {
                                        let i = row + x
                                        let g = gray[i]
                                        let b = bits[i]
                                        let o = 3 * i
                                        if b == 0 {
                                            out[o] = g; out[o + 1] = g; out[o + 2] = g
                                            continue
                                        }
                                        let kept = b & core[i]
                                        let solid = interiorRow && x > 0 && x < width - 1
                                            ? kept & core[i - 1] & core[i + 1] & core[i - width] & core[i + width]
                                            : 0
                                        let edge = b & ~solid
                                        if edge != 0 {
                                            // Full colour of the topmost class whose outline passes here.
                                            let c = full[31 - edge.leadingZeroBitCount]
                                            out[o] = c.r; out[o + 1] = c.g; out[o + 2] = c.b
                                            continue
                                        }
                                        var r = UInt32(g), gg = UInt32(g), bb = UInt32(g)
                                        var v = b
                                        while v != 0 {
                                            let t = tint[v.trailingZeroBitCount]
                                            r = (r * keep + t.0) >> 8
                                            gg = (gg * keep + t.1) >> 8
                                            bb = (bb * keep + t.2) >> 8
                                            v &= v - 1
                                        }
                                        out[o] = UInt8(r); out[o + 1] = UInt8(gg); out[o + 2] = UInt8(bb)
                                    }
                                }
                            }
                        }
                    }
                }
            }
            if let inner { inner.withUnsafeBufferPointer { run($0) } } else { run(bits) }
        }
    }

    // MARK: - Legend

    /// Font scale for an output image: one step per 600 px of the image's
    /// geometric-mean side (1 at 512, 2 at 1024, 3 at 2048, 7 at 4096), so the
    /// 7-pixel capitals stay about 1% of the image across sizes and shapes.
    public static func fontScale(width: Int, height: Int) -> Int {
        max(1, Int(((Double(width) * Double(height)).squareRoot() / 600).rounded()))
    }

    /// Lays the legend out in 1, 2 or 3 columns in one of the four corners,
    /// whichever covers the fewest mask pixels and the least of the film that
    /// differs from its background (the median of its border); draws it on a
    /// dark panel. No legend when even the smallest font does not fit.
    static func drawLegend(names: [String], present: UInt32, film: [UInt8], masks: [UInt32],
                           width: Int, height: Int, into rgb: inout [UInt8]) -> LegendBox? {
        guard !names.isEmpty else { return nil }
        let longest = names.map { BitmapFont.width(of: $0, scale: 1) }.max() ?? 0
        var scale = fontScale(width: width, height: height)
        var candidates: [LegendBox] = []
        while scale >= 1 && candidates.isEmpty {
            let pad = 4 * scale, swatch = 7 * scale, gap = 3 * scale, rowHeight = 10 * scale
            let columnWidth = swatch + gap + longest * scale + 2 * pad
            let margin = 2 * scale
            for columns in [2, 1, 3] {
                let rows = (names.count + columns - 1) / columns
                let boxWidth = columns * columnWidth
                let boxHeight = rows * rowHeight + 2 * pad - (rowHeight - swatch - scale)
                guard boxWidth + 2 * margin <= width && boxHeight + 2 * margin <= height else { continue }
                for (right, bottom) in [(true, false), (false, false), (true, true), (false, true)] {
                    candidates.append(LegendBox(x: right ? width - margin - boxWidth : margin,
                                                y: bottom ? height - margin - boxHeight : margin,
                                                width: boxWidth, height: boxHeight, columns: columns, fontScale: scale))
                }
            }
            if candidates.isEmpty { scale -= 1 }
        }
        guard !candidates.isEmpty else { return nil }

        let background = borderMedian(film, width: width, height: height)
        let step = max(1, min(width, height) / 256)
        var best = candidates[0], bestCost = Double.infinity
        film.withUnsafeBufferPointer { gray in
            masks.withUnsafeBufferPointer { bits in
                for box in candidates {
                    var covered = 0, contrast = 0, samples = 0
                    for y in stride(from: box.y, to: box.y + box.height, by: step) {
                        for x in stride(from: box.x, to: box.x + box.width, by: step) {
                            let i = y * width + x
                            if bits[i] != 0 { covered += 1 }
                            contrast += abs(Int(gray[i]) - background)
                            samples += 1
                        }
                    }
                    // A mask pixel costs as much as two fully contrasting film pixels;
                    // a little for area so an empty corner takes the compact layout.
                    let cost = Double(covered) * 2 + Double(contrast) / 255 + Double(samples) * 0.02
                    if cost < bestCost { bestCost = cost; best = box }
                }
            }
        }

        let s = best.fontScale
        let pad = 4 * s, swatch = 7 * s, gap = 3 * s, rowHeight = 10 * s
        let rows = (names.count + best.columns - 1) / best.columns
        let columnWidth = best.width / best.columns
        rgb.withUnsafeMutableBufferPointer { out in
            // Dark panel: the film shows through at a quarter of its brightness.
            for y in best.y..<(best.y + best.height) {
                var i = (y * width + best.x) * 3
                for _ in 0..<(best.width * 3) {
                    out[i] = UInt8(UInt32(out[i]) >> 2)
                    i += 1
                }
            }
            for (c, name) in names.enumerated() {
                let x = best.x + (c / rows) * columnWidth + pad
                let y = best.y + pad + (c % rows) * rowHeight
                let colour = palette[c]
                let rgbColour = (colour.r, colour.g, colour.b)
                let isPresent = present & (UInt32(1) << UInt32(c)) != 0
                if isPresent {
                    BitmapFont.fill(x: x, y: y, width: swatch, height: swatch, color: rgbColour,
                                    into: out, imageWidth: width, imageHeight: height)
                } else {
                    let line = max(1, s / 2 + (s > 1 ? 1 : 0))
                    for (fx, fy, fw, fh) in [(x, y, swatch, line), (x, y + swatch - line, swatch, line),
                                             (x, y, line, swatch), (x + swatch - line, y, line, swatch)] {
                        BitmapFont.fill(x: fx, y: fy, width: fw, height: fh, color: rgbColour,
                                        into: out, imageWidth: width, imageHeight: height)
                    }
                }
                let text = isPresent ? legendTextColour : legendAbsentTextColour
                BitmapFont.draw(name, x: x + swatch + gap, y: y, scale: s, color: (text.r, text.g, text.b),
                                into: out, width: width, height: height)
            }
        }
        return best
    }

    /// The median gray of the image's border pixels: the film's background.
    static func borderMedian(_ film: [UInt8], width: Int, height: Int) -> Int {
        var histogram = [Int](repeating: 0, count: 256)
        var count = 0
        for x in 0..<width {
            histogram[Int(film[x])] += 1
            histogram[Int(film[(height - 1) * width + x])] += 1
            count += 2
        }
        for y in 0..<height {
            histogram[Int(film[y * width])] += 1
            histogram[Int(film[y * width + width - 1])] += 1
            count += 2
        }
        var seen = 0
        for v in 0..<256 {
            seen += histogram[v]
            if 2 * seen >= count { return v }
        }
        return 0
    }
}
