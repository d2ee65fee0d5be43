import ArgumentParser
import CompetitionFormat
import Daemon
import Foundation
import Models
import Segmentation
import SystemIO
import Synchronization
import Training

/// Set by SIGINT/SIGTERM: the run stops at the next step, keeping its last epoch checkpoint.
private let retrainStopRequested = Atomic<Bool>(false)

/// `bonectl retrain`: train a candidate ensemble on labelled data and activate it
/// only when it beats the active release on the same validation images.
struct RetrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retrain",
        abstract: "Train a candidate release on labelled data; activate it only if it beats the active one.",
        discussion: """
        DATA is the competition's layout (DCM/IDxxx/*.png, outputs_json/IDxxx/*.json). Files that fail \
        the annotation checks (a label missing or repeated, invalid polygons, swapped labels) or whose \
        image cannot be read are reported and left out. Patients are split into training and validation \
        (both hands together). Each seed trains one member with epoch checkpoints under \
        <state>/train-runs/; rerunning the same command after an interruption resumes. The candidate \
        (soft ensemble, per-class thresholds tuned on validation) is activated when its validation \
        Dice ≥ the active release's on the same images + --min-gain; the run is recorded in the ledger.
        """)

    @Option(help: "Labelled data in the competition's layout.") var data: String = "/var/lib/bonesegd/train"
    @Option(help: "Members to train (one per seed).") var seeds: Int = 3
    @Option(help: "Epochs per seed.") var epochs: Int?
    @Option(help: "Wall-clock budget for the whole run instead of --epochs, e.g. 6h, 90m, 1h30m.") var budget: String?
    @Option(help: "Training and inference input size (multiple of 32).") var size: Int = 512
    @Option(help: "Encoder (SMP name).") var encoder: EncoderName = .resnet34
    @Option(name: .customLong("encoder-depth"), help: "Encoder stages used (3–5), as SMP's encoder_depth.") var encoderDepth: Int = 5
    @Option(name: .customLong("decoder-channels"), help: "UNet++ decoder channels, one per encoder stage (default 256,128,64,32,16 cut to the depth).")
    var decoderChannels: String?
    @Flag(name: .customLong("from-active"), help: "Fine-tune the active release's members (default when they match --encoder and --decoder-channels).")
    var fromActive = false
    @Flag(name: .customLong("from-scratch"), help: "Start from freshly initialised weights.") var fromScratch = false
    @Option(name: .customLong("min-gain"), help: "Dice the candidate must gain over the active release to replace it.") var minGain: Double = 0
    @Option(name: .customLong("batch-size"), help: "Images per optimiser step.") var batchSize: Int = 4
    @Option(name: .customLong("learning-rate"), help: "Peak learning rate (default 5e-3 from scratch, 1e-4 from the active release).")
    var learningRate: Float?
    @Option(name: .customLong("validation-fraction"), help: "Share of patients held out for validation.") var validationFraction: Double = 0.2
    @Flag(help: "Add elastic deformation to the augmentations.") var elastic = false
    @Option(name: .customLong("head-bias-prior"), help: "From scratch: the head's bias starts at logit(P) (0 = SMP's zero bias).")
    var headBiasPrior: Double = 0.01
    @Option(help: "Name of the candidate release; its members are NAME-s0, NAME-s1, … (default retrain-<start time>-<run key>).")
    var name: String?
    @Flag(name: .customLong("half-precision-weights"), help: "Store the members' weights as Float16 (half the size).")
    var halfPrecisionWeights = false
    @Flag(name: .customLong("no-activate"), help: "Record the candidate and the gate's verdict, but never activate.") var noActivate = false
    @Flag(help: "Machine-readable result on stdout.") var json = false
    @OptionGroup var daemon: DaemonOptions

    func validate() throws {
        if fromActive && fromScratch { throw ValidationError("--from-active and --from-scratch exclude each other") }
        if epochs != nil && budget != nil { throw ValidationError("give --epochs or --budget, not both") }
        if let budget, RetrainCommand.parseDuration(budget) == nil {
            throw ValidationError("--budget '\(budget)': expected a duration such as 6h, 90m, 1h30m or 45s")
        }
    }

    /// "6h", "90m", "1h30m", "45s", "2h15m10s" → seconds.
    static func parseDuration(_ text: String) -> Double? {
        var total = 0.0, number = ""
        var sawUnit = false
        for character in text {
            if character.isNumber || character == "." { number.append(character); continue }
            guard let value = Double(number) else { return nil }
            switch character {
            case "h": total += value * 3600
            case "m": total += value * 60
            case "s": total += value
            default: return nil
            }
            number = ""
            sawUnit = true
        }
        guard number.isEmpty, sawUnit, total > 0 else { return nil }
        return total
    }

    func run() throws {
        let config = try daemon.load()
        let models = ModelStore(root: "\(config.stateDir)/models")
        let releases = ReleaseStore(beside: models)
        let runs = "\(config.stateDir)/train-runs"
        let arguments = CommandLine.arguments.joined(separator: " ")
        let lock = try RunLock(path: "\(runs)/.lock")
        defer { lock.release() }

        let ledger = try Ledger(path: config.ledgerPath)
        _ = try ledger.markStaleRetrainsInterrupted()

        let links = ReleaseLinks(stateDir: config.stateDir)
        let championName = links.active()
        var champion: LoadedRelease?
        var championProblem: String?
        if let championName {
            do { champion = try releases.load(championName) } catch { championProblem = "\(error)" }
        }

        var options = RetrainOptions(dataDirectory: URL(fileURLWithPath: data).standardizedFileURL.path)
        options.seeds = seeds
        options.epochs = epochs
        options.budgetSeconds = budget.flatMap(RetrainCommand.parseDuration)
        options.size = size
        options.encoder = encoder
        options.encoderDepth = encoderDepth
        options.decoderChannels = try decoderChannels.map(parseChannels) ?? Array([256, 128, 64, 32, 16].prefix(encoderDepth))
        options.minGain = minGain
        options.batchSize = batchSize
        options.learningRate = learningRate
        options.validationFraction = validationFraction
        options.elastic = elastic
        options.halfPrecisionWeights = halfPrecisionWeights
        guard headBiasPrior >= 0, headBiasPrior < 1 else { throw ValidationError("--head-bias-prior must be in [0, 1)") }
        options.headBiasPrior = headBiasPrior > 0 ? headBiasPrior : nil
        if let name {
            do { try ModelStore.validate(name: name) } catch { throw ValidationError("--name: \(error)") }
            options.releaseName = name
        }
        options.start = startingPoint(champion: champion, channels: options.decoderChannels)
        if fromActive && options.start != .active {
            throw TrainingError(champion == nil
                ? "--from-active: no usable active release" + (championProblem.map { " (\($0))" } ?? "")
                : "--from-active: the active release's members are not \(encoder.rawValue) (depth \(encoderDepth)) with decoder \(options.decoderChannels)")
        }

        let reporter = RetrainReporter(seeds: seeds)
        reporter.line("retraining from \(options.start == .active ? "the active release \(championName!)" : "scratch"): "
                      + "\(seeds) seed(s), \(encoder.rawValue) at \(size)², "
                      + (epochs.map { "\($0) epoch(s)" } ?? "budget \(budget!)") + ", data \(options.dataDirectory)")
        for signal in [SIGINT, SIGTERM] {
            Glibc.signal(signal) { _ in retrainStopRequested.store(true, ordering: .relaxed) }
        }

        var ledgerID: Int64?
        let retrainer = Retrainer(options: options, releases: releases, runsDirectory: runs, champion: champion)
        let outcome: RetrainOutcome
        do {
            outcome = try retrainer.run(events: { event in
                if case .dataset(_, let train, let validation, let problems) = event {
                    ledgerID = try? ledger.beginRetrain(dataDir: options.dataDirectory, arguments: arguments, seeds: seeds,
                                                        trainImages: train, validationImages: validation,
                                                        skippedFiles: problems.count, minGain: options.minGain)
                }
                if case .epoch(_, let record, _) = event, let ledgerID {
                    try? ledger.updateRetrainProgress(id: ledgerID, epochs: record.epoch)
                }
                reporter.report(event)
            }, shouldStop: { retrainStopRequested.load(ordering: .relaxed) })
        } catch {
            reporter.clear()
            let interrupted = error is RetrainInterrupted
            let id = try ledgerID ?? ledger.beginRetrain(dataDir: options.dataDirectory, arguments: arguments, seeds: seeds,
                                                          trainImages: 0, validationImages: 0, skippedFiles: 0)
            try ledger.finishRetrain(id: id, state: interrupted ? .interrupted : .failed, candidateRelease: nil,
                                     candidateDice: nil, championRelease: championName, championDice: nil, reason: "\(error)")
            if interrupted { throw ExitCode(75) }
            throw TrainingError("\(error)")
        }
        reporter.clear()

        var activated = false
        var activationFailed = false
        var reason = outcome.reason
        if outcome.promote && !noActivate {
            do {
                let activation = try ReleaseActivation.activate(release: outcome.candidateRelease, config: config)
                activated = true
                switch activation.daemon {
                case .reloaded: reason += "; activated, bonesegd reloaded"
                case .notRunning: reason += "; activated (bonesegd not running: it serves it when it starts)"
                }
            } catch {
                reason += "; activation failed: \(error)"
                activationFailed = true
            }
        } else if outcome.promote {
            reason += "; not activated (--no-activate)"
        }
        let id = try ledgerID ?? ledger.beginRetrain(dataDir: options.dataDirectory, arguments: arguments, seeds: seeds,
                                                      trainImages: outcome.trainImages, validationImages: outcome.validationImages,
                                                      skippedFiles: outcome.skippedFiles.count)
        try ledger.finishRetrain(id: id, state: activated ? .promoted : .keptChampion, candidateRelease: outcome.candidateRelease,
                                 candidateDice: outcome.candidateDice, championRelease: outcome.championRelease,
                                 championDice: outcome.championDice, reason: reason)
        // The run is complete: its checkpoints go, its record stays with the members in the store.
        try? FileManager.default.moveItem(atPath: outcome.runDirectory,
                                          toPath: "\(outcome.runDirectory).done-\(Int(Date().timeIntervalSince1970))")

        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            encoder.keyEncodingStrategy = .convertToSnakeCase
            print(String(decoding: try encoder.encode(RetrainReport(outcome: outcome, activated: activated, reason: reason,
                                                                    ledgerID: id)), as: UTF8.self))
            if activationFailed { throw ExitCode(1) }
            return
        }
        print("candidate \(outcome.candidateRelease): validation Dice \(String(format: "%.4f", outcome.candidateDice)) "
              + "(members at \(size)²: \(outcome.memberDice.map { String(format: "%.4f", $0) }.joined(separator: ", ")); "
              + "ensemble \(String(format: "%.4f", outcome.ensembleDiceAtTrainingSize)), "
              + "tuned \(String(format: "%.4f", outcome.tunedDiceAtTrainingSize)))")
        if let championRelease = outcome.championRelease, let championDice = outcome.championDice {
            print("champion \(championRelease): validation Dice \(String(format: "%.4f", championDice))")
        }
        print(reason)
        if !outcome.skippedFiles.isEmpty { print("\(outcome.skippedFiles.count) file(s) left out (listed above)") }
        // The candidate won but could not be served: a failure for the timer's unit to show.
        if activationFailed { throw ExitCode(1) }
    }

    /// --from-active when asked, or by default when the active release's members match the model asked for.
    private func startingPoint(champion: LoadedRelease?, channels: [Int]) -> RetrainOptions.Start {
        if fromScratch { return .scratch }
        guard let champion, champion.members.allSatisfy({
            $0.manifest.encoder == encoder && $0.manifest.encoderDepth == encoderDepth && $0.manifest.decoderChannels == channels
                && $0.manifest.classes == BoneClasses.names
        }) else { return .scratch }
        return .active
    }
}

