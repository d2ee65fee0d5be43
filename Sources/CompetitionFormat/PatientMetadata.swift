import Foundation
import SystemIO

/// One patient of the competition's `meta_data.csv`.
public struct PatientRecord: Sendable, Equatable {
    public enum Gender: String, Sendable, Equatable {
        case male, female
    }

    /// The three-digit number as written ("001"); the image folder is "ID" + id.
    public let id: String
    public let age: Double?
    public let gender: Gender?
    public let weightKg: Double?
    public let heightCm: Double?
    /// Text in the columns past the fifth (one row says "네일있음", "has nail polish").
    public let note: String?

    public var folderName: String { "ID" + id }
}

public struct PatientMetadataError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let line: Int?
    public let message: String
    public var description: String { line.map { "\(path):\($0): \(message)" } ?? "\(path): \(message)" }
}

/// Reader of `meta_data.csv` as the organisers released it, with its faults:
/// CRLF line endings; the Korean header `ID,나이,성별,체중(몸무게),키(신장)`
/// (ID, age, gender, weight kg, height cm; English names `ID,age,gender,weight,height`
/// are accepted too); the gender `남` (male) / `여` (female) often carrying a
/// stray `_x0008_` prefix (an escaped backspace from the spreadsheet export)
/// or a leading space; and rows with trailing empty columns (some with a
/// note in them). Numbers are decimals like `30.0`; an empty cell is nil.
public enum PatientMetadata {
    public static let koreanHeader = ["ID", "나이", "성별", "체중(몸무게)", "키(신장)"]
    public static let englishHeader = ["ID", "age", "gender", "weight", "height"]

    public static func read(path: String) throws -> [PatientRecord] {
        let bytes: [UInt8]
        do {
            bytes = try AtomicFile.read(path)
        } catch {
            throw PatientMetadataError(path: path, line: nil, message: "cannot read: \(error)")
        }
        return try parse(bytes, path: path)
    }

    public static func parse(_ bytes: [UInt8], path: String) throws -> [PatientRecord] {
        var records = [PatientRecord]()
        var sawHeader = false
        var seen = [String: Int]()
        do {
            try SubmissionCSV.forEachRecord(bytes, path: path) { fields, line in
                let trimmed = trimTrailingEmpty(fields)
                if !sawHeader {
                    let names = trimmed.map { $0.trimmingCharacters(in: .whitespaces) }
                    guard names == koreanHeader || names.map({ $0.lowercased() }) == englishHeader else {
                        throw PatientMetadataError(path: path, line: line,
                            message: "header is '\(fields.joined(separator: ","))', expected '\(koreanHeader.joined(separator: ","))'")
                    }
                    sawHeader = true
                    return
                }
                if trimmed.isEmpty { return }  // blank line
                guard fields.count >= 5 else {
                    throw PatientMetadataError(path: path, line: line, message: "\(fields.count) columns, expected at least 5")
                }
                let cells = fields
                let id = cells[0].trimmingCharacters(in: .whitespaces)
                guard !id.isEmpty, id.allSatisfy({ $0.isASCII && $0.isNumber }) else {
                    throw PatientMetadataError(path: path, line: line, message: "ID '\(cells[0])' is not a number")
                }
                if let other = seen[id] {
                    throw PatientMetadataError(path: path, line: line, message: "ID \(id) repeats line \(other)")
                }
                seen[id] = line
                let note = trimmed.count > 5
                    ? trimmed[5...].map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: ", ")
                    : ""
                records.append(PatientRecord(
                    id: id,
                    age: try number(cells[1], "age", path, line),
                    gender: try gender(cells[2], path, line),
                    weightKg: try number(cells[3], "weight", path, line),
                    heightCm: try number(cells[4], "height", path, line),
                    note: note.isEmpty ? nil : note))
            }
        } catch let error as SubmissionCSVError {
            throw PatientMetadataError(path: path, line: error.line, message: error.message)
        }
        guard sawHeader else { throw PatientMetadataError(path: path, line: nil, message: "empty file") }
        return records
    }

    private static func trimTrailingEmpty(_ fields: [String]) -> [String] {
        var out = fields
        while let last = out.last, last.trimmingCharacters(in: .whitespaces).isEmpty { out.removeLast() }
        return out
    }

    private static func number(_ text: String, _ column: String, _ path: String, _ line: Int) throws -> Double? {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t.isEmpty { return nil }
        guard let value = Double(t), value.isFinite, value >= 0 else {
            throw PatientMetadataError(path: path, line: line, message: "\(column) '\(text)' is not a number")
        }
        return value
    }

    private static func gender(_ text: String, _ path: String, _ line: Int) throws -> PatientRecord.Gender? {
        var t = text.trimmingCharacters(in: .whitespaces)
        if t.hasPrefix("_x0008_") { t.removeFirst(7) }
        t = t.trimmingCharacters(in: .whitespaces)
        switch t {
        case "": return nil
        case "남", "M", "m", "male": return .male
        case "여", "F", "f", "female": return .female
        default: throw PatientMetadataError(path: path, line: line, message: "gender '\(text)' is neither 남 (male) nor 여 (female)")
        }
    }
}
