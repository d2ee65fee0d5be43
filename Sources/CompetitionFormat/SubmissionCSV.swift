import Foundation
import SystemIO

/// One row of a submission: the image's file name, a class name, the RLE text.
public struct SubmissionRow: Sendable, Equatable, Hashable {
    public var imageName: String
    public var className: String
    public var rle: String
    /// 1-based line of the file the row was read from (0 for rows made in memory).
    public var line: Int

    public init(imageName: String, className: String, rle: String, line: Int = 0) {
        self.imageName = imageName
        self.className = className
        self.rle = rle
        self.line = line
    }

    public static func == (a: SubmissionRow, b: SubmissionRow) -> Bool {
        a.imageName == b.imageName && a.className == b.className && a.rle == b.rle
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(imageName)
        hasher.combine(className)
        hasher.combine(rle)
    }

    public var key: RowKey { RowKey(imageName: imageName, className: className) }
}

/// The identity of a row: which image, which class.
public struct RowKey: Sendable, Hashable, CustomStringConvertible {
    public var imageName: String
    public var className: String
    public init(imageName: String, className: String) {
        self.imageName = imageName
        self.className = className
    }
    public var description: String { "(\(imageName), \(className))" }
}

public struct SubmissionCSVError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let line: Int?
    public let message: String
    public init(path: String, line: Int?, message: String) {
        self.path = path
        self.line = line
        self.message = message
    }
    public var description: String { line.map { "\(path):\($0): \(message)" } ?? "\(path): \(message)" }
}

/// The submission CSV exactly as the competition's `df.to_csv(index=False)`
/// writes it: header `image_name,class,rle`, `\n` line endings, a field quoted
/// (`"` doubled inside) only when it holds a comma, a quote, `\r` or `\n`, an
/// empty RLE as an empty field. Rows per image follow `BoneClasses.names`.
public enum SubmissionCSV {
    public static let header = ["image_name", "class", "rle"]

    /// The 29 rows of one image, in class order; `imageName` is reduced to its base name.
    public static func rows(imageName: String, rles: [String]) -> [SubmissionRow] {
        precondition(rles.count == BoneClasses.count, "expected \(BoneClasses.count) RLEs, got \(rles.count)")
        let name = (imageName as NSString).lastPathComponent
        return zip(BoneClasses.names, rles).map { SubmissionRow(imageName: name, className: $0, rle: $1) }
    }