struct RetrainReport: Encodable {
    let outcome: RetrainOutcome
    let activated: Bool
    let reason: String
    let ledgerID: Int64
}

/// A progress bar with loss, Dice and ETA on a terminal; plain lines (each epoch,
/// and a step line at most once a minute) otherwise. Everything goes to stderr.
final class RetrainReporter {
    let terminal: Bool
    let seeds: Int
    var lastDice: Double?
    var lastPlainLine = ContinuousClock.now

    init(seeds: Int) {
        terminal = isatty(STDERR_FILENO) != 0
        self.seeds = seeds
    }

    func line(_ text: String) {
        clear()
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    func clear() {
        if terminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }

    func report(_ event: RetrainEvent) {
        switch event {
        case .dataset(let images, let train, let validation, let problems):
            for problem in problems { line("left out: \(problem)") }
            line("data: \(images) usable image(s): \(train) for training, \(validation) for validation; \(problems.count) left out")
        case .resumed(let seed, let done):
            line("seed \(seed + 1)/\(seeds): resuming after epoch \(done)")
        case .problem(let problem):
            line("left out: \(problem)")
        case .stage(let text):
            line(text)
        case .epoch(let seed, let record, let epochs):
            lastDice = record.validationDice
            line(String(format: "seed %d/%d epoch %d/%d: loss %.4f, validation Dice %.4f, %@ elapsed",
                        seed + 1, seeds, record.epoch, epochs, record.meanLoss, record.validationDice,
                        formatDuration(record.elapsedSeconds)))
        case .step(let seed, let epoch, let epochs, let step, let steps, let loss, let eta):
            let epochText = epochs.map { "\(epoch)/\($0)" } ?? "\(epoch)"
            let diceText = lastDice.map { String(format: " Dice %.4f", $0) } ?? ""
            let etaText = eta.map { " ETA \(formatDuration($0))" } ?? ""
            if terminal {
                let width = 24, filled = width * step / max(steps, 1)
                let bar = String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled)
                FileHandle.standardError.write(Data(String(format: "\r\u{1B}[Kseed %d/%d epoch %@ [%@] %d/%d loss %.4f%@%@",
                                                           seed + 1, seeds, epochText, bar, step, steps, loss,
                                                           diceText, etaText).utf8))
            } else if ContinuousClock.now - lastPlainLine >= .seconds(60) {
                lastPlainLine = ContinuousClock.now
                line(String(format: "seed %d/%d epoch %@ step %d/%d: loss %.4f%@%@", seed + 1, seeds, epochText, step, steps,
                            loss, diceText, etaText))
            }
        }
    }
}

/// An exclusive lock on a file (flock): one retraining at a time per state directory.
final class RunLock {
    private let descriptor: Int32

    init(path: String) throws {
        try AtomicFile.makeDirectories((path as NSString).deletingLastPathComponent)
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw TrainingError("\(path): cannot open the retraining lock (\(String(cString: strerror(errno))))") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw TrainingError("\(path): another bonectl retrain is running on this state directory")
        }
    }

    func release() {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}
