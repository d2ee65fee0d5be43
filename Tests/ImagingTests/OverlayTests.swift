import Foundation
import Testing
@testable import Imaging

/// A film with a gentle gradient and 29 class rectangles in a 6×5 grid in the
/// middle, leaving the corners free for the legend.
private struct Scene {
    let size: Int
    let gray: GrayImage
    var classes: ClassBitmap
    var rects: [(x: Int, y: Int, w: Int, h: Int)] = []
    let names = (0..<29).map { $0 < 19 ? "finger-\($0 + 1)" : ["Trapezium", "Trapezoid", "Capitate", "Hamate", "Scaphoid",
                                                                "Lunate", "Triquetrum", "Pisiform", "Radius", "Ulna"][$0 - 19] }

    init(size: Int, skip: Set<Int> = []) {
        self.size = size
        var pixels = [Float](repeating: 0, count: size * size)
        for y in 0..<size { for x in 0..<size { pixels[y * size + x] = Float(30 + (x * 7 + y * 3) % 90) } }
        gray = GrayImage(width: size, height: size, pixels: pixels)
        classes = ClassBitmap(width: size, height: size, classCount: 29)
        let cell = size / 20
        for c in 0..<29 {
            let x = size * 3 / 10 + (c % 6) * cell * 3 / 2
            let y = size * 3 / 10 + (c / 6) * cell * 3 / 2
            rects.append((x, y, cell, cell))
            if skip.contains(c) { continue }
            for yy in y..<(y + cell) { for xx in x..<(x + cell) { classes.bits[yy * size + xx] |= 1 << UInt32(c) } }
        }
    }

    func filmByte(_ x: Int, _ y: Int) -> UInt8 { UInt8(30 + (x * 7 + y * 3) % 90) }
}

private func blend(_ g: UInt8, _ c: UInt8) -> UInt8 {
    UInt8((UInt32(g) * UInt32(256 - OverlayRenderer.fillAlpha256) + UInt32(c) * UInt32(OverlayRenderer.fillAlpha256) + 128) >> 8)
}

private func pixel(_ rgb: [UInt8], _ width: Int, _ x: Int, _ y: Int) -> (UInt8, UInt8, UInt8) {
    let i = (y * width + x) * 3
    return (rgb[i], rgb[i + 1], rgb[i + 2])
}

private func inside(_ box: LegendBox, _ x: Int, _ y: Int) -> Bool {
    x >= box.x && x < box.x + box.width && y >= box.y && y < box.y + box.height
}

