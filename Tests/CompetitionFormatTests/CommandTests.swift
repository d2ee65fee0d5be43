import Foundation
import Testing
@testable import CompetitionFormat

/// `bonectl ensemble` and `bonectl eval` as a user runs them: the built binary, real files.
@Suite struct CommandTests {
    static let members = (1...5).map { Support.fixture("ensemble/member\($0).csv") }

    @Test func binaryIsThere() {
        #expect(FileManager.default.isExecutableFile(atPath: Bonectl.path), "no bonectl at \(Bonectl.path)")
    }

    @Test(arguments: [
        ([String](), "expected_majority.csv"),
        (["--min-votes", "1"], "expected_min1.csv"),
        (["--min-votes", "4", "--rule", "majority"], "expected_min4.csv"),
        (["--rule", "seed"], "expected_seed.csv"),
    ])
    func ensembleWritesWhatNumpyWrote(options: [String], expected: String) throws {
        let dir = try Support.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/out.csv"
        let result = try Bonectl.run(["ensemble", "--hard"] + Self.members + ["--out", out, "--images", Support.fixture("ensemble/images")] + options)
        #expect(result.status == 0, "\(result.stderr)")
        expectSameBytes(try Support.bytes(out), try Support.bytes(Support.fixture("ensemble/" + expected)), expected)
    }

    @Test func ensembleWithSize() throws {
        let dir = try Support.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/out.csv"
        let members = (1...3).map { Support.fixture("ensemble/square\($0).csv") }
        let result = try Bonectl.run(["ensemble", "--hard"] + members + ["--out", out, "--size", "16"])
        #expect(result.status == 0, "\(result.stderr)")
        expectSameBytes(try Support.bytes(out), try Support.bytes(Support.fixture("ensemble/expected_square_majority.csv")), "expected_square_majority.csv")
    }

    /// Bad input: non-zero exit, one line on stderr naming the file and problem, no output file.
    func expectFailure(_ arguments: [String], out: String, mentions: [String]) throws {
        let result = try Bonectl.run(arguments)
        #expect(result.status != 0)
        let lines = result.stderr.split(separator: "\n", omittingEmptySubsequences: true)
        #expect(lines.count == 1, "stderr: \(result.stderr)")
        for word in mentions { #expect(result.stderr.contains(word), "stderr lacks '\(word)': \(result.stderr)") }
        #expect(!FileManager.default.fileExists(atPath: out))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: (out as NSString).deletingLastPathComponent)
            .filter { $0.hasPrefix(".out.csv") }
        #expect(leftovers.isEmpty)
        #expect(result.stdout.isEmpty)
    }

    @Test func ensembleRejectsFilesThatDisagree() throws {
        let dir = try Support.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/out.csv"
        let good = try Support.text(Self.members[1])
        var lines = good.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)

        // A row gone from the second file.
        let missing = dir + "/missing.csv"
        let gone = lines.remove(at: 5)
        try Support.write(lines.joined(separator: "\n"), to: missing)
        try expectFailure(["ensemble", "--hard", Self.members[0], missing, "--out", out, "--size", "64"], out: out,
                          mentions: [missing, "missing row", "(" + gone.split(separator: ",").prefix(2).joined(separator: ", ") + ")"])
        lines.insert(gone, at: 5)

        // A row of an image the first file does not have.
        let extra = dir + "/extra.csv"
        try Support.write(good + "image_c.png,finger-1,1 1\n", to: extra)
        try expectFailure(["ensemble", "--hard", Self.members[0], extra, "--out", out, "--size", "64"], out: out,
                          mentions: [extra + ":60", "image 'image_c.png' is not in"])

        // A class row duplicated.
        let twice = dir + "/twice.csv"
        try Support.write(good + lines[1] + "\n", to: twice)
        try expectFailure(["ensemble", "--hard", Self.members[0], twice, "--out", out, "--size", "64"], out: out,
                          mentions: [twice + ":60", "duplicate row"])

        // An RLE that does not fit the image.
        let badRLE = dir + "/bad-rle.csv"
        try Support.write(good.replacingOccurrences(of: "image_b.png,Ulna,", with: "image_b.png,Ulna,875 2 "), to: badRLE)
        try expectFailure(["ensemble", "--hard", Self.members[0], badRLE, "--out", out, "--images", Support.fixture("ensemble/images")],
                          out: out, mentions: [badRLE + ":59", "(image_b.png, Ulna)", "25x35"])

        // A broken CSV.
        let broken = dir + "/broken.csv"
        try Support.write("image_name,class\n", to: broken)
        try expectFailure(["ensemble", "--hard", Self.members[0], broken, "--out", out], out: out,
                          mentions: [broken + ":1", "header"])

        // A threshold that no pixel could reach, and a file that is not there.
        try expectFailure(["ensemble", "--hard", Self.members[0], Self.members[1], "--out", out, "--min-votes", "3"], out: out,
                          mentions: ["--min-votes 3"])
        try expectFailure(["ensemble", "--hard", Self.members[0], dir + "/absent.csv", "--out", out], out: out,
                          mentions: [dir + "/absent.csv"])
        // An image missing from --images.
        try expectFailure(["ensemble", "--hard", Self.members[0], Self.members[1], "--out", out, "--images", dir], out: out,
                          mentions: [dir, "image_a.png"])
    }

