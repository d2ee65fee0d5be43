import CompetitionFormat
import Foundation
import Imaging
import Testing
@testable import Synthesis

/// A fresh empty folder under the system's temporary directory.
private func temporaryFolder(_ name: String) throws -> String {
    let path = NSTemporaryDirectory() + "synth-tests-\(name)-\(getpid())-\(UInt32.random(in: 0 ... .max))"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

private func files(under root: String) throws -> [String] {
    let e = FileManager.default.enumerator(atPath: root)!
    var out: [String] = []
    while let p = e.nextObject() as? String {
        var isDir: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: root + "/" + p, isDirectory: &isDir)
        if !isDir.boolValue { out.append(p) }
    }
    return out.sorted()
}

/// The label test's own rasteriser, independent of the renderer's scanline code:
/// pixel (x, y) belongs to a polygon when the point (x, y) is inside by the
/// even–odd rule or lies within half a pixel of its outline.
private func covers(_ polygon: [Point], _ x: Int, _ y: Int) -> Bool {
    let px = Double(x), py = Double(y)
    var inside = false
    var nearest = Double.infinity
    for i in 0..<polygon.count {
        let a = polygon[i], b = polygon[(i + 1) % polygon.count]
        let ax = Double(a.x), ay = Double(a.y), bx = Double(b.x), by = Double(b.y)
        if (ay <= py && py < by) || (by <= py && py < ay) {
            let xc = ax + (py - ay) * (bx - ax) / (by - ay)
            if xc <= px { inside.toggle() }
        }
        let dx = bx - ax, dy = by - ay
        let len2 = dx * dx + dy * dy
        let t = len2 > 0 ? max(0, min(1, ((px - ax) * dx + (py - ay) * dy) / len2)) : 0
        let qx = px - ax - t * dx, qy = py - ay - t * dy
        nearest = min(nearest, (qx * qx + qy * qy).squareRoot())
    }
    return inside || nearest <= 0.5
}

private func centroid(_ polygon: [Point]) -> (Double, Double) {
    let n = Double(polygon.count)
    return (polygon.reduce(0) { $0 + Double($1.x) } / n, polygon.reduce(0) { $0 + Double($1.y) } / n)
}

@Suite struct SynthesisTests {
    @Test func layoutSchemaAndMetadata() throws {
        let root = try temporaryFolder("layout")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try SynthDataset.generate(out: root, count: 3, options: SynthOptions(size: 160, seed: 7), jobs: 2)

        let all = try files(under: root)
        let pngs = all.filter { $0.hasPrefix("DCM/") }
        let jsons = all.filter { $0.hasPrefix("outputs_json/") }
        #expect(pngs.count == 3 && jsons.count == 3)
        #expect(all.contains("meta_data.csv"))
        let stemPattern = try Regex(#"^(DCM|outputs_json)/ID00[12]/image\d{13}_[LR]\.(png|json)$"#)
        for f in pngs + jsons { #expect(f.wholeMatch(of: stemPattern) != nil, "bad name \(f)") }
        // Two hands for ID001 (right and left), one for ID002; every PNG has its JSON.
        #expect(pngs.filter { $0.hasPrefix("DCM/ID001/") }.count == 2)
        #expect(pngs.filter { $0.hasPrefix("DCM/ID001/") }.filter { $0.hasSuffix("_R.png") }.count == 1)
        #expect(pngs.filter { $0.hasPrefix("DCM/ID002/") }.count == 1)
        #expect(pngs.map { String($0.dropFirst(4).dropLast(4)) } == jsons.map { String($0.dropFirst(13).dropLast(5)) })

        for (png, json) in zip(pngs, jsons) {
            let image = try PNGCodec.decode(Array(try Data(contentsOf: URL(fileURLWithPath: root + "/" + png))))
            #expect(image.width == 160 && image.height == 160 && image.channels == 1 && image.bitDepth == 8)
            let file = try AnnotationFile.read(path: root + "/" + json)
            #expect(file.annotations.map(\.label) == BoneClasses.names)
            #expect(Set(file.annotations.map(\.id)).count == 29)
            for a in file.annotations {
                #expect(a.type == "poly_seg")
                #expect(a.id.hasPrefix("\(BoneClasses.index(of: a.label)! + 1)-"))
                #expect(a.points.count >= 3)
                #expect(a.points.allSatisfy { (0..<160).contains($0.x) && (0..<160).contains($0.y) }, "\(a.label) outside")
            }
            let stem = String(png.split(separator: "/").last!.dropLast(4))
            #expect(file.filename == stem + ".png")
            #expect(file.parentPath.hasSuffix("/" + png.split(separator: "/")[1]))
            #expect(file.metadata == .init(height: 160, width: 160))
            #expect(file.fileID.count == 24 && file.lastModifierID.count == 24)
            // The raw JSON carries the schema's exact key names.
            let raw = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: root + "/" + json))) as! [String: Any]
            #expect(Set(raw.keys) == ["annotations", "attributes", "file_id", "filename", "parent_path", "last_modifier_id", "metadata"])
            let first = (raw["annotations"] as! [[String: Any]])[0]
            #expect(Set(first.keys) == ["id", "type", "attributes", "points", "label"])
        }

