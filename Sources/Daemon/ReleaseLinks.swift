import Foundation
import SystemIO

public struct ReleaseAdminError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The active release as a symlink `<state>/active` → `releases/<name>`, swapped
/// atomically (a temporary link renamed over it); `<state>/previous` remembers the
/// release it replaced, for rollback.
public struct ReleaseLinks: Sendable {
    public let stateDir: String
    public init(stateDir: String) { self.stateDir = stateDir }

    public var releasesDir: String { "\(stateDir)/releases" }
    var activeLink: String { "\(stateDir)/active" }
    var previousLink: String { "\(stateDir)/previous" }

    static func target(of link: String) -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { readlink(link, $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count - 1) }
        guard n > 0 else { return nil }
        let target = String(decoding: buffer[0..<n], as: UTF8.self)
        let name = (target as NSString).lastPathComponent
        return name.isEmpty ? nil : name
    }

    /// The active release's name, from the symlink.
    public func active() -> String? { ReleaseLinks.target(of: activeLink) }
    public func previous() -> String? { ReleaseLinks.target(of: previousLink) }

    /// Release folder names under releases/, oldest first (by modification time).
    public func names() -> [String] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: releasesDir) else { return [] }
        var dated = [(String, Double)]()
        for name in entries where !name.hasPrefix(".") {
            var info = stat()
            guard stat("\(releasesDir)/\(name)", &info) == 0, info.st_mode & S_IFMT == S_IFDIR else { continue }
            dated.append((name, Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9))
        }
        return dated.sorted { $0.1 == $1.1 ? $0.0 < $1.0 : $0.1 < $1.1 }.map(\.0)
    }

    static func swapLink(_ link: String, to target: String) throws {
        let temporary = "\(link).\(getpid()).tmp"
        unlink(temporary)
        guard symlink(target, temporary) == 0 else { throw FileError(path: temporary, operation: "symlink", code: errno) }
        guard rename(temporary, link) == 0 else {
            let code = errno
            unlink(temporary)
            throw FileError(path: link, operation: "rename", code: code)
        }
        try AtomicFile.syncDirectory((link as NSString).deletingLastPathComponent)
    }

    /// Points `active` at a release after `verify` accepted it; the old one becomes `previous`.
    public func activate(_ name: String, verify: (String) throws -> Void) throws {
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
            throw ReleaseAdminError("\(name): not a release name")
        }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: "\(releasesDir)/\(name)", isDirectory: &isDir), isDir.boolValue else {
            throw ReleaseAdminError("\(releasesDir)/\(name): no such release (have: \(names().joined(separator: ", ")))")
        }
        try verify(name)
        let current = active()
        if current == name { return }
        if let current { try ReleaseLinks.swapLink(previousLink, to: "releases/\(current)") }
        try ReleaseLinks.swapLink(activeLink, to: "releases/\(name)")
    }

    /// Re-activates the previous release; returns its name.
    public func rollback(verify: (String) throws -> Void) throws -> String {
        guard let previous = previous() else { throw ReleaseAdminError("\(previousLink): no previous release to roll back to") }
        try activate(previous, verify: verify)
        return previous
    }

    /// Deletes the oldest releases beyond `keep`, never the active or previous one.
    public func prune(keep: Int) throws -> [String] {
        guard keep >= 1 else { throw ReleaseAdminError("--keep must be at least 1, not \(keep)") }
        let protected = Set([active(), previous()].compactMap { $0 })
        let all = names()
        var excess = all.count - keep
        var removed = [String]()
        for name in all where excess > 0 && !protected.contains(name) {
            do {
                try FileManager.default.removeItem(atPath: "\(releasesDir)/\(name)")
            } catch {
                throw ReleaseAdminError("\(releasesDir)/\(name): cannot remove: \(error.localizedDescription)")
            }
            removed.append(name)
            excess -= 1
        }
        return removed
    }
}
