import Foundation
import Models
import Segmentation

/// The production processor: the release's UNet++ ensemble (Segmentation.SegmentationPipeline).
struct PipelineProcessor: JobProcessor {
    let pipeline: SegmentationPipeline

    func process(imageBytes: [UInt8], imageName: String) throws -> ProcessedImage {
        let result = try pipeline.process(imageBytes: imageBytes, imageName: imageName)
        return ProcessedImage(csv: result.csv, overlayPNG: result.overlayPNG, sidecarJSON: result.sidecarJSON, classAreas: result.classAreas)
    }
}

/// Loads `<state>/releases/<name>` with its member models from `<state>/models`
/// (weights checked against the release's sha256), then runs one warm-up forward.
public struct PipelineLoader: ProcessorLoader {
    public let stateDir: String
    public let maxSide: Int
    public init(stateDir: String, maxSide: Int) {
        self.stateDir = stateDir
        self.maxSide = maxSide
    }

    public func load(releaseName: String) throws -> LoadedProcessor {
        let store = ReleaseStore(root: "\(stateDir)/releases", models: ModelStore(root: "\(stateDir)/models"))
        do {
            let release = try store.load(releaseName)
            let pipeline = SegmentationPipeline(release: release, maxSide: maxSide)
            try pipeline.warmUp()
            return LoadedProcessor(release: releaseName, members: release.manifest.members.map(\.model), processor: PipelineProcessor(pipeline: pipeline))
        } catch {
            throw ReleaseLoadError(release: releaseName, reason: "\(error)")
        }
    }
}
