import CompetitionFormat
import Foundation
import Imaging
import TestSupport
import Testing
@testable import Training

@Suite("DataScan") struct DataScanTests {
    /// 40 phantoms from `bonectl synth`'s generator: every one usable, nothing reported.
    @Test func syntheticPhantomsAreAllUsable() throws {
        let folder = try DataFixtures.phantoms(count: 40, size: 128, seed: 9)
        let dataset = try TrainingDataset.scan(URL(fileURLWithPath: folder.path))
        #expect(dataset.problems == [])
        #expect(dataset.images.count == 40)
        #expect(DataFixtures.names(dataset) == DataFixtures.imageNames(in: folder.path))
        let first = dataset.images[0]
        #expect(first.patient == "ID001")
        #expect(first.name.hasPrefix("ID001/image") && first.name.hasSuffix(".png"))
        #expect(first.imageURL.path == folder.path + "/DCM/" + first.name)
        #expect(first.annotationURL.path == folder.path + "/outputs_json/" + first.name.dropLast(4) + ".json")
        #expect(Set(dataset.images.map(\.patient)).count == 20)
    }

    @Test func splitKeepsPatientsTogetherAndIsDeterministic() throws {
        let folder = try DataFixtures.phantoms(count: 40, size: 64, seed: 4)
        // A second right-hand image for ID003: three images of one patient.
        let name = DataFixtures.imageNames(in: folder.path).first { $0.hasPrefix("ID003/") }!
        let stem = String(name.dropLast(4))
        try FileManager.default.copyItem(atPath: folder.file("DCM/\(name)"), toPath: folder.file("DCM/\(stem)9.png"))
        try FileManager.default.copyItem(atPath: folder.file("outputs_json/\(stem).json"),
                                         toPath: folder.file("outputs_json/\(stem)9.json"))
        let dataset = try TrainingDataset.scan(URL(fileURLWithPath: folder.path))
        #expect(dataset.images.count == 41)
        #expect(dataset.images.filter { $0.patient == "ID003" }.count == 3)

        var splits: Set<[String]> = []
        for seed: UInt64 in 0..<6 {
            let (train, validation) = dataset.split(validationFraction: 0.2, seed: seed)
            #expect(train.count + validation.count == 41)
            let trainPatients = Set(train.map(\.patient)), validationPatients = Set(validation.map(\.patient))
            #expect(trainPatients.isDisjoint(with: validationPatients), "a patient on both sides")
            #expect(validationPatients.count == 4, "20 % of 20 patients")
            #expect(train.map(\.name) == train.map(\.name).sorted())
            // The same seed gives the same split.
            let again = dataset.split(validationFraction: 0.2, seed: seed)
            #expect(again.train == train && again.validation == validation)
            splits.insert(validation.map(\.name))
        }
        #expect(splits.count > 1, "the seed changes the split")

        // Adding patients leaves the existing ones where they were, apart from the few the count moves.
        let fewer = TrainingDataset(root: dataset.root, images: dataset.images.filter { $0.patient != "ID020" }, problems: [])
        let before = Set(fewer.split(validationFraction: 0.2, seed: 1).validation.map(\.patient))
        let after = Set(dataset.split(validationFraction: 0.2, seed: 1).validation.map(\.patient))
        #expect(before.intersection(after).count >= 3)
    }

    @Test func splitEdgeCases() throws {
        func images(_ patients: [String]) -> TrainingDataset {
            let url = URL(fileURLWithPath: "/d")
            return TrainingDataset(root: url, images: patients.map {
                LabelledImage(patient: $0, name: "\($0)/a.png", imageURL: url, annotationURL: url)
            }, problems: [])
        }
        // At least one patient on each side when there are two.
        let two = images(["ID001", "ID002"]).split(validationFraction: 0.01)
        #expect(two.train.count == 1 && two.validation.count == 1)
        let most = images(["ID001", "ID002", "ID003"]).split(validationFraction: 0.99)
        #expect(most.train.count == 1 && most.validation.count == 2)
        let one = images(["ID001"]).split()
        #expect(one.train.count == 1 && one.validation.isEmpty)
        let none = images(["ID001", "ID002", "ID003"]).split(validationFraction: 0)
        #expect(none.validation.isEmpty)
    }

