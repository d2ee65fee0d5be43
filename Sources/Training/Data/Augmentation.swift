import Foundation

/// Random changes applied to each training image at training resolution, the
/// same geometric change to its masks. Everything is drawn from a generator
/// keyed by (seed, epoch, image name), so a run is reproducible and an image's
/// augmentation does not depend on its place in the epoch or on threads.
public struct Augmentation: Sendable, Equatable {
    /// Mirror left ↔ right with probability 1/2 (left and right hands look alike mirrored).
    public var flip: Bool
    /// Rotation drawn uniformly in ±this many degrees, about the image centre.
    public var rotationDegrees: Double
    /// Zoom factor drawn uniformly in this range (> 1 enlarges).
    public var scale: ClosedRange<Double>
    /// Brightness: adds u·255 with u uniform in ±this.
    public var brightness: Double
    /// Contrast: multiplies the deviation from the image mean by 1 + u, u uniform in ±this.
    public var contrast: Double
    /// Probability of CLAHE local contrast (OpenCV's algorithm on the 8-bit image).
    public var localContrastProbability: Double
    public var localContrastClipLimit: Double
    public var localContrastTiles: Int
    /// Smooth random displacement (elastic deformation).
    public var elastic: Bool
    /// Standard deviation of the elastic displacement, as a fraction of the image side.
    public var elasticMagnitude: Double
    /// Cells per side of the grid the displacement is drawn on (smoothness).
    public var elasticGrid: Int

    public init(flip: Bool = false, rotationDegrees: Double = 0, scale: ClosedRange<Double> = 1...1,
                brightness: Double = 0, contrast: Double = 0, localContrastProbability: Double = 0,
                localContrastClipLimit: Double = 2, localContrastTiles: Int = 8,
                elastic: Bool = false, elasticMagnitude: Double = 0.01, elasticGrid: Int = 4) {
        self.flip = flip
        self.rotationDegrees = rotationDegrees
        self.scale = scale
        self.brightness = brightness
        self.contrast = contrast
        self.localContrastProbability = localContrastProbability
        self.localContrastClipLimit = localContrastClipLimit
        self.localContrastTiles = localContrastTiles
        self.elastic = elastic
        self.elasticMagnitude = elasticMagnitude
        self.elasticGrid = elasticGrid
    }

    /// Flip on, ±10°, scale 0.9…1.1, brightness and contrast ±0.1, CLAHE on a
    /// third of the images, elastic off.
    public static let standard = Augmentation(flip: true, rotationDegrees: 10, scale: 0.9...1.1, brightness: 0.1,
                                              contrast: 0.1, localContrastProbability: 1.0 / 3)
    public static let none = Augmentation()

    /// True when no setting changes an image.
    var isIdentity: Bool {
        !flip && rotationDegrees == 0 && scale == 1...1 && brightness == 0 && contrast == 0
            && localContrastProbability <= 0 && !elastic
    }
}

/// One image's draw from an `Augmentation`.
struct AugmentationDraw: Sendable {
    var flip = false
    var angle = 0.0  // radians
    var scale = 1.0
    var brightness = 0.0  // added, on the 0…255 scale
    var contrast = 1.0
    var localContrast = false
    /// Displacements (dx, dy) in pixels at (grid + 1)² control points, row-major; empty without elastic.
    var elasticGrid = 0
    var elasticField: [Double] = []

    var isGeometric: Bool { flip || angle != 0 || scale != 1 || !elasticField.isEmpty }

    /// Draws in a fixed order so that a setting left off does not shift the others' values.
    init(_ a: Augmentation, size: Int, random: inout DataRandom) {
        let doFlip = random.unit() < 0.5
        let angleU = random.uniform(-1, 1)
        let scaleU = random.unit()
        let brightnessU = random.uniform(-1, 1)
        let contrastU = random.uniform(-1, 1)
        let localU = random.unit()
        flip = a.flip && doFlip
        angle = a.rotationDegrees * angleU * .pi / 180
        scale = a.scale.lowerBound + (a.scale.upperBound - a.scale.lowerBound) * scaleU
        brightness = a.brightness * brightnessU * 255
        contrast = 1 + a.contrast * contrastU
        localContrast = localU < a.localContrastProbability
        if a.elastic && a.elasticMagnitude > 0 && a.elasticGrid >= 1 {
            elasticGrid = a.elasticGrid
            let sigma = a.elasticMagnitude * Double(size)
            elasticField = (0..<(2 * (a.elasticGrid + 1) * (a.elasticGrid + 1))).map { _ in
                // Box–Muller: a normal displacement at each control point.
                let u1 = max(random.unit(), 1e-300), u2 = random.unit()
                return sigma * (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
            }
        }
    }
}

/// Where each output pixel samples its source: one bilinear tap set per pixel,
/// shared by the image and its 29 masks so they cannot drift apart.
struct WarpMap {
    let size: Int
    /// Top-left source pixel of the 2×2 taps (may lie outside: those taps read 0).
    var x0: [Int32]
    var y0: [Int32]
    var wx: [Float]
    var wy: [Float]

