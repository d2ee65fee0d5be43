import Foundation
import Testing
@testable import CompetitionFormat

@Suite struct EnsembleTests {
    static let members = (1...5).map { Support.fixture("ensemble/member\($0).csv") }
    static let sizes = ["image_a.png": (width: 40, height: 30), "image_b.png": (width: 25, height: 35)]

    static func load(_ paths: [String]) throws -> [HardEnsemble.Member] {
        try paths.map { HardEnsemble.Member(path: $0, rows: try SubmissionCSV.read(path: $0)) }
    }

    @Test func voteEqualsPixelCounting() {
        var g = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let n = Int.random(in: 1...200, using: &g), members = Int.random(in: 1...6, using: &g)
            let masks = (0..<members).map { _ in
                let p = Double.random(in: 0...1, using: &g)
                return (0..<n).map { _ in Double.random(in: 0..<1, using: &g) < p ? UInt8(1) : 0 }
            }
            let k = Int.random(in: 1...members, using: &g)
            let counted = BinaryMask(width: n, height: 1,
                                     pixels: (0..<n).map { i in masks.reduce(0) { $0 + Int($1[i]) } >= k ? 1 : 0 })
            let lists = masks.map { RLE.runs(of: BinaryMask(width: n, height: 1, pixels: $0)) }
            #expect(HardEnsemble.vote(lists, minVotes: k) == RLE.runs(of: counted))
        }
    }

    @Test(arguments: [
        (EnsembleRule.majority, nil as Int?, "expected_majority.csv"),
        (.majority, 1, "expected_min1.csv"),
        (.majority, 4, "expected_min4.csv"),
        (.seed, nil, "expected_seed.csv"),
    ])
    func combineMatchesNumpy(rule: EnsembleRule, minVotes: Int?, expected: String) throws {
        let rows = try HardEnsemble.combine(try Self.load(Self.members), rule: rule, minVotes: minVotes) { Self.sizes[$0]! }
        expectSameBytes(SubmissionCSV.render(rows), try Support.bytes(Support.fixture("ensemble/" + expected)), expected)
    }

    /// The seed rule on hand-made rows: n non-empty members need max(1, n/2) votes.
    @Test func seedRuleSpelledOut() throws {
        func combine(_ rles: [String]) throws -> String {
            let members = rles.enumerated().map { i, rle in
                HardEnsemble.Member(path: "m\(i).csv", rows: [SubmissionRow(imageName: "x.png", className: "Ulna", rle: rle, line: 2)])
            }
            return try HardEnsemble.combine(members, rule: .seed) { _ in (10, 1) }[0].rle
        }
        #expect(try combine(["", "", ""]) == "")                  // n = 0
        #expect(try combine(["", "3 2", ""]) == "3 2")            // n = 1: copied, never the whole image
        #expect(try combine(["1 2", "2 3", ""]) == "1 4")         // n = 2: union
        #expect(try combine(["1 2", "2 3", "2 1", "9 1"]) == "2 1")  // n = 4: two votes
        #expect(try combine(["1 4", "2 4", "3 4", "", ""]) == "1 6")  // n = 3: one vote
    }

    @Test func mismatchedFilesAreErrorsNamingTheRow() throws {
        let a = [SubmissionRow(imageName: "x.png", className: "finger-1", rle: "", line: 2),
                 SubmissionRow(imageName: "x.png", className: "finger-2", rle: "1 1", line: 3)]
        func combine(_ b: [SubmissionRow], minVotes: Int? = nil, rule: EnsembleRule = .majority) throws {
            _ = try HardEnsemble.combine([.init(path: "a.csv", rows: a), .init(path: "b.csv", rows: b)],
                                         rule: rule, minVotes: minVotes) { _ in (4, 4) }
        }
        #expect { try combine([a[0]]) } throws: { "\($0)" == "b.csv: missing row (x.png, finger-2) that a.csv:3 has" }
        #expect { try combine(a + [SubmissionRow(imageName: "x.png", className: "Ulna", rle: "", line: 4)]) }
            throws: { "\($0)" == "b.csv:4: extra row (x.png, Ulna) that a.csv does not have" }
        #expect { try combine(a + [SubmissionRow(imageName: "y.png", className: "Ulna", rle: "", line: 4)]) }
            throws: { "\($0)".hasPrefix("b.csv:4: image 'y.png' is not in a.csv") }
        #expect { try combine(a.map { SubmissionRow(imageName: "z.png", className: $0.className, rle: $0.rle, line: $0.line) }) }
            throws: { "\($0)".hasPrefix("b.csv:2: image 'z.png' is not in a.csv") }
        #expect { try combine(a + [a[1]]) } throws: { "\($0)" == "b.csv:3: duplicate row (x.png, finger-2), first at line 3" }
        #expect { try combine([a[0], SubmissionRow(imageName: "x.png", className: "finger-2", rle: "16 2", line: 3)]) }
            throws: { "\($0)".hasPrefix("b.csv:3: bad RLE for (x.png, finger-2) on a 4x4 image") }
        #expect { try combine(a, minVotes: 3) } throws: { "\($0)".contains("--min-votes 3 is outside 1...2") }
        #expect { try combine(a, minVotes: 1, rule: .seed) } throws: { "\($0)".contains("--min-votes applies to --rule majority") }
        #expect(throws: EnsembleError.self) {
            _ = try HardEnsemble.combine([.init(path: "a.csv", rows: a)], rule: .majority) { _ in (4, 4) }
        }
    }
}
