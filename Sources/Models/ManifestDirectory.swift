import Foundation
import SystemIO

/// A folder of named entries, each a subfolder holding one JSON manifest
/// (`models/<name>/model.json`, `releases/<name>/release.json`): listing,
/// reading with errors that name the entry, and publishing a new entry whole.
public struct ManifestDirectory: Sendable {
    public let root: String
    /// The manifest's file name inside each entry.
    public let file: String
    /// What an entry is called in messages ("model", "release").
    public let kind: String

    public init(root: String, file: String, kind: String) {
        self.root = root
        self.file = file
        self.kind = kind
    }

    public func names() -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return entries.filter { !$0.hasPrefix(".") && FileManager.default.fileExists(atPath: "\(root)/\($0)/\(file)") }.sorted()
    }

    public func read<Manifest: Decodable>(_ name: String, as type: Manifest.Type) throws -> Manifest {
        let path = "\(root)/\(name)/\(file)"
        guard let data = FileManager.default.contents(atPath: path) else {
            let known = names()
            throw ModelError("no \(kind) '\(name)' in \(root)" + (known.isEmpty ? " (none yet)" : " (have: \(known.joined(separator: ", ")))"))
        }
        do {
            return try JSONDecoder().decode(Manifest.self, from: data)
        } catch {
            throw ModelError("\(path): not a valid \(file): \(error)")
        }
    }

    /// Writes a new entry in a hidden folder beside its final place and renames
    /// it in, so the entry appears complete or not at all.
    public func publish(_ name: String, files: [(name: String, bytes: [UInt8])]) throws {
        try ModelStore.validate(name: name)
        let target = "\(root)/\(name)"
        guard !FileManager.default.fileExists(atPath: target) else { throw ModelError("\(kind) '\(name)' already exists in \(root)") }
        try AtomicFile.makeDirectories(root)
        let staging = "\(root)/.new-\(name)-\(ProcessInfo.processInfo.processIdentifier)"
        try? FileManager.default.removeItem(atPath: staging)
        try AtomicFile.makeDirectories(staging)
        do {
            for file in files { try AtomicFile.write(file.bytes, to: "\(staging)/\(file.name)") }
            guard rename(staging, target) == 0 else { throw FileError(path: target, operation: "rename", code: errno) }
            try AtomicFile.syncDirectory(root)
        } catch {
            try? FileManager.default.removeItem(atPath: staging)
            throw error
        }
    }

    /// Pretty, sorted JSON for manifests people read.
    public static func encode<Manifest: Encodable>(_ manifest: Manifest) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return [UInt8](try encoder.encode(manifest))
    }
}

#if canImport(Glibc)
import Glibc
#endif
