import CompetitionFormat
import Foundation

/// What one synthetic radiograph is made of, kept for tests and tools.
public struct RenderedHand: Sendable {
    public let size: Int
    /// 8-bit gray pixels, row-major.
    public let pixels: [UInt8]
    /// One polygon per class, in `BoneClasses.names` order, integer pixels.
    public let polygons: [[Point]]
    /// One density layer per class, in the same order, rendered from the same polygons.
    public let boneLayers: [BoneLayer]
    /// Soft-tissue thickness per pixel (template pixels); zero outside the hand and forearm.
    public let softTissue: [Float]
    /// Metal (rings, watch, pins) and nail-art density per pixel; never part of a label.
    /// Empty when the image has no accessory.
    public let foreign: [Float]
    public let isLeft: Bool
    public let wristFlexed: Bool
    /// Names of the accessories drawn ("ring", "watch", "pin", "plate", "nail art").
    public let accessories: [String]
}

/// Options that shape a data set.
public struct SynthOptions: Sendable {
    public var size: Int
    public var seed: UInt64
    public var flexedFraction: Double
    public var accessoryFraction: Double

    public init(size: Int = 2048, seed: UInt64 = 0, flexedFraction: Double = 0.12, accessoryFraction: Double = 0.05) {
        self.size = size
        self.seed = seed
        self.flexedFraction = flexedFraction
        self.accessoryFraction = accessoryFraction
    }
}

public enum Radiograph {
    /// Renders one hand. Deterministic in (`options.seed`, `stream`), whatever thread runs it.
    public static func render(options: SynthOptions, stream: UInt64, isLeft: Bool, patientScale: Double) -> RenderedHand {
        let size = options.size
        var rng = SplitMix64(seed: options.seed, stream: stream, salt: 1)
        let pose = HandPose.random(&rng, isLeft: isLeft, patientScale: patientScale, flexedFraction: options.flexedFraction)
        let hand = HandBuilder.build(pose: pose, size: size)
        let texture = ValueNoise(seed: rng.next(), cell: Float(max(2, 8 * hand.pixelScale)))

        // Bones: integer polygons first, density from exactly those polygons.
        var polygons: [[Point]] = []
        var layers: [BoneLayer] = []
        for bone in hand.bones {
            let integer = Polygon.rounded(bone.outline)
            polygons.append(integer.map { Point(x: $0.0, y: $0.1) })
            layers.append(Raster.renderBone(label: bone.label, polygon: integer, halfWidth: bone.halfWidth,
                                            cortex: bone.cortex, medulla: bone.medulla, proximal: bone.proximal,
                                            distal: bone.distal, tubular: bone.tubular, pixelScale: hand.pixelScale,
                                            imageSize: size, texture: texture))
        }

        // Soft tissue on a coarse grid, upsampled.
        let step = max(1, size / 512)
        var coarse = Raster.softTissue(hand.soft, size: size, step: step, pixelScale: hand.pixelScale)
        // Fat and muscle make soft tissue uneven: a gentle low-frequency modulation (never to zero).
        let tissue = ValueNoise(seed: rng.next(), cell: Float(70 * hand.pixelScale))
        let tissueAmount = Float(rng.uniform(0.06, 0.16))
        for gy in 0..<coarse.side {
            for gx in 0..<coarse.side where coarse.grid[gy * coarse.side + gx] > 0 {
                let n = tissue.sample(Float(gx * step), Float(gy * step))
                coarse.grid[gy * coarse.side + gx] *= 1 + tissueAmount * (2 * n - 1)
            }
        }
        let soft = upsample(coarse.grid, side: coarse.side, step: step, size: size)

        // Foreign bodies.
        var foreign: [Float] = []
        var accessories: [String] = []
        if rng.chance(options.accessoryFraction) {
            foreign = [Float](repeating: 0, count: size * size)
            accessories = Accessories.draw(into: &foreign, size: size, hand: hand, rng: &rng)
        }
        // A lead side marker ("R" or "L") in a free corner of many films.
        if rng.chance(0.35) {
            if foreign.isEmpty { foreign = [Float](repeating: 0, count: size * size) }
            if Accessories.marker(into: &foreign, soft: soft, size: size, letter: isLeft ? "L" : "R",
                                  pixelScale: hand.pixelScale, rng: &rng) {
                accessories.append("marker")
            } else if accessories.isEmpty {
                foreign = []
            }
        }

        let pixels = Film.expose(layers: layers, soft: soft, foreign: foreign, size: size,
                                 pixelScale: hand.pixelScale, rng: &rng)
        return RenderedHand(size: size, pixels: pixels, polygons: polygons, boneLayers: layers, softTissue: soft,
                            foreign: foreign, isLeft: isLeft, wristFlexed: hand.wristFlexed, accessories: accessories)
    }

    /// Bilinear upsampling of a grid sampled every `step` pixels (grid point i at pixel i·step).
    static func upsample(_ grid: [Float], side: Int, step: Int, size: Int) -> [Float] {
        if step == 1 {
            var out = [Float](repeating: 0, count: size * size)
            for y in 0..<size { for x in 0..<size { out[y * size + x] = grid[y * side + x] } }
            return out
        }
        var out = [Float](repeating: 0, count: size * size)
        let inv = 1 / Float(step)
        grid.withUnsafeBufferPointer { g in
            out.withUnsafeMutableBufferPointer { o in
                for y in 0..<size {
                    let gy = y / step
                    let ty = Float(y - gy * step) * inv
                    let r0 = gy * side, r1 = min(gy + 1, side - 1) * side
                    for x in 0..<size {
                        let gx = x / step
                        let tx = Float(x - gx * step) * inv
                        let gx1 = min(gx + 1, side - 1)
                        let a = g[r0 + gx], b = g[r0 + gx1], c = g[r1 + gx], d = g[r1 + gx1]
                        if a == 0 && b == 0 && c == 0 && d == 0 { continue }
                        let top = a + (b - a) * tx, bottom = c + (d - c) * tx
                        o[y * size + x] = top + (bottom - top) * ty
                    }
                }
            }
        }
        return out
    }
}