@Suite struct OverlayTests {
    @Test func pngOfTheRightSizeWithFillContourGrayAndLegend() throws {
        let scene = Scene(size: 512)
        let png = try OverlayRenderer.render(gray: scene.gray, classes: scene.classes, classNames: scene.names)
        let decoded = try PNGCodec.decode(png)
        #expect(decoded.width == 512 && decoded.height == 512 && decoded.channels == 3 && decoded.bitDepth == 8)
        let rgb = decoded.samples.map { UInt8($0) }
        let legend = try #require(try OverlayRenderer.renderPixels(gray: scene.gray, classes: scene.classes,
                                                                   classNames: scene.names).legend)

        for (c, r) in scene.rects.enumerated() {
            let colour = OverlayRenderer.palette[c]
            // Inside, away from the outline: the film blended with the class colour.
            let (cx, cy) = (r.x + r.w / 2, r.y + r.h / 2)
            let g = scene.filmByte(cx, cy)
            #expect(pixel(rgb, 512, cx, cy) == (blend(g, colour.r), blend(g, colour.g), blend(g, colour.b)), "class \(c) fill")
            // Below 1024 px the outline is 1 px: the edge in full colour, the next pixel in filled.
            #expect(pixel(rgb, 512, r.x, cy) == (colour.r, colour.g, colour.b), "class \(c) left edge")
            #expect(pixel(rgb, 512, cx, r.y + r.h - 1) == (colour.r, colour.g, colour.b), "class \(c) bottom edge")
            let g1 = scene.filmByte(r.x + 1, cy)
            #expect(pixel(rgb, 512, r.x + 1, cy) == (blend(g1, colour.r), blend(g1, colour.g), blend(g1, colour.b)))
            // Just outside: plain film.
            let g0 = scene.filmByte(r.x - 1, cy)
            #expect(pixel(rgb, 512, r.x - 1, cy) == (g0, g0, g0), "left of class \(c)")
            // The legend covers no mask here: the corners are free.
            #expect(!inside(legend, r.x, r.y) && !inside(legend, r.x + r.w - 1, r.y + r.h - 1))
        }

        // Background outside masks and legend stays gray, at the film's value.
        var checked = 0
        for y in stride(from: 0, to: 512, by: 5) {
            for x in stride(from: 0, to: 512, by: 5) where scene.classes.bits[y * 512 + x] == 0 && !inside(legend, x, y) {
                let g = scene.filmByte(x, y)
                #expect(pixel(rgb, 512, x, y) == (g, g, g))
                checked += 1
            }
        }
        #expect(checked > 5000)

        // Every class's swatch colour appears in the legend, and so does its text.
        var swatchPixels = [Int](repeating: 0, count: 29)
        var textPixels = 0
        let text = OverlayRenderer.legendTextColour
        for y in legend.y..<(legend.y + legend.height) {
            for x in legend.x..<(legend.x + legend.width) {
                let p = pixel(rgb, 512, x, y)
                if p == (text.r, text.g, text.b) { textPixels += 1 }
                for (c, colour) in OverlayRenderer.palette.enumerated() where p == (colour.r, colour.g, colour.b) {
                    swatchPixels[c] += 1
                }
            }
        }
        let s = legend.fontScale
        for c in 0..<29 { #expect(swatchPixels[c] >= 49 * s * s, "class \(c): \(swatchPixels[c]) swatch pixels") }
        // "finger-1" … "Ulna": a few hundred lit font pixels at least.
        #expect(textPixels > 29 * 20 * s * s)
    }

    @Test func legendNamesAreDrawnWithTheFont() throws {
        let scene = Scene(size: 600)
        let image = try OverlayRenderer.renderPixels(gray: scene.gray, classes: scene.classes, classNames: scene.names)
        let legend = try #require(image.legend)
        #expect(legend.fontScale == 1)
        // Redraw the first name where the renderer put it and compare lit pixels.
        let pad = 4, swatch = 7, gap = 3
        let textX = legend.x + pad + swatch + gap, textY = legend.y + pad
        var expected = [UInt8](repeating: 0, count: 600 * 600 * 3)
        expected.withUnsafeMutableBufferPointer { buffer in
            BitmapFont.draw(scene.names[0], x: textX, y: textY, scale: 1, color: (255, 255, 255), into: buffer, width: 600, height: 600)
        }
        let text = OverlayRenderer.legendTextColour
        var lit = 0
        for y in textY..<(textY + 8) {
            for x in textX..<(textX + BitmapFont.width(of: scene.names[0], scale: 1)) {
                let want = expected[(y * 600 + x) * 3] == 255
                let got = pixel(image.rgb, 600, x, y) == (text.r, text.g, text.b)
                #expect(want == got, "font pixel (\(x - textX), \(y - textY))")
                if got { lit += 1 }
            }
        }
        #expect(lit > 20)
    }

    @Test func absentClassesGetHollowSwatchesAndDimNames() throws {
        let scene = Scene(size: 512, skip: [5])
        let image = try OverlayRenderer.renderPixels(gray: scene.gray, classes: scene.classes, classNames: scene.names)
        let legend = try #require(image.legend)
        let rows = (29 + legend.columns - 1) / legend.columns
        let s = legend.fontScale
        let columnWidth = legend.width / legend.columns
        func swatchOrigin(_ c: Int) -> (Int, Int) {
            (legend.x + (c / rows) * columnWidth + 4 * s, legend.y + 4 * s + (c % rows) * 10 * s)
        }
        let (ax, ay) = swatchOrigin(5)
        let colour = OverlayRenderer.palette[5]
        #expect(pixel(image.rgb, 512, ax, ay) == (colour.r, colour.g, colour.b))
        #expect(pixel(image.rgb, 512, ax + 3 * s, ay + 3 * s) != (colour.r, colour.g, colour.b))
        let (px, py) = swatchOrigin(6)
        let present = OverlayRenderer.palette[6]
        #expect(pixel(image.rgb, 512, px + 3 * s, py + 3 * s) == (present.r, present.g, present.b))
    }

    @Test func largeImagesGetTwoPixelContoursAndAScaledLegend() throws {
        let scene = Scene(size: 2048)
        let image = try OverlayRenderer.renderPixels(gray: scene.gray, classes: scene.classes, classNames: scene.names)
        #expect(image.width == 2048 && image.height == 2048)
        #expect(image.legend?.fontScale == 3)
        let r = scene.rects[10], colour = OverlayRenderer.palette[10]
        let cy = r.y + r.h / 2
        #expect(pixel(image.rgb, 2048, r.x, cy) == (colour.r, colour.g, colour.b))
        #expect(pixel(image.rgb, 2048, r.x + 1, cy) == (colour.r, colour.g, colour.b))
        let g = scene.filmByte(r.x + 2, cy)
        #expect(pixel(image.rgb, 2048, r.x + 2, cy) == (blend(g, colour.r), blend(g, colour.g), blend(g, colour.b)))
    }

    @Test func overlappingClassesBlendInClassOrderAndTheTopOutlineWins() throws {
        var pixels = [Float](repeating: 100, count: 64 * 64)
        pixels[0] = 0
        let gray = GrayImage(width: 64, height: 64, pixels: pixels)
        var classes = ClassBitmap(width: 64, height: 64, classCount: 3)
        for y in 10..<40 { for x in 10..<40 { classes.bits[y * 64 + x] |= 1 << 0 } }   // under
        for y in 20..<30 { for x in 20..<30 { classes.bits[y * 64 + x] |= 1 << 2 } }   // over
        let image = try OverlayRenderer.renderPixels(gray: gray, classes: classes, classNames: ["a", "b", "c"])
        let a = OverlayRenderer.palette[0], c = OverlayRenderer.palette[2]
        let once = (blend(100, a.r), blend(100, a.g), blend(100, a.b))
        let twice = (blend(once.0, c.r), blend(once.1, c.g), blend(once.2, c.b))
        #expect(pixel(image.rgb, 64, 25, 25) == twice)
        #expect(pixel(image.rgb, 64, 20, 25) == (c.r, c.g, c.b))   // c's outline inside a
        #expect(pixel(image.rgb, 64, 15, 25) == once)
    }

    @Test func nonFiniteFilmValuesAreClampedNotFatal() throws {
        let gray = GrayImage(width: 4, height: 1, pixels: [.nan, -.infinity, .infinity, 300])
        let image = try OverlayRenderer.renderPixels(gray: gray, classes: ClassBitmap(width: 4, height: 1, classCount: 1),
                                                     classNames: ["a"])
        #expect(image.rgb == [0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255])
    }

    @Test func imagesTooSmallForTheLegendGetNone() throws {
        let gray = GrayImage(width: 60, height: 60, pixels: [Float](repeating: 50, count: 3600))
        let classes = ClassBitmap(width: 60, height: 60, classCount: 29)
        let image = try OverlayRenderer.renderPixels(gray: gray, classes: classes, classNames: (0..<29).map { "finger-\($0)" })
        #expect(image.legend == nil)
        #expect(image.rgb.allSatisfy { $0 == 50 })
    }

    @Test func scaledOverlayIsBilinearForTheFilmAndNearestForMasks() throws {
        var pixels = [Float](repeating: 0, count: 200 * 100)
        for y in 0..<100 { for x in 0..<200 { pixels[y * 200 + x] = Float((x / 2) % 2 == 0 ? 40 : 80) + Float(y % 2) * 10 } }
        let gray = GrayImage(width: 200, height: 100, pixels: pixels)
        var classes = ClassBitmap(width: 200, height: 100, classCount: 1)
        for y in 20..<60 { for x in 100..<180 { classes.bits[y * 200 + x] = 1 } }
        let png = try OverlayRenderer.render(gray: gray, classes: classes, classNames: ["x"], scale: 0.5)
        let decoded = try PNGCodec.decode(png)
        #expect(decoded.width == 100 && decoded.height == 50)
        let rgb = decoded.samples.map { UInt8($0) }
        // Output pixel (x, y) samples source (2x+0.5, 2y+0.5): the mean of a 2×2 block.
        let expectLeft = UInt8(((40 + 40 + 50 + 50) as Float / 4).rounded())   // block at x 0–1
        #expect(pixel(rgb, 100, 0, 0) == (expectLeft, expectLeft, expectLeft))
        let expectRight = UInt8(((80 + 80 + 90 + 90) as Float / 4).rounded())  // block at x 2–3
        #expect(pixel(rgb, 100, 1, 0) == (expectRight, expectRight, expectRight))
        // The mask [100, 180)×[20, 60) lands on [50, 90)×[10, 30).
        let colour = OverlayRenderer.palette[0]
        #expect(pixel(rgb, 100, 50, 20) == (colour.r, colour.g, colour.b))
        #expect(pixel(rgb, 100, 49, 20).0 == pixel(rgb, 100, 49, 20).1)
        #expect(pixel(rgb, 100, 70, 29) == (colour.r, colour.g, colour.b))
        #expect(pixel(rgb, 100, 70, 30).0 == pixel(rgb, 100, 70, 30).2)
    }

    @Test func documentedPaletteIsThePalette() throws {
        let doc = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/overlay-colours.md")
        let text = try String(contentsOf: doc, encoding: .utf8)
        var documented: [Int: OverlayRenderer.Colour] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("| ") {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 3, let index = Int(cells[0]) else { continue }
            let rgb = cells[2].split(separator: ",").compactMap { UInt8($0.trimmingCharacters(in: .whitespaces)) }
            guard rgb.count == 3 else { continue }
            documented[index] = OverlayRenderer.Colour(rgb[0], rgb[1], rgb[2])
        }
        #expect(documented.count == OverlayRenderer.palette.count)
        for (c, colour) in OverlayRenderer.palette.enumerated() {
            #expect(documented[c] == colour, "class \(c)")
            #expect(!(colour.r == colour.g && colour.g == colour.b), "class \(c) is a gray, like the film")
        }
        #expect(Set(OverlayRenderer.palette.map { [$0.r, $0.g, $0.b] }).count == OverlayRenderer.palette.count)
    }

    @Test func mismatchesAreErrors() throws {
        let gray = GrayImage(width: 10, height: 10, pixels: [Float](repeating: 0, count: 100))
        let classes = ClassBitmap(width: 10, height: 10, classCount: 2)
        func message(_ body: () throws -> Any) -> String? {
            do { _ = try body(); return nil } catch let e as OverlayError { return e.message } catch { return "\(error)" }
        }
        #expect(message { try OverlayRenderer.render(gray: gray, classes: ClassBitmap(width: 9, height: 10, classCount: 2),
                                                     classNames: ["a", "b"]) }
                == "masks are 9x10 but the image is 10x10")
        #expect(message { try OverlayRenderer.render(gray: gray, classes: classes, classNames: ["a"]) } == "1 class names for 2 classes")
        #expect(message { try OverlayRenderer.render(gray: gray, classes: classes, classNames: ["a", "b"], scale: 0) }
                == "overlay scale must be above 0, not 0.0")
        #expect(message { try OverlayRenderer.render(gray: gray, classes: ClassBitmap(width: 10, height: 10, classCount: 30),
                                                     classNames: (0..<30).map(String.init)) }
                == "the overlay has colours for 29 classes, not 30")
    }

    @Test func legendAvoidsTheCornerWithMasks() throws {
        // Masks fill the top-right quarter; the legend must go elsewhere.
        let size = 800
        let gray = GrayImage(width: size, height: size, pixels: [Float](repeating: 20, count: size * size))
        var classes = ClassBitmap(width: size, height: size, classCount: 29)
        for y in 0..<(size / 2) { for x in (size / 2)..<size { classes.bits[y * size + x] = 1 << UInt32((x / 20) % 29) } }
        let names = (0..<29).map { "class-\($0)" }
        let image = try OverlayRenderer.renderPixels(gray: gray, classes: classes, classNames: names)
        let legend = try #require(image.legend)
        #expect(!(legend.x + legend.width > size / 2 && legend.y < size / 2), "legend at \(legend)")
    }
}
