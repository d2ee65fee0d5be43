import Foundation
import TestSupport
import Testing
import Imaging
@testable import CompetitionFormat

/// Paths and helpers shared by the suites.
enum Support {
    /// The committed fixtures (copied into the test bundle).
    static let fixtures: String = {
        guard let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
            fatalError("Fixtures missing from the test bundle")
        }
        return url.path
    }()

    static func fixture(_ relative: String) -> String { (fixtures as NSString).appendingPathComponent(relative) }

    /// The repository root (this file is Tests/CompetitionFormatTests/Support.swift).
    static let repository: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// The real competition data beside the repository: `<repo>/../shared/data`.
    static let sharedData = (repository as NSString).appendingPathComponent("../shared/data")
    static let realAnnotation = (sharedData as NSString).appendingPathComponent("annotation-sample/ID001/image1661130828152_R.json")
    static let realMetadata = (sharedData as NSString).appendingPathComponent("meta_data.csv")

    static func json(_ relative: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fixture(relative))))
    }

    static func bytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

    static func text(_ path: String) throws -> String { String(decoding: try bytes(path), as: UTF8.self) }

    /// A PNG fixture as a 0/1 mask.
    static func maskPNG(_ path: String) throws -> BinaryMask {
        let image = try PNGCodec.decode(try bytes(path))
        precondition(image.channels == 1)
        return BinaryMask(width: image.width, height: image.height, pixels: image.samples.map { $0 != 0 ? 1 : 0 })
    }

    static func fnv1a64(_ text: String) -> String {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in text.utf8 {
            h ^= UInt64(b)
            h = h &* 0x100_0000_01B3
        }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// A fresh temporary directory.
    static func temporaryDirectory() throws -> String {
        let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("cf-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func write(_ text: String, to path: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    static func copyTree(_ from: String, to: String) throws {
        try FileManager.default.copyItem(atPath: from, toPath: to)
        // Fixtures may be read-only in the bundle; make the copy writable.
        if let walker = FileManager.default.enumerator(atPath: to) {
            while let entry = walker.nextObject() as? String {
                try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: (to as NSString).appendingPathComponent(entry))
            }
        }
    }
}

/// The built `bonectl`, run as a subprocess.
enum Bonectl {
    typealias Result = Product.Result
    static var path: String { Product.path("bonectl") }
    static func run(_ arguments: [String]) throws -> Result { try Product.run("bonectl", arguments) }
}

/// Byte-exact comparison of two files' contents that reports the first differing line, not the whole file.
func expectSameBytes(_ got: [UInt8], _ expected: [UInt8], _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    if got == expected { return }
    let a = String(decoding: got, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
    let b = String(decoding: expected, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
    let line = (0..<min(a.count, b.count)).first { a[$0] != b[$0] } ?? min(a.count, b.count)
    let show = { (lines: [Substring]) in line < lines.count ? String(lines[line].prefix(160)) : "<end of file>" }
    Issue.record("\(what): differs at line \(line + 1) (\(got.count) vs \(expected.count) bytes)\n  got:      \(show(a))\n  expected: \(show(b))",
                 sourceLocation: sourceLocation)
}