    /// Output pixel centre p (relative to the image centre) samples the source at
    /// flip(R(−angle)·p / scale + elastic(p)), so the content turns by +angle and grows by scale.
    init(_ draw: AugmentationDraw, size: Int) {
        self.size = size
        let n = size * size
        x0 = [Int32](repeating: 0, count: n)
        y0 = [Int32](repeating: 0, count: n)
        wx = [Float](repeating: 0, count: n)
        wy = [Float](repeating: 0, count: n)
        let half = Double(size) / 2
        let c = cos(draw.angle) / draw.scale, s = sin(draw.angle) / draw.scale
        let grid = draw.elasticGrid
        for y in 0..<size {
            for x in 0..<size {
                let px = Double(x) + 0.5 - half, py = Double(y) + 0.5 - half
                var sx = c * px + s * py
                var sy = -s * px + c * py
                if grid > 0 {
                    // Bilinear interpolation of the control-point displacements.
                    let gx = (Double(x) + 0.5) / Double(size) * Double(grid)
                    let gy = (Double(y) + 0.5) / Double(size) * Double(grid)
                    let ix = min(Int(gx), grid - 1), iy = min(Int(gy), grid - 1)
                    let fx = gx - Double(ix), fy = gy - Double(iy)
                    func at(_ i: Int, _ j: Int, _ d: Int) -> Double { draw.elasticField[2 * (j * (grid + 1) + i) + d] }
                    for d in 0..<2 {
                        let v = (1 - fy) * ((1 - fx) * at(ix, iy, d) + fx * at(ix + 1, iy, d))
                            + fy * ((1 - fx) * at(ix, iy + 1, d) + fx * at(ix + 1, iy + 1, d))
                        if d == 0 { sx += v } else { sy += v }
                    }
                }
                if draw.flip { sx = -sx }
                let fx = sx + half - 0.5, fy = sy + half - 0.5
                let fx0 = fx.rounded(.down), fy0 = fy.rounded(.down)
                let i = y * size + x
                x0[i] = Int32(max(-2, min(Double(size + 1), fx0)))
                y0[i] = Int32(max(-2, min(Double(size + 1), fy0)))
                wx[i] = Float(fx - fx0)
                wy[i] = Float(fy - fy0)
            }
        }
    }

