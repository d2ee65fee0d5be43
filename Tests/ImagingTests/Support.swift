import Foundation
@testable import Imaging

/// Fixtures made by tools/make_imaging_fixtures.py, read from the source tree.
enum Fixtures {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: folder.appendingPathComponent(name)))
    }

    static func json(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: folder.appendingPathComponent(name))
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }
}

/// The real films shared beside the repository (absent on some machines).
enum RealFilms {
    static let folder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("../shared/data/real-radiographs").standardizedFileURL

    static var available: Bool {
        FileManager.default.fileExists(atPath: folder.appendingPathComponent("README.md").path)
    }

    static func names() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { !$0.hasSuffix(".md") }.sorted()
    }

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: folder.appendingPathComponent(name)))
    }

    /// The README's table: file number ("01") → stated width and height.
    static func statedSizes() throws -> [String: (Int, Int)] {
        let text = try String(contentsOf: folder.appendingPathComponent("README.md"), encoding: .utf8)
        var sizes: [String: (Int, Int)] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("| ") {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 2, let number = cells[0].split(separator: "_").first,
                  number.allSatisfy(\.isNumber) else { continue }
            let parts = cells[1].split(separator: "×")
            guard parts.count == 2, let w = Int(parts[0]), let h = Int(parts[1]) else { continue }
            sizes[String(number)] = (w, h)
        }
        return sizes
    }
}

/// The hashes and positions tools/make_imaging_fixtures.py uses.
func fnv1a64(_ bytes: [UInt8]) -> UInt64 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
    return h
}

func samplePositions(width: Int, height: Int, seed: UInt64, count: Int) -> [(Int, Int)] {
    var state = seed
    var out: [(Int, Int)] = []
    for _ in 0..<count {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        out.append((Int((z & 0xFFFF_FFFF) % UInt64(width)), Int((z >> 32) % UInt64(height))))
    }
    return out
}

/// A PNG chunk with its CRC, for hand-made headers.
func pngChunk(_ kind: String, _ data: [UInt8]) -> [UInt8] {
    let body = Array(kind.utf8) + data
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in body {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return bigEndian(UInt32(data.count)) + body + bigEndian(crc ^ 0xFFFF_FFFF)
}

func bigEndian(_ v: UInt32) -> [UInt8] {
    [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
}

/// The message of the ImageDecodeError `body` throws, or nil when it does not throw.
func decodeFailure(_ body: () throws -> Any) -> String? {
    do {
        _ = try body()
        return nil
    } catch let error as ImageDecodeError {
        return error.message
    } catch {
        return "unexpected error type: \(error)"
    }
}