        let csv = try String(contentsOfFile: root + "/meta_data.csv", encoding: .utf8)
        let lines = csv.components(separatedBy: "\r\n")
        #expect(lines[0] == "ID,나이,성별,체중(몸무게),키(신장)")
        #expect(lines.count == 4 && lines[3].isEmpty)
        for (i, line) in lines[1...2].enumerated() {
            let c = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            #expect(c.count == 5)
            #expect(c[0] == String(format: "%03d", i + 1))
            #expect(c[2] == "_x0008_남" || c[2] == "_x0008_여")
            let age = Double(c[1])!, weight = Double(c[3])!, height = Double(c[4])!
            #expect((18...80).contains(age) && (40...120).contains(weight) && (145...195).contains(height), "\(line)")
        }
    }

    @Test func sameSeedSameBytesAnyJobs() throws {
        let a = try temporaryFolder("a"), b = try temporaryFolder("b"), c = try temporaryFolder("c")
        defer { for p in [a, b, c] { try? FileManager.default.removeItem(atPath: p) } }
        let options = SynthOptions(size: 128, seed: 42, flexedFraction: 0.5, accessoryFraction: 0.5)
        try SynthDataset.generate(out: a, count: 4, options: options, jobs: 1)
        try SynthDataset.generate(out: b, count: 4, options: options, jobs: 3)
        var other = options
        other.seed = 43
        try SynthDataset.generate(out: c, count: 4, options: other, jobs: 2)
        let names = try files(under: a)
        #expect(names.count == 9)
        #expect(try files(under: b) == names)
        for name in names {
            let x = try Data(contentsOf: URL(fileURLWithPath: a + "/" + name))
            let y = try Data(contentsOf: URL(fileURLWithPath: b + "/" + name))
            #expect(x == y, "\(name) differs between runs of the same seed")
        }
        // Another seed gives other patients, names and pixels.
        let namesC = try files(under: c)
        #expect(namesC != names)
        let pngA = try Data(contentsOf: URL(fileURLWithPath: a + "/" + names.first { $0.hasSuffix(".png") }!))
        let pngC = try Data(contentsOf: URL(fileURLWithPath: c + "/" + namesC.first { $0.hasSuffix(".png") }!))
        #expect(pngA != pngC)
    }

    /// Each bone's density is present on exactly the pixels its written polygon covers,
    /// no bone density lies outside the hand, and the film shows the bones brighter.
    @Test(arguments: [(UInt64(1), false), (2, true), (3, false), (4, true), (5, true)])
    func labelsAreExact(stream: UInt64, left: Bool) throws {
        let options = SynthOptions(size: 192, seed: 9, flexedFraction: stream % 2 == 0 ? 1 : 0, accessoryFraction: 1)
        let hand = Radiograph.render(options: options, stream: stream, isLeft: left, patientScale: 1)
        #expect(hand.polygons.count == 29 && hand.boneLayers.count == 29)
        var boneSum = [Float](repeating: 0, count: 192 * 192)
        for (k, layer) in hand.boneLayers.enumerated() {
            let polygon = hand.polygons[k]
            #expect(layer.label == BoneClasses.names[k])
            var covered = 0
            for y in max(0, layer.originY - 2)..<min(192, layer.originY + layer.height + 2) {
                for x in max(0, layer.originX - 2)..<min(192, layer.originX + layer.width + 2) {
                    let inPolygon = covers(polygon, x, y)
                    let value = layer.value(x: x, y: y)
                    if inPolygon != (value > 0) {
                        Issue.record("\(layer.label) at (\(x), \(y)): polygon \(inPolygon), density \(value)")
                        return
                    }
                    if inPolygon { covered += 1 }
                    boneSum[y * 192 + x] += value
                }
            }
            #expect(covered > 0, "\(layer.label) covers no pixel")
        }
        var bone: [Float] = [], softOnly: [Float] = [], background: [Float] = []
        for i in 0..<(192 * 192) {
            if boneSum[i] > 0 {
                #expect(hand.softTissue[i] > 0, "bone density outside the hand at pixel \(i)")
            }
            let v = Float(hand.pixels[i])
            if !hand.foreign.isEmpty && hand.foreign[i] > 0 { continue }
            if boneSum[i] > 0.3 { bone.append(v) } else if boneSum[i] == 0 && hand.softTissue[i] > 40 { softOnly.append(v) } else if hand.softTissue[i] == 0 { background.append(v) }
        }
        func mean(_ a: [Float]) -> Float { a.reduce(0, +) / Float(max(1, a.count)) }
        #expect(!bone.isEmpty && !softOnly.isEmpty && !background.isEmpty)
        #expect(mean(bone) > mean(softOnly) + 20 && mean(softOnly) > mean(background) + 10,
                "bone \(mean(bone)), soft \(mean(softOnly)), background \(mean(background))")
        #expect(!hand.accessories.isEmpty)
    }

    @Test func everyLabelOnceAndAnatomyInPlace() throws {
        for stream in UInt64(0)..<16 {
            let left = stream % 2 == 1
            let options = SynthOptions(size: 256, seed: 123, flexedFraction: 0.5, accessoryFraction: 0.3)
            // Tall patients' hands too must fit (shrunk if need be) with the forearm leaving the image.
            let scale = [1.0, 1.28, 0.85][Int(stream % 3)]
            let hand = Radiograph.render(options: options, stream: stream, isLeft: left, patientScale: scale)
            #expect(hand.polygons.count == BoneClasses.count)
            #expect(Set(hand.boneLayers.map(\.label)) == Set(BoneClasses.names))
            let c = hand.polygons.map(centroid)
            func index(_ name: String) -> Int { BoneClasses.index(of: name)! }
            for (k, polygon) in hand.polygons.enumerated() {
                #expect(polygon.count >= 3)
                #expect(polygon.allSatisfy { (0..<256).contains($0.x) && (0..<256).contains($0.y) })
                // Hand bones keep clear of the image edge; the forearm bones leave through it.
                let touchesEdge = polygon.contains { $0.x == 0 || $0.y == 0 || $0.x == 255 || $0.y == 255 }
                #expect(touchesEdge == (k >= 27), "\(BoneClasses.names[k]) edge contact \(touchesEdge), stream \(stream)")
            }
            // Each ray runs tip → metacarpal away from the wrist: distance to the capitate decreases.
            let capitate = c[index("Capitate")]
            func distance(_ k: Int) -> Double { ((c[k].0 - capitate.0) * (c[k].0 - capitate.0) + (c[k].1 - capitate.1) * (c[k].1 - capitate.1)).squareRoot() }
            for ray in [[1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15], [16, 17, 18, 19]] {
                let d = ray.map { distance($0 - 1) }
                #expect(d == d.sorted(by: >), "ray \(ray) out of order, stream \(stream)")
            }
            // Thumb on the image left for a right hand (PA, as in the real set), on the right for a left hand.
            let thumbX = c[index("finger-3")].0, littleX = c[index("finger-19")].0
            #expect(left ? thumbX > littleX : thumbX < littleX, "stream \(stream), left \(left)")
            // The radius is on the thumb side, the ulna on the little-finger side.
            #expect(left ? c[index("Radius")].0 > c[index("Ulna")].0 : c[index("Radius")].0 < c[index("Ulna")].0)
            // Pisiform overlaps Triquetrum and Trapezium overlaps Trapezoid, as on real films
            // (and in the real annotation); a finger's bones do not overlap when straight.
            for (a, b) in [("Pisiform", "Triquetrum"), ("Trapezium", "Trapezoid")] {
                let p = hand.polygons[index(a)], q = hand.polygons[index(b)]
                let box = Box(p.map { Vec2(Double($0.x), Double($0.y)) })
                var shared = 0
                for y in Int(box.minY)...Int(box.maxY) {
                    for x in Int(box.minX)...Int(box.maxX) where covers(p, x, y) && covers(q, x, y) { shared += 1 }
                }
                #expect(shared > 0, "\(a) does not overlap \(b), stream \(stream)")
            }
        }
    }

    @Test func planNumbersPatientsAndHands() {
        let plans = SynthDataset.plan(count: 5, seed: 3)
        #expect(plans.map(\.patient.id) == [1, 1, 2, 2, 3])
        #expect(plans.map(\.isLeft) == [false, true, false, true, false])
        #expect(Set(plans.map(\.stem)).count == 5)
        #expect(plans.allSatisfy { $0.stem.count == "image".count + 13 + 2 })
        #expect(SynthDataset.plan(count: 5, seed: 3) == plans)
    }

    @Test func badOptionsNameTheValue() throws {
        let root = try temporaryFolder("bad")
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(throws: SynthError.self) { try SynthDataset.generate(out: root, count: 0, options: SynthOptions(), jobs: 1) }
        do {
            try SynthDataset.generate(out: root, count: 2, options: SynthOptions(size: 10), jobs: 1)
            Issue.record("size 10 accepted")
        } catch let error as SynthError {
            #expect(error.description.contains("--size 10"))
        }
        do {
            try SynthDataset.generate(out: root, count: 2, options: SynthOptions(size: 128, flexedFraction: 1.5), jobs: 1)
            Issue.record("flexed fraction 1.5 accepted")
        } catch let error as SynthError {
            #expect(error.description.contains("--flexed-fraction 1.5"))
        }
    }
}