    /// Resamples one `size`×`size` plane (zero outside the source).
    func apply(_ src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<Float>) {
        let n = size
        func tap(_ x: Int, _ y: Int) -> Float { (x >= 0 && x < n && y >= 0 && y < n) ? src[y * n + x] : 0 }
        for i in 0..<(n * n) {
            let x = Int(x0[i]), y = Int(y0[i])
            let ax = wx[i], ay = wy[i]
            if x >= 0 && y >= 0 && x + 1 < n && y + 1 < n {
                let r0 = src + y * n + x, r1 = r0 + n
                dst[i] = (1 - ay) * ((1 - ax) * r0[0] + ax * r0[1]) + ay * ((1 - ax) * r1[0] + ax * r1[1])
            } else {
                dst[i] = (1 - ay) * ((1 - ax) * tap(x, y) + ax * tap(x + 1, y))
                    + ay * ((1 - ax) * tap(x, y + 1) + ax * tap(x + 1, y + 1))
            }
        }
    }
}

/// Contrast-limited adaptive histogram equalisation on an 8-bit image, as
/// OpenCV's `createCLAHE(clipLimit, (tiles, tiles)).apply` computes it: tile
/// histograms (on the image extended by BORDER_REFLECT_101 to a multiple of the
/// tile grid), clipped and redistributed, mapped through their cumulative sums,
/// and blended bilinearly between the four nearest tiles' maps.
public enum LocalContrast {
    public static func clahe(_ pixels: [UInt8], width: Int, height: Int, clipLimit: Double = 2,
                             tilesX: Int = 8, tilesY: Int = 8) -> [UInt8] {
        precondition(pixels.count == width * height && tilesX > 0 && tilesY > 0)
        let bins = 256
        // The image the histograms are taken from, extended to whole tiles.
        let extW = width % tilesX == 0 ? width : width + tilesX - width % tilesX
        let extH = height % tilesY == 0 ? height : height + tilesY - height % tilesY
        func reflect(_ i: Int, _ n: Int) -> Int { i < n ? i : max(0, 2 * (n - 1) - i) }
        let tileW = extW / tilesX, tileH = extH / tilesY
        let tileArea = tileW * tileH
        let lutScale = Float(bins - 1) / Float(tileArea)
        var limit = 0
        if clipLimit > 0 { limit = max(Int(clipLimit * Double(tileArea) / Double(bins)), 1) }

        var lut = [UInt8](repeating: 0, count: tilesX * tilesY * bins)
        var hist = [Int](repeating: 0, count: bins)
        for ty in 0..<tilesY {
            for tx in 0..<tilesX {
                for b in 0..<bins { hist[b] = 0 }
                for y in (ty * tileH)..<((ty + 1) * tileH) {
                    let row = reflect(y, height) * width
                    for x in (tx * tileW)..<((tx + 1) * tileW) { hist[Int(pixels[row + reflect(x, width)])] += 1 }
                }
                if limit > 0 {
                    var clipped = 0
                    for b in 0..<bins where hist[b] > limit {
                        clipped += hist[b] - limit
                        hist[b] = limit
                    }
                    let batch = clipped / bins
                    var residual = clipped - batch * bins
                    for b in 0..<bins { hist[b] += batch }
                    if residual != 0 {
                        let step = max(bins / residual, 1)
                        var b = 0
                        while b < bins && residual > 0 {
                            hist[b] += 1
                            b += step
                            residual -= 1
                        }
                    }
                }
                var sum = 0
                let base = (ty * tilesX + tx) * bins
                for b in 0..<bins {
                    sum += hist[b]
                    lut[base + b] = saturate(Float(sum) * lutScale)
                }
            }
        }

        var out = [UInt8](repeating: 0, count: width * height)
        let invW = 1 / Float(tileW), invH = 1 / Float(tileH)
        var ind1 = [Int](repeating: 0, count: width), ind2 = ind1
        var xa = [Float](repeating: 0, count: width), xa1 = xa
        for x in 0..<width {
            let txf = Float(x) * invW - 0.5
            var t1 = Int(txf.rounded(.down))
            var t2 = t1 + 1
            xa[x] = txf - Float(t1)
            xa1[x] = 1 - xa[x]
            t1 = max(t1, 0)
            t2 = min(t2, tilesX - 1)
            ind1[x] = t1 * bins
            ind2[x] = t2 * bins
        }
        for y in 0..<height {
            let tyf = Float(y) * invH - 0.5
            var t1 = Int(tyf.rounded(.down))
            var t2 = t1 + 1
            let ya = tyf - Float(t1), ya1 = 1 - ya
            t1 = max(t1, 0)
            t2 = min(t2, tilesY - 1)
            let plane1 = t1 * tilesX * bins, plane2 = t2 * tilesX * bins
            for x in 0..<width {
                let v = Int(pixels[y * width + x])
                let a = Float(lut[plane1 + ind1[x] + v]) * xa1[x] + Float(lut[plane1 + ind2[x] + v]) * xa[x]
                let b = Float(lut[plane2 + ind1[x] + v]) * xa1[x] + Float(lut[plane2 + ind2[x] + v]) * xa[x]
                out[y * width + x] = saturate(a * ya1 + b * ya)
            }
        }
        return out
    }

    /// cv::saturate_cast<uchar>(float): round half to even, then clamp.
    private static func saturate(_ v: Float) -> UInt8 {
        UInt8(max(0, min(255, v.rounded(.toNearestOrEven))))
    }
}