    @Test func failedEnsembleLeavesAnExistingOutputAlone() throws {
        let dir = try Support.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/keep.csv"
        try Support.write("previous\n", to: out)
        let result = try Bonectl.run(["ensemble", "--hard", Self.members[0], dir + "/absent.csv", "--out", out])
        #expect(result.status != 0)
        #expect(try Support.text(out) == "previous\n")
    }

    @Test func evalJSONMatchesNumpy() throws {
        let expected = try Support.json("eval/expected.json") as! [String: Any]
        let result = try Bonectl.run(["eval", "--pred", Support.fixture("eval/pred.csv"), "--gt", Support.fixture("eval/gt"),
                                      "--size", "64", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        #expect(report["images"] as? Int == 3)
        #expect(abs((report["mean_dice"] as! Double) - (expected["mean_dice"] as! Double)) < 1e-12)
        let perClass = expected["per_class"] as! [String: Double]
        let got = report["per_class"] as! [[String: Any]]
        #expect(got.map { $0["class"] as! String } == BoneClasses.names)
        for entry in got {
            let name = entry["class"] as! String
            #expect(abs((entry["dice"] as! Double) - perClass[name]!) < 1e-12, "\(name)")
        }
        let perImage = expected["per_image"] as! [String: Double]
        for entry in report["per_image"] as! [[String: Any]] {
            #expect(abs((entry["mean_dice"] as! Double) - perImage[entry["image"] as! String]!) < 1e-12)
        }
    }

    @Test func evalTable() throws {
        let result = try Bonectl.run(["eval", "--pred", Support.fixture("eval/pred.csv"), "--gt", Support.fixture("eval/gt"), "--size", "64"])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == 31)
        #expect(lines.first?.hasPrefix("class") == true)
        #expect(lines[1].hasPrefix("finger-1") && lines[29].hasPrefix("Ulna"))
        let expected = try Support.json("eval/expected.json") as! [String: Any]
        #expect(lines.last == "mean        \(String(format: "%.4f", expected["mean_dice"] as! Double))  (3 images)")
    }

    @Test func evalRejectsGroundTruthWithAMissingClass() throws {
        let dir = try Support.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Support.copyTree(Support.fixture("eval/gt"), to: dir + "/gt")
        let json = dir + "/gt/outputs_json/ID002/image_r.json"
        var annotation = try AnnotationFile.read(path: json)
        annotation.annotations.removeAll { $0.label == "Pisiform" }
        try JSONEncoder().encode(annotation).write(to: URL(fileURLWithPath: json))
        let result = try Bonectl.run(["eval", "--pred", Support.fixture("eval/pred.csv"), "--gt", dir + "/gt", "--size", "64"])
        #expect(result.status != 0)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.split(separator: "\n").count == 1)
        #expect(result.stderr.contains("\(json): class 'Pisiform' is missing"), "\(result.stderr)")
    }

    @Test func evalRejectsAPredictionWithoutAnImage() throws {
        let dir = try Support.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pred = dir + "/pred.csv"
        let text = try Support.text(Support.fixture("eval/pred.csv"))
        try Support.write(text.split(separator: "\n").filter { !$0.hasPrefix("image_q.png") }.joined(separator: "\n") + "\n", to: pred)
        let result = try Bonectl.run(["eval", "--pred", pred, "--gt", Support.fixture("eval/gt"), "--size", "64", "--json"])
        #expect(result.status != 0)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.split(separator: "\n").count == 1)
        #expect(result.stderr.contains("\(pred): no rows for image 'image_q'"), "\(result.stderr)")
    }
}
