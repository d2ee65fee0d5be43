import Foundation

/// How member masks vote.
public enum EnsembleRule: String, Sendable, CaseIterable {
    /// A pixel is kept when at least K of the n members have it; K defaults
    /// to a strict majority, n / 2 + 1 (integer division).
    case majority
    /// The competition team's rule, row by row: only the members whose row
    /// is non-empty vote; with n such members a pixel is kept when it has at
    /// least n / 2 votes (integer division) and at least one vote. So n = 0
    /// gives an empty row, n = 1 copies the lone non-empty member (the
    /// rule read literally would need 0 votes and fill the whole image; we
    /// never keep a pixel no member has), n = 2 or 3 is the union, n = 4 or 5
    /// needs two votes, n = 6 or 7 three.
    case seed
}

public struct EnsembleError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A per-pixel vote over submissions whose rows match one to one.
public enum HardEnsemble {
    public struct Member: Sendable {
        public let path: String
        public let rows: [SubmissionRow]
        public init(path: String, rows: [SubmissionRow]) {
            self.path = path
            self.rows = rows
        }
    }

    /// The combined rows, in the first member's row order. `imageSize` gives
    /// each image's width and height (it may throw an error naming the image).
    /// Errors name the file, line and row at fault.
    public static func combine(_ members: [Member], rule: EnsembleRule, minVotes: Int? = nil,
                               imageSize: (String) throws -> (width: Int, height: Int)) throws -> [SubmissionRow] {
        guard members.count >= 2 else { throw EnsembleError("an ensemble needs at least two CSV files, got \(members.count)") }
        let n = members.count
        if let k = minVotes {
            guard rule == .majority else { throw EnsembleError("--min-votes applies to --rule majority; --rule seed sets its own threshold") }
            guard (1...n).contains(k) else { throw EnsembleError("--min-votes \(k) is outside 1...\(n) for \(n) files") }
        }
        let threshold = minVotes ?? (n / 2 + 1)

        // Index every member's rows by key; duplicates are errors.
        var indexes = [[RowKey: Int]]()
        for member in members {
            var index = [RowKey: Int](minimumCapacity: member.rows.count)
            for (i, row) in member.rows.enumerated() {
                if let first = index[row.key] {
                    throw EnsembleError("\(location(member, i)): duplicate row \(row.key), first at line \(member.rows[first].line)")
                }
                index[row.key] = i
            }
            indexes.append(index)
        }
        let first = members[0]
        let firstImages = Set(first.rows.map(\.imageName))
        for m in 1..<n {
            let member = members[m]
            let memberImages = Set(member.rows.map(\.imageName))
            for (i, row) in member.rows.enumerated() where indexes[0][row.key] == nil {
                if !firstImages.contains(row.imageName) {
                    throw EnsembleError("\(location(member, i)): image '\(row.imageName)' is not in \(first.path) (the files cover different images)")
                }
                throw EnsembleError("\(location(member, i)): extra row \(row.key) that \(first.path) does not have")
            }
            for (i, row) in first.rows.enumerated() where indexes[m][row.key] == nil {
                if !memberImages.contains(row.imageName) {
                    throw EnsembleError("\(member.path): no rows for image '\(row.imageName)' of \(location(first, i)) (the files cover different images)")
                }
                throw EnsembleError("\(member.path): missing row \(row.key) that \(location(first, i)) has")
            }
        }

        var sizes = [String: (width: Int, height: Int)]()
        var out = [SubmissionRow]()
        out.reserveCapacity(first.rows.count)
        for (i, row) in first.rows.enumerated() {
            let size: (width: Int, height: Int)
            if let known = sizes[row.imageName] {
                size = known
            } else {
                size = try imageSize(row.imageName)
                sizes[row.imageName] = size
            }
            let pixelCount = size.width * size.height
            var lists = [[Run]]()
            lists.reserveCapacity(n)
            for m in 0..<n {
                let j = m == 0 ? i : indexes[m][row.key]!
                do {
                    lists.append(try RLE.decodeRuns(members[m].rows[j].rle, pixelCount: pixelCount))
                } catch {
                    throw EnsembleError("\(location(members[m], j)): bad RLE for \(row.key) on a \(size.width)x\(size.height) image: \(error)")
                }
            }
            let runs: [Run]
            switch rule {
            case .majority:
                runs = vote(lists, minVotes: threshold)
            case .seed:
                let voting = lists.filter { !$0.isEmpty }
                runs = voting.isEmpty ? [] : vote(voting, minVotes: max(1, voting.count / 2))
            }
            out.append(SubmissionRow(imageName: row.imageName, className: row.className, rle: RLE.encode(runs: runs)))
        }
        return out
    }

    /// The pixels covered by at least `minVotes` of the run lists, as maximal runs.
    public static func vote(_ lists: [[Run]], minVotes: Int) -> [Run] {
        precondition(minVotes >= 1)
        var events = [(position: Int, delta: Int)]()
        events.reserveCapacity(lists.reduce(0) { $0 + 2 * $1.count })
        for list in lists {
            for run in list where run.length > 0 {
                events.append((run.start, 1))
                events.append((run.end, -1))
            }
        }
        events.sort { $0.position < $1.position }
        var out = [Run]()
        var count = 0
        var openedAt: Int? = nil
        var k = 0
        while k < events.count {
            let position = events[k].position
            while k < events.count && events[k].position == position {
                count += events[k].delta
                k += 1
            }
            if count >= minVotes {
                if openedAt == nil { openedAt = position }
            } else if let start = openedAt {
                out.append(Run(start: start, length: position - start))
                openedAt = nil
            }
        }
        return out
    }

    static func location(_ member: Member, _ index: Int) -> String {
        let line = member.rows[index].line
        return line > 0 ? "\(member.path):\(line)" : member.path
    }
}

/// Image sizes by file name from a folder of PNGs (searched recursively).
public struct ImageSizeIndex: Sendable {
    public let directory: String
    private let pathByName: [String: String]

    public init(directory: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw GroundTruthError(path: directory, message: "not a directory")
        }
        var map = [String: String]()
        if let walker = FileManager.default.enumerator(atPath: directory) {
            while let entry = walker.nextObject() as? String {
                guard entry.lowercased().hasSuffix(".png") else { continue }
                let name = (entry as NSString).lastPathComponent
                if map[name] == nil { map[name] = (directory as NSString).appendingPathComponent(entry) }
            }
        }
        self.directory = directory
        pathByName = map
    }

    /// The size of the image called `imageName` (its base name is looked up).
    public func size(of imageName: String) throws -> (width: Int, height: Int) {
        let name = (imageName as NSString).lastPathComponent
        guard let path = pathByName[name] else {
            throw GroundTruthError(path: directory, message: "no image '\(name)' here to take the size of")
        }
        return try GroundTruth.imageSize(path)
    }
}
