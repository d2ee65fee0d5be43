import Foundation
import Testing
@testable import CompetitionFormat

@Suite struct PatientMetadataTests {
    /// The organisers' file with its faults: Korean header, _x0008_ prefixes,
    /// leading spaces, trailing empty columns, a note in an extra column.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: Support.realMetadata)))
    func readsTheRealFile() throws {
        let records = try PatientMetadata.read(path: Support.realMetadata)
        #expect(records.count == 550)
        #expect(records.first?.id == "001" && records.last?.id == "550")
        #expect(records.first == PatientRecord(id: "001", age: 30, gender: .female, weightKg: 63, heightCm: 165, note: nil))
        #expect(records.first?.folderName == "ID001")
        #expect(records.filter { $0.gender == .male }.count == 262)
        #expect(records.filter { $0.gender == .female }.count == 288)
        #expect(records.allSatisfy { $0.age != nil && $0.weightKg != nil && $0.heightCm != nil })
        let noted = records.filter { $0.note != nil }
        #expect(noted.map(\.id) == ["073"])
        #expect(noted.first?.note == "네일있음")
    }

    @Test func copesWithTheFaultsOnAMadeUpFile() throws {
        let text = "ID,나이,성별,체중(몸무게),키(신장)\r\n001,30.0,_x0008_여,63.0,165.0\r\n002,21.0,_x0008_남,70.0,172.0,,,,,\r\n003,, 남,,\r\n"
        let records = try PatientMetadata.parse(Array(text.utf8), path: "m.csv")
        #expect(records == [
            PatientRecord(id: "001", age: 30, gender: .female, weightKg: 63, heightCm: 165, note: nil),
            PatientRecord(id: "002", age: 21, gender: .male, weightKg: 70, heightCm: 172, note: nil),
            PatientRecord(id: "003", age: nil, gender: .male, weightKg: nil, heightCm: nil, note: nil),
        ])
    }

    @Test(arguments: [
        ("id,age\r\n", 1, "header is"),
        ("ID,나이,성별,체중(몸무게),키(신장)\r\n001,30.0,_x0008_X,63.0,165.0\r\n", 2, "gender '_x0008_X'"),
        ("ID,나이,성별,체중(몸무게),키(신장)\r\n001,thirty,여,63.0,165.0\r\n", 2, "age 'thirty'"),
        ("ID,나이,성별,체중(몸무게),키(신장)\r\n001,30,여,63.0\r\n", 2, "4 columns"),
        ("ID,나이,성별,체중(몸무게),키(신장)\r\n001,30,여,63,1\r\n001,30,여,63,1\r\n", 3, "ID 001 repeats line 2"),
    ])
    func errorsNameFileAndLine(text: String, line: Int, problem: String) {
        do {
            _ = try PatientMetadata.parse(Array(text.utf8), path: "m.csv")
            Issue.record("parsed")
        } catch {
            #expect("\(error)".hasPrefix("m.csv:\(line): ") && "\(error)".contains(problem), "\(error)")
        }
    }
}
