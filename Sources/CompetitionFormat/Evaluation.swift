import Foundation

/// Scores a submission against a ground-truth folder with the competition's Dice.
public enum Evaluation {
    /// Every annotated image must have exactly one row per class in the
    /// submission (matched by file name without extension), and every
    /// submitted image must be annotated. Errors name the file, line and row.
    /// Ground truth is loaded one image at a time.
    public static func evaluate(rows: [SubmissionRow], predictionPath: String, groundTruth directory: String,
                                defaultSize: Int = 2048,
                                progress: ((_ done: Int, _ total: Int) -> Void)? = nil) throws -> DiceReport {
        // Index the submission: stem → class → row.
        var byStem = [String: [Int?]]()
        var nameOfStem = [String: (name: String, line: Int)]()
        for (i, row) in rows.enumerated() {
            let stem = (row.imageName as NSString).deletingPathExtension
            if let other = nameOfStem[stem], other.name != row.imageName {
                throw GroundTruthError(path: location(predictionPath, row.line),
                                       message: "image '\(row.imageName)' and '\(other.name)' (line \(other.line)) name the same image")
            }
            nameOfStem[stem] = nameOfStem[stem] ?? (row.imageName, row.line)
            let c = BoneClasses.index(of: row.className)!  // the reader checked it
            var classes = byStem[stem] ?? [Int?](repeating: nil, count: BoneClasses.count)
            if let first = classes[c] {
                throw GroundTruthError(path: location(predictionPath, row.line),
                                       message: "duplicate row (\(row.imageName), \(row.className)), first at line \(rows[first].line)")
            }
            classes[c] = i
            byStem[stem] = classes
        }

        let sources = try GroundTruth.sources(in: directory)
        var annotated = Set<String>()
        for source in sources {
            annotated.insert(((source.annotationPath as NSString).lastPathComponent as NSString).deletingPathExtension)
        }
        // A submitted image without annotation: report the first in file order.
        for row in rows {
            let stem = (row.imageName as NSString).deletingPathExtension
            if !annotated.contains(stem) {
                throw GroundTruthError(path: location(predictionPath, row.line),
                                       message: "image '\(row.imageName)' has no annotation in \(directory)")
            }
        }

        var report = DiceReport()
        var scratch = [UInt8]()
        var seen = [String: String]()
        for (done, source) in sources.enumerated() {
            let truth = try GroundTruth.load(source, defaultSize: defaultSize, scratch: &scratch)
            if let other = seen[truth.stem] {
                throw GroundTruthError(path: source.annotationPath, message: "image '\(truth.stem)' is also annotated by \(other)")
            }
            seen[truth.stem] = source.annotationPath
            guard let classes = byStem[truth.stem] else {
                throw GroundTruthError(path: predictionPath, message: "no rows for image '\(truth.stem)' (annotated in \(source.annotationPath))")
            }
            var scores = [Double]()
            scores.reserveCapacity(BoneClasses.count)
            for c in 0..<BoneClasses.count {
                guard let i = classes[c] else {
                    throw GroundTruthError(path: predictionPath,
                                           message: "no row for (\(nameOfStem[truth.stem]!.name), \(BoneClasses.names[c]))")
                }
                let predicted: [Run]
                do {
                    predicted = try RLE.decodeRuns(rows[i].rle, pixelCount: truth.width * truth.height)
                } catch {
                    throw GroundTruthError(path: location(predictionPath, rows[i].line),
                                           message: "bad RLE for (\(rows[i].imageName), \(rows[i].className)) on a \(truth.width)x\(truth.height) image: \(error)")
                }
                scores.append(Dice.score(predicted, truth.classRuns[c]))
            }
            report.add(image: truth.stem, scores: scores)
            progress?(done + 1, sources.count)
        }
        return report
    }

    static func location(_ path: String, _ line: Int) -> String { line > 0 ? "\(path):\(line)" : path }
}
