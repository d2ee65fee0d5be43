import CompetitionFormat
import Foundation
import Imaging
@testable import Synthesis
import TestSupport
@testable import Training

/// Helpers shared by the Data* suites.
enum DataFixtures {
    /// `count` phantoms in the competition layout (two per patient: right, then left).
    static func phantoms(count: Int, size: Int = 256, seed: UInt64 = 3) throws -> TemporaryFolder {
        let folder = TemporaryFolder("bonesegd-data")
        try SynthDataset.generate(out: folder.path, count: count, options: SynthOptions(size: size, seed: seed), jobs: 2)
        return folder
    }

    /// A phantom's annotation from its pose alone (no pixels rendered): the same
    /// polygons `bonectl synth` writes for image `index` of `seed`.
    static func poseAnnotation(index: Int, seed: UInt64, size: Int = 2048) -> AnnotationFile {
        let plan = SynthDataset.plan(count: index + 1, seed: seed)[index]
        var rng = SplitMix64(seed: seed, stream: UInt64(plan.index) &+ 1, salt: 1)
        let pose = HandPose.random(&rng, isLeft: plan.isLeft, patientScale: plan.patient.handScale,
                                   flexedFraction: SynthOptions().flexedFraction)
        let hand = HandBuilder.build(pose: pose, size: size)
        return annotation(hand.bones.map { Polygon.rounded($0.outline).map { Point(x: $0.0, y: $0.1) } }, size: size)
    }

    /// An annotation with one polygon per class, in class order.
    static func annotation(_ polygons: [[Point]], labels: [String] = BoneClasses.names, size: Int) -> AnnotationFile {
        AnnotationFile(annotations: zip(labels, polygons).map { BoneAnnotation(id: "", points: $1, label: $0) },
                       fileID: "", filename: "", parentPath: "", lastModifierID: "",
                       metadata: .init(height: size, width: size))
    }

    /// The same annotation with the labels of two bones exchanged.
    static func swapping(_ a: String, _ b: String, in file: AnnotationFile) -> AnnotationFile {
        var out = file
        for i in out.annotations.indices {
            if out.annotations[i].label == a { out.annotations[i].label = b } else if out.annotations[i].label == b { out.annotations[i].label = a }
        }
        return out
    }

    static func write(_ file: AnnotationFile, to path: String) throws {
        try SynthDataset.encodeAnnotation(file).write(to: URL(fileURLWithPath: path))
    }

    static func read(_ path: String) throws -> AnnotationFile { try AnnotationFile.read(path: path) }

    /// The real annotation of the competition's training set, when the shared data is present.
    static let realAnnotationPath: String = {
        let here = URL(fileURLWithPath: #filePath)  // …/Tests/TrainingTests/DataSupport.swift
        let repo = here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidates = [repo.appendingPathComponent("../shared/data").path, "/work/shared/data"]
        let relative = "annotation-sample/ID001/image1661130828152_R.json"
        return candidates.map { ($0 as NSString).appendingPathComponent(relative) }
            .first { FileManager.default.fileExists(atPath: $0) } ?? ""
    }()

    static var hasRealAnnotation: Bool { !realAnnotationPath.isEmpty }

    /// Names of the images a dataset scan found usable.
    static func names(_ dataset: TrainingDataset) -> [String] { dataset.images.map(\.name) }

    /// Relative paths of the DCM images of a folder, sorted.
    static func imageNames(in root: String) -> [String] {
        let walker = FileManager.default.enumerator(atPath: root + "/DCM")!
        var out: [String] = []
        while let entry = walker.nextObject() as? String {
            if entry.hasSuffix(".png") { out.append(entry) }
        }
        return out.sorted()
    }
}
