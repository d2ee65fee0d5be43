import Daemon
import Foundation
import TensorEngine
import Testing

/// The nightly path end to end: bonesegd serves a weak release with the real
/// pipeline while `bonectl retrain` trains a candidate on phantoms; the
/// candidate beats it, is activated, and the daemon switches to it with no job
/// failed or lost.
@Suite(.serialized) struct RetrainSwitchTests {
    @Test func promotedCandidateIsServedWithoutDroppingAJob() throws {
        let h = try DaemonHarness(settle: 0.1)
        try h.usePipelineEngine()
        let compact = ["--encoder", "resnet18", "--decoder-channels", "16,8,8,8,8"]
        // The champion predicts nothing (random weights, head bias −1000), so the candidate beats it.
        let random = "\(h.root)/random.safetensors", weights = "\(h.root)/weak.safetensors"
        let made = try runCommand(Products.bonectl, ["model", "random-weights", "--out", random] + compact)
        #expect(made.status == 0, "\(made.stderr)")
        var (tensors, _) = try SafeTensors.read(path: random)
        let bias = try #require(tensors["segmentation_head.0.bias"])
        tensors["segmentation_head.0.bias"] = Tensor(shape: bias.shape, values: [Float](repeating: -1000, count: bias.count))
        try Data(SafeTensors.encode(tensors)).write(to: URL(fileURLWithPath: weights))
        for arguments in [["model", "import", weights, "--name", "weak", "--arch", "unetplusplus", "--input-size", "64",
                           "--store", "\(h.state)/models"] + compact,
                          ["release", "create", "weak", "--members", "weak", "--store", "\(h.state)/models"],
                          ["release", "activate", "weak", "--config", h.configPath],
                          ["synth", "--out", "\(h.root)/data", "--count", "12", "--size", "256", "--seed", "11"]] {
            let step = try runCommand(Products.bonectl, arguments)
            #expect(step.status == 0, "\(arguments.prefix(2)): \(step.stderr)")
        }
        try h.startReady()

        // Jobs keep arriving while the retraining runs and after it.
        final class Feed: @unchecked Sendable {
            let lock = NSLock()
            var retrainDone = false
            var dropped: [String] = []
            let finished = DispatchSemaphore(value: 0)
        }
        let feed = Feed()
        let inbox = h.inbox
        Thread {
            var i = 0, afterRetrain = 0
            while true {
                feed.lock.lock(); let retrainDone = feed.retrainDone; feed.lock.unlock()
                let rel = "ID\(i % 4)/job\(i).png"
                // Written under a dot name and renamed, as a careful client drops files.
                let folder = "\(inbox)/\((rel as NSString).deletingLastPathComponent)"
                try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                let hidden = "\(folder)/.job\(i).png"
                try? Data(Images.png(seed: 9000 + i, width: 80, height: 96)).write(to: URL(fileURLWithPath: hidden))
                rename(hidden, "\(inbox)/\(rel)")
                feed.lock.lock(); feed.dropped.append(rel); feed.lock.unlock()
                i += 1
                // Twelve more once the candidate is active, so it answers at least ten.
                if retrainDone { afterRetrain += 1; if afterRetrain == 12 { break } }
                usleep(150_000)
            }
            feed.finished.signal()
        }.start()

        let retrain = try runCommand(Products.bonectl, ["retrain", "--data", "\(h.root)/data", "--config", h.configPath, "--json",
                                                        "--seeds", "1", "--epochs", "2", "--size", "64", "--batch-size", "4",
                                                        "--from-scratch"] + compact)
        feed.lock.lock(); feed.retrainDone = true; feed.lock.unlock()
        feed.finished.wait()
        let dropped = feed.dropped
        #expect(retrain.status == 0, "\(retrain.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(retrain.stdout.utf8)) as? [String: Any] ?? [:]
        let outcome = json["outcome"] as? [String: Any] ?? [:]
        let candidate = try #require(outcome["candidate_release"] as? String, "\(retrain.stdout)")
        #expect(json["activated"] as? Bool == true, "\(json)")
        #expect((json["reason"] as? String)?.contains("bonesegd reloaded") == true, "\(json["reason"] ?? "")")

        #expect(waitUntil(120) { h.files(under: "done").count == dropped.count }, "done/ holds \(h.files(under: "done").count) of \(dropped.count)")
        var byRelease = [String: Int]()
        var order: [String] = []
        for rel in dropped {
            let stem = (rel as NSString).deletingPathExtension
            let data = FileManager.default.contents(atPath: "\(h.spool)/outbox/\(stem).json") ?? Data()
            let release = (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["release"] as? String ?? "missing"
            byRelease[release, default: 0] += 1
            order.append(release)
        }
        #expect(byRelease["missing"] == nil, "\(byRelease)")
        #expect(byRelease["weak", default: 0] >= 1 && byRelease[candidate, default: 0] >= 10, "\(byRelease)")
        // Once a job was answered by the candidate, no later job went back to the old release.
        if let firstNew = order.firstIndex(of: candidate) {
            #expect(!order[firstNew...].contains("weak"), "\(order)")
        }
        let status = try h.status()
        #expect(status.total.failed == 0)
        #expect(status.total.quarantined == 0)
        #expect(status.release?.name == candidate)
        h.stop()
    }
}