    /// Each kind of bad file is reported once, by name, and left out; the good ones remain.
    @Test func badFilesAreReportedAndLeftOut() throws {
        let folder = try DataFixtures.phantoms(count: 16, size: 96, seed: 6)
        let names = DataFixtures.imageNames(in: folder.path)
        func json(_ i: Int) -> String { folder.file("outputs_json/" + names[i].dropLast(4) + ".json") }
        func png(_ i: Int) -> String { folder.file("DCM/" + names[i]) }
        let fm = FileManager.default

        try fm.removeItem(atPath: json(0))  // missing JSON
        try fm.removeItem(atPath: png(1))  // JSON without image
        var file = try DataFixtures.read(json(2))  // a label missing
        file.annotations.removeAll { $0.label == "Lunate" }
        try DataFixtures.write(file, to: json(2))
        file = try DataFixtures.read(json(3))  // duplicate label
        file.annotations.append(file.annotations[0])
        try DataFixtures.write(file, to: json(3))
        try Data((0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 7919) }).write(to: URL(fileURLWithPath: png(4)))  // garbage
        for (i, (a, b)) in DataHygieneTests.namedSwaps.enumerated() {  // swapped labels
            try DataFixtures.write(DataFixtures.swapping(a, b, in: try DataFixtures.read(json(5 + i))), to: json(5 + i))
        }
        try Data("{\"annotations\": [".utf8).write(to: URL(fileURLWithPath: json(9)))  // broken JSON
        // Truncated PNG: its header reads, so the scan keeps it (the loader reports it).
        let bytes = try Data(contentsOf: URL(fileURLWithPath: png(10)))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: png(10)))
        try Data("notes".utf8).write(to: URL(fileURLWithPath: folder.file("DCM/ID001/readme.txt")))
        // A linked image counts like a file (data sets are often links into an archive).
        try fm.moveItem(atPath: png(11), toPath: folder.file("moved.png"))
        try fm.createSymbolicLink(atPath: png(11), withDestinationPath: folder.file("moved.png"))
        try Data().write(to: URL(fileURLWithPath: folder.file("DCM/ID001/.hidden.png")))

        let dataset = try TrainingDataset.scan(URL(fileURLWithPath: folder.path))
        let byFile = Dictionary(grouping: dataset.problems, by: \.file).mapValues { $0.map(\.problem) }
        func reason(_ file: String) -> String { byFile[file]?.joined(separator: " | ") ?? "(not reported)" }
        let j = { (i: Int) in "outputs_json/" + names[i].dropLast(4) + ".json" }
        let p = { (i: Int) in "DCM/" + names[i] }

        #expect(reason(p(0)) == "no annotation (\(j(0)) is missing)")
        #expect(reason(j(1)) == "no image for this annotation (\(p(1)) is missing)")
        #expect(reason(j(2)) == "left out: label 'Lunate' missing")
        #expect(reason(j(3)) == "left out: label 'finger-1' appears 2 times")
        #expect(reason(p(4)).hasPrefix("not a readable image: not a PNG or JPEG image"))
        for (i, (a, b)) in DataHygieneTests.namedSwaps.enumerated() {
            #expect(reason(j(5 + i)).hasPrefix("left out: "), "\(a)/\(b)")
            #expect(reason(j(5 + i)).contains(a) || reason(j(5 + i)).contains(b), "\(a)/\(b): \(reason(j(5 + i)))")
        }
        #expect(reason(j(9)).hasPrefix("not an annotation file"))
        #expect(reason("DCM/ID001/readme.txt") == "not a .png or .jpg image; ignored")
        #expect(dataset.problems.count == 11, "\(dataset.problems.map(\.description))")
        #expect(!dataset.problems.contains { $0.file.contains(".hidden") })
        // One line each, "file: problem".
        for problem in dataset.problems {
            #expect(!problem.description.contains("\n"))
            #expect(problem.description == "\(problem.file): \(problem.problem)")
        }

        let bad: Set<Int> = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
        #expect(DataFixtures.names(dataset) == names.indices.filter { !bad.contains($0) }.map { names[$0] })
        #expect(DataFixtures.names(dataset).contains(names[10]))
        #expect(DataFixtures.names(dataset).contains(names[11]))
    }

    @Test func foldersThatCannotBeTrainedOn() throws {
        let folder = TemporaryFolder("bonesegd-data")
        func message(_ path: String) -> String {
            do {
                _ = try TrainingDataset.scan(URL(fileURLWithPath: path))
                return "(no error)"
            } catch let error as TrainingDataError {
                return error.description
            } catch {
                return "(other error \(error))"
            }
        }
        #expect(message(folder.file("absent")) == folder.file("absent") + ": no such folder")
        try Data("x".utf8).write(to: URL(fileURLWithPath: folder.file("file")))
        #expect(message(folder.file("file")) == folder.file("file") + ": not a folder")
        #expect(message(folder.path) == folder.path
            + ": no DCM/ folder (expected DCM/IDxxx/*.png and outputs_json/IDxxx/*.json)")
        try FileManager.default.createDirectory(atPath: folder.file("DCM"), withIntermediateDirectories: true)
        #expect(message(folder.path) == folder.path
            + ": no outputs_json/ folder (expected DCM/IDxxx/*.png and outputs_json/IDxxx/*.json)")
        try FileManager.default.createDirectory(atPath: folder.file("outputs_json"), withIntermediateDirectories: true)
        #expect(message(folder.path) == folder.path + ": no usable labelled image (0 problems)")
        // Only unusable files: the error says how many and shows the first.
        try FileManager.default.createDirectory(atPath: folder.file("DCM/ID001"), withIntermediateDirectories: true)
        try Data("junk".utf8).write(to: URL(fileURLWithPath: folder.file("DCM/ID001/a.png")))
        #expect(message(folder.path) == folder.path
            + ": no usable labelled image (1 problem; first: DCM/ID001/a.png: no annotation (outputs_json/ID001/a.json is missing))")
        if getuid() != 0 {
            try FileManager.default.setAttributes([.posixPermissions: 0o000], ofItemAtPath: folder.file("DCM"))
            defer { try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: folder.file("DCM")) }
            #expect(message(folder.path) == folder.path + ": cannot read DCM/ (permissions?)")
        }
    }
}
