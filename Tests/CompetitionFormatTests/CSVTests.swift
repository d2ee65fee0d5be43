import Foundation
import Testing
@testable import CompetitionFormat

@Suite struct SubmissionCSVTests {
    static func rows() throws -> [SubmissionRow] {
        let list = try Support.json("csv/rows.json") as! [[String: String]]
        return list.map { SubmissionRow(imageName: $0["image_name"]!, className: $0["class"]!, rle: $0["rle"]!) }
    }

    @Test func rendersByteForByteLikePandas() throws {
        let rows = try Self.rows()
        #expect(rows.contains { $0.rle.isEmpty } && rows.contains { $0.imageName.contains(",") })
        let expected = try Support.bytes(Support.fixture("csv/expected.csv"))
        expectSameBytes(SubmissionCSV.render(rows), expected, "csv/expected.csv")
    }

    @Test func readsWhatPandasWrote() throws {
        let path = Support.fixture("csv/expected.csv")
        let parsed = try SubmissionCSV.read(path: path)
        #expect(parsed == (try Self.rows()))
        #expect(parsed.first?.line == 2)
        // CRLF line endings read the same.
        let crlf = String(decoding: try Support.bytes(path), as: UTF8.self).replacingOccurrences(of: "\n", with: "\r\n")
        #expect(try SubmissionCSV.parse(Array(crlf.utf8), path: "crlf.csv") == parsed)
    }

    @Test func rowsOfOneImageFollowTheClassOrder() {
        let rles = (0..<BoneClasses.count).map { $0 % 2 == 0 ? "" : "\($0) 1" }
        let rows = SubmissionCSV.rows(imageName: "/data/test/DCM/ID040/image1661319116107.png", rles: rles)
        #expect(rows.map(\.className) == BoneClasses.names)
        #expect(rows.allSatisfy { $0.imageName == "image1661319116107.png" })
        let text = String(decoding: SubmissionCSV.render(rows), as: UTF8.self)
        #expect(text.hasPrefix("image_name,class,rle\nimage1661319116107.png,finger-1,\nimage1661319116107.png,finger-2,1 1\n"))
        #expect(text.hasSuffix("image1661319116107.png,Ulna,\n"))
    }

    @Test(arguments: [
        ("image,class,rle\n", 1, "header is 'image,class,rle'"),
        ("image_name,class,rle\na.png,finger-1,1 2,3\n", 2, "4 fields, expected 3"),
        ("image_name,class,rle\na.png,finger-1\n", 2, "2 fields, expected 3"),
        ("image_name,class,rle\na.png,finger-1,1 2\nb.png,Femur,\n", 3, "unknown class 'Femur'"),
        ("image_name,class,rle\n,finger-1,\n", 2, "empty image_name"),
        ("image_name,class,rle\r\na.png,finger-1,\r\n\"b.png,finger-2,\r\n", 3, "quoted field is never closed"),
    ])
    func readerErrorsNameFileAndLine(text: String, line: Int, problem: String) {
        do {
            _ = try SubmissionCSV.parse(Array(text.utf8), path: "sub.csv")
            Issue.record("parsed: \(text)")
        } catch {
            #expect("\(error)".hasPrefix("sub.csv:\(line): "), "\(error)")
            #expect("\(error)".contains(problem), "\(error)")
        }
    }

    @Test func emptyFileIsAnError() {
        #expect(throws: SubmissionCSVError.self) { try SubmissionCSV.parse([], path: "empty.csv") }
    }
}