    /// The file's bytes.
    public static func render(_ rows: [SubmissionRow]) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(64 + rows.reduce(0) { $0 + $1.imageName.utf8.count + $1.className.utf8.count + $1.rle.utf8.count + 3 })
        appendLine(&out, header)
        for row in rows { appendLine(&out, [row.imageName, row.className, row.rle]) }
        return out
    }

    /// Writes the file atomically (complete or absent).
    public static func write(_ rows: [SubmissionRow], to path: String) throws {
        try AtomicFile.write(render(rows), to: path)
    }

    private static func appendLine(_ out: inout [UInt8], _ fields: [String]) {
        for (i, field) in fields.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            let bytes = field.utf8
            if bytes.contains(where: { $0 == 0x2C || $0 == 0x22 || $0 == 0x0A || $0 == 0x0D }) {
                out.append(0x22)
                for b in bytes {
                    out.append(b)
                    if b == 0x22 { out.append(0x22) }
                }
                out.append(0x22)
            } else {
                out.append(contentsOf: bytes)
            }
        }
        out.append(0x0A)
    }

    // MARK: reading

    /// Reads a submission file; see `parse`.
    public static func read(path: String) throws -> [SubmissionRow] {
        let bytes: [UInt8]
        do {
            bytes = try AtomicFile.read(path)
        } catch {
            throw SubmissionCSVError(path: path, line: nil, message: "cannot read: \(error)")
        }
        return try parse(bytes, path: path)
    }

    /// Parses a submission: `\n` or `\r\n` line endings (a UTF-8 BOM is
    /// skipped), the header exactly `image_name,class,rle`, then rows of
    /// exactly three fields with a known class name and a non-empty image
    /// name. The RLE text is kept as it is (check it with `RLE.decodeRuns`).
    /// Errors name the file and line.
    public static func parse(_ bytes: [UInt8], path: String) throws -> [SubmissionRow] {
        var rows = [SubmissionRow]()
        var sawHeader = false
        try forEachRecord(bytes, path: path) { fields, line in
            if !sawHeader {
                guard fields == header else {
                    throw SubmissionCSVError(path: path, line: line,
                        message: "header is '\(fields.joined(separator: ","))', expected 'image_name,class,rle'")
                }
                sawHeader = true
                return
            }
            if fields.count == 1 && fields[0].isEmpty { return }  // blank line
            guard fields.count == 3 else {
                throw SubmissionCSVError(path: path, line: line, message: "\(fields.count) fields, expected 3 (image_name,class,rle)")
            }
            guard !fields[0].isEmpty else { throw SubmissionCSVError(path: path, line: line, message: "empty image_name") }
            guard BoneClasses.index(of: fields[1]) != nil else {
                throw SubmissionCSVError(path: path, line: line, message: "unknown class '\(fields[1])'")
            }
            rows.append(SubmissionRow(imageName: fields[0], className: fields[1], rle: fields[2], line: line))
        }
        guard sawHeader else { throw SubmissionCSVError(path: path, line: nil, message: "empty file, expected the header 'image_name,class,rle'") }
        return rows
    }

    /// Splits CSV text into records (RFC 4180 quoting), giving each its first line number.
    static func forEachRecord(_ bytes: [UInt8], path: String, _ body: ([String], Int) throws -> Void) throws {
        var i = 0
        if bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF { i = 3 }
        var line = 1
        var fields = [String]()
        var field = [UInt8]()
        var recordLine = 1
        var recordHasContent = false
        while i < bytes.count {
            let b = bytes[i]
            if b == 0x22 && field.isEmpty {
                // Quoted field.
                let quoteLine = line
                i += 1
                var closed = false
                while i < bytes.count {
                    let c = bytes[i]
                    if c == 0x22 {
                        if i + 1 < bytes.count && bytes[i + 1] == 0x22 {
                            field.append(0x22)
                            i += 2
                            continue
                        }
                        closed = true
                        i += 1
                        break
                    }
                    if c == 0x0A { line += 1 }
                    field.append(c)
                    i += 1
                }
                guard closed else { throw SubmissionCSVError(path: path, line: quoteLine, message: "quoted field is never closed") }
                recordHasContent = true
                if i < bytes.count && !(bytes[i] == 0x2C || bytes[i] == 0x0A || bytes[i] == 0x0D) {
                    throw SubmissionCSVError(path: path, line: line, message: "text after a closing quote")
                }
                continue
            }
            switch b {
            case 0x2C:
                fields.append(String(decoding: field, as: UTF8.self))
                field.removeAll(keepingCapacity: true)
                recordHasContent = true
                i += 1
            case 0x0D where i + 1 < bytes.count && bytes[i + 1] == 0x0A:
                i += 1  // the \n ends the record
            case 0x0A:
                fields.append(String(decoding: field, as: UTF8.self))
                try body(fields, recordLine)
                fields.removeAll()
                field.removeAll(keepingCapacity: true)
                recordHasContent = false
                i += 1
                line += 1
                recordLine = line
            default:
                if b == 0x0D { throw SubmissionCSVError(path: path, line: line, message: "stray carriage return") }
                field.append(b)
                recordHasContent = true
                i += 1
            }
        }
        if recordHasContent || !field.isEmpty || !fields.isEmpty {
            fields.append(String(decoding: field, as: UTF8.self))
            try body(fields, recordLine)
        }
    }
}
