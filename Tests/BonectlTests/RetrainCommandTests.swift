import CompetitionFormat
import Foundation
import Testing
import TensorEngine
import TestSupport

/// `bonectl retrain` end to end on phantoms, as the nightly unit runs it: the
/// real binary, a real state directory (store, releases, active link, ledger).
/// A compact model at 64² keeps each run to seconds.
@Suite(.serialized) struct RetrainCommandTests {
    static let compact = ["--encoder", "resnet18", "--decoder-channels", "16,8,8,8,8", "--size", "64", "--batch-size", "4"]

    struct Run {
        let result: Product.Result
        var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8))) as? [String: Any] ?? [:]
        }
        var outcome: [String: Any] { json["outcome"] as? [String: Any] ?? [:] }
    }

    static func retrain(_ data: String, state: String, _ extra: [String]) throws -> Run {
        Run(result: try Product.run("bonectl", ["retrain", "--data", data, "--state-dir", state, "--socket", "\(state)/none.sock", "--json"] + compact + extra))
    }

    static func synth(_ folder: TemporaryFolder, count: Int = 12, seed: Int = 3) throws -> String {
        let data = folder.file("data")
        let synth = try Product.run("bonectl", ["synth", "--out", data, "--count", "\(count)", "--size", "256", "--seed", "\(seed)"])
        #expect(synth.status == 0, "\(synth.stderr)")
        return data
    }

    /// A release "silent" (random weights, segmentation head bias −1000), made and
    /// activated with bonectl as a user would.
    static func makeSilentRelease(state: String, folder: TemporaryFolder) throws {
        let random = folder.file("random.safetensors"), silent = folder.file("silent.safetensors")
        var step = try Product.run("bonectl", ["model", "random-weights", "--encoder", "resnet18", "--decoder-channels", "16,8,8,8,8", "--out", random])
        #expect(step.status == 0, "\(step.stderr)")
        var (tensors, _) = try SafeTensors.read(path: random)
        let bias = try #require(tensors["segmentation_head.0.bias"])
        tensors["segmentation_head.0.bias"] = Tensor(shape: bias.shape, values: [Float](repeating: -1000, count: bias.count))
        try Data(SafeTensors.encode(tensors)).write(to: URL(fileURLWithPath: silent))
        for arguments in [["model", "import", silent, "--name", "silent", "--arch", "unetplusplus", "--encoder", "resnet18",
                           "--decoder-channels", "16,8,8,8,8", "--input-size", "64", "--store", "\(state)/models"],
                          ["release", "create", "silent", "--members", "silent", "--store", "\(state)/models"],
                          ["release", "activate", "silent", "--state-dir", state, "--socket", "\(state)/none.sock"]] {
            step = try Product.run("bonectl", arguments)
            #expect(step.status == 0, "\(arguments.prefix(2)): \(step.stderr)")
        }
    }

    static func activeRelease(_ state: String) -> String? {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "\(state)/active")).map { ($0 as NSString).lastPathComponent }
    }

    /// The gate: with no active release the first candidate is activated; a
    /// candidate that does not reach the champion's Dice + --min-gain is kept
    /// out (the champion stays active and the reason is given); a candidate
    /// above a weak champion replaces it.
    @Test func gateActivatesOnlyCandidatesAtLeastAsGoodAsTheChampion() throws {
        let folder = TemporaryFolder("retrain-gate")
        let data = try Self.synth(folder)
        let state = folder.file("state")

        let first = try Self.retrain(data, state: state, ["--seeds", "2", "--epochs", "2", "--from-scratch"])
        #expect(first.result.status == 0, "\(first.result.stderr)")
        let firstName = try #require(first.outcome["candidate_release"] as? String)
        #expect(first.json["activated"] as? Bool == true)
        #expect((first.json["reason"] as? String)?.contains("no active release") == true)
        #expect(Self.activeRelease(state) == firstName)
        let release = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(state)/releases/\(firstName)/release.json"))) as! [String: Any]
        #expect((release["members"] as? [Any])?.count == 2)
        #expect((release["thresholds"] as? [Double])?.count == 29)
        let metrics = try #require(release["metrics"] as? [String: Double])
        let firstDice = try #require(first.outcome["candidate_dice"] as? Double)
        #expect(metrics["validation_dice"] == firstDice)
        #expect(firstDice > 0 && firstDice <= 1)

        // Unreachable margin: Dice cannot exceed 1, so this candidate must be kept out.
        let second = try Self.retrain(data, state: state, ["--seeds", "1", "--epochs", "1", "--from-scratch", "--min-gain", "1"])
        #expect(second.result.status == 0, "\(second.result.stderr)")
        #expect(second.json["activated"] as? Bool == false)
        #expect(second.outcome["champion_release"] as? String == firstName)
        #expect(second.outcome["champion_dice"] as? Double == firstDice, "the champion is scored on the same split the same way")
        #expect((second.json["reason"] as? String)?.contains("< champion") == true)
        #expect(Self.activeRelease(state) == firstName, "the champion stays active")
        let secondName = try #require(second.outcome["candidate_release"] as? String)
        #expect(FileManager.default.fileExists(atPath: "\(state)/releases/\(secondName)/release.json"), "the candidate is kept for inspection")

        // A champion that predicts nothing (its head's bias pushes every logit far below
        // zero: Dice ≈ 0 on every class) is beaten by any candidate that finds some bone.
        try Self.makeSilentRelease(state: state, folder: folder)
        let third = try Self.retrain(data, state: state, ["--seeds", "1", "--epochs", "2", "--from-scratch"])
        #expect(third.result.status == 0, "\(third.result.stderr)")
        let championDice = try #require(third.outcome["champion_dice"] as? Double)
        let candidateDice = try #require(third.outcome["candidate_dice"] as? Double)
        #expect(championDice < 1e-6, "a release that predicts nothing scores \(championDice)")
        #expect(candidateDice > championDice, "candidate \(candidateDice) vs silent champion \(championDice)")
        #expect(third.json["activated"] as? Bool == true)
        #expect(Self.activeRelease(state) == third.outcome["candidate_release"] as? String)

        // Every run is in the ledger; status shows the last one, stats lists all three.
        let status = try Product.run("bonectl", ["status", "--state-dir", state, "--socket", "\(state)/none.sock", "--json"])
        let last = (try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])?["last_retrain"] as? [String: Any]
        #expect(last?["state"] as? String == "promoted", "\(status.stdout)")
        #expect(last?["candidate_release"] as? String == third.outcome["candidate_release"] as? String)
        let stats = try Product.run("bonectl", ["stats", "--retrains", "--state-dir", state, "--socket", "\(state)/none.sock", "--json"])
        let runs = (try JSONSerialization.jsonObject(with: Data(stats.stdout.utf8)) as? [[String: Any]]) ?? []
        #expect(runs.map { $0["state"] as? String } == ["promoted", "kept-champion", "promoted"], "\(stats.stdout)")
    }

    /// Bad files are reported one per line and left out; training goes on with the rest.
    @Test func badDataIsReportedAndLeftOut() throws {
        let folder = TemporaryFolder("retrain-bad")
        let data = try Self.synth(folder, count: 12, seed: 4)
        let images = try FileManager.default.subpathsOfDirectory(atPath: "\(data)/DCM").filter { $0.hasSuffix(".png") }.sorted()
        #expect(images.count == 12)
        func json(_ image: String) -> String { "\(data)/outputs_json/\((image as NSString).deletingPathExtension).json" }
        // 1: no annotation.
        try FileManager.default.removeItem(atPath: json(images[0]))
        // 2: a label missing.
        var annotation = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json(images[1])))) as! [String: Any]
        annotation["annotations"] = (annotation["annotations"] as! [[String: Any]]).filter { $0["label"] as? String != "Hamate" }
        try JSONSerialization.data(withJSONObject: annotation).write(to: URL(fileURLWithPath: json(images[1])))
        // 3: a corrupt PNG (garbage with the right name).
        try Data("not a png at all".utf8).write(to: URL(fileURLWithPath: "\(data)/DCM/\(images[2])"))
        // 4: Radius and Ulna swapped.
        annotation = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json(images[3])))) as! [String: Any]
        annotation["annotations"] = (annotation["annotations"] as! [[String: Any]]).map { item in
            var item = item
            switch item["label"] as? String {
            case "Radius": item["label"] = "Ulna"
            case "Ulna": item["label"] = "Radius"
            default: break
            }
            return item
        }
        try JSONSerialization.data(withJSONObject: annotation).write(to: URL(fileURLWithPath: json(images[3])))

        let state = folder.file("state")
        let run = try Self.retrain(data, state: state, ["--seeds", "1", "--epochs", "1", "--from-scratch"])
        #expect(run.result.status == 0, "\(run.result.stderr)")
        let skipped = try #require(run.outcome["skipped_files"] as? [String])
        #expect(skipped.count == 4, "\(skipped)")
        for image in images.prefix(4) {
            let stem = ((image as NSString).lastPathComponent as NSString).deletingPathExtension
            #expect(skipped.contains { $0.contains(stem) }, "\(stem) not reported: \(skipped)")
            #expect(run.result.stderr.contains(stem), "\(stem) not reported on stderr")
        }
        #expect((run.outcome["train_images"] as? Int ?? 0) + (run.outcome["validation_images"] as? Int ?? 0) == 8)
        #expect(run.json["activated"] as? Bool == true)
    }

    /// An empty, missing or layout-less data folder is one clear error and a non-zero exit.
    @Test(arguments: ["missing", "empty", "flat"])
    func unusableDataFolderIsAClearError(kind: String) throws {
        let folder = TemporaryFolder("retrain-empty")
        let data = folder.file("data")
        if kind != "missing" { try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true) }
        if kind == "flat" { try Data("x".utf8).write(to: URL(fileURLWithPath: "\(data)/image.png")) }
        let run = try Self.retrain(data, state: folder.file("state"), ["--seeds", "1", "--epochs", "1"])
        #expect(run.result.status != 0)
        let lines = run.result.stderr.split(separator: "\n").filter { $0.contains("Error") || $0.contains("error") }
        #expect(lines.count == 1 && lines[0].contains(data), "\(run.result.stderr)")
        #expect(Self.activeRelease(folder.file("state")) == nil)
    }

    /// kill -9 in the middle of a run, then the same command: it resumes from the
    /// last epoch checkpoint instead of starting again, and finishes.
    @Test func killedRunResumesFromItsLastCheckpoint() throws {
        let folder = TemporaryFolder("retrain-resume")
        let data = try Self.synth(folder, count: 8, seed: 6)
        let state = folder.file("state")
        let arguments = ["retrain", "--data", data, "--state-dir", state, "--socket", "\(state)/none.sock", "--json", "--seeds", "1", "--epochs", "4", "--from-scratch"] + Self.compact
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Product.path("bonectl"))
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        var progressFile: String?
        for _ in 0..<1200 where progressFile == nil {
            Thread.sleep(forTimeInterval: 0.1)
            let runs = (try? FileManager.default.contentsOfDirectory(atPath: "\(state)/train-runs")) ?? []
            progressFile = runs.map { "\(state)/train-runs/\($0)/seed-0/progress.json" }.first { FileManager.default.fileExists(atPath: $0) }
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let progress = try #require(progressFile, "no checkpoint appeared")
        let saved = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: progress))) as! [String: Any]
        let done = try #require(saved["epochs_done"] as? Int ?? saved["epochsDone"] as? Int)
        #expect(done >= 1 && done < 4)

        let rerun = try Product.run("bonectl", arguments)
        #expect(rerun.status == 0, "\(rerun.stderr)")
        #expect(rerun.stderr.contains("resuming after epoch \(done)"), "\(rerun.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(rerun.stdout.utf8)) as! [String: Any]
        let outcome = json["outcome"] as! [String: Any]
        let history = (outcome["history"] as? [[[String: Any]]])?.first ?? []
        #expect(history.map { $0["epoch"] as? Int } == [1, 2, 3, 4], "the resumed run kept the first epochs' record")
    }
}
