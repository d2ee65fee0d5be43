// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "bonesegd",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "bonectl", targets: ["bonectl"]),
        .executable(name: "bonesegd", targets: ["bonesegd"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
    ],
    targets: [
        // C libraries: OpenBLAS for matrix work; libpng, libjpeg-turbo and libdeflate (fast PNG writes) for images.
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .target(name: "CPNG", linkerSettings: [.linkedLibrary("png16"), .linkedLibrary("jpeg"), .linkedLibrary("deflate")]),

        // Numerical core: tensors, ops, threads, safetensors.
        .target(name: "TensorEngine", dependencies: ["CBLAS"], swiftSettings: optimizedEvenInDebug),
        // Networks built on the engine: encoders, UNet++ decoder, model packages.
        .target(name: "Models", dependencies: [
            "TensorEngine", "SystemIO", "COpenSSL",
        ]),
        // Training: backward passes, BCE + Dice, AdamW, a trainable UNet++ with SMP's keys.
        .target(name: "Training", dependencies: ["TensorEngine", "Models", "Imaging", "CompetitionFormat", "Segmentation", "SystemIO"],
                swiftSettings: optimizedEvenInDebug),
        // Durable file writes (temp, fsync, rename, fsync dir) and reads that name the file.
        .target(name: "SystemIO"),
        // Pixels in and out: PNG codec, gray conversion.
        .target(name: "Imaging", dependencies: ["CPNG"]),
        // The competition's formats: class list, annotation JSON, RLE, CSV.
        .target(name: "CompetitionFormat", dependencies: ["Imaging", "SystemIO"]),

        // Image → logits → masks: preprocessing, ensembles, thresholds (no I/O policy).
        .target(name: "Segmentation", dependencies: ["TensorEngine", "Models", "Imaging", "CompetitionFormat"]),

        // Synthetic hand radiographs with exact bone labels, in the competition's layout.
        .target(name: "Synthesis", dependencies: ["CompetitionFormat", "Imaging", "SystemIO"]),

        // The daemon: spool, inotify watcher, job runner, ledger (SQLite), control socket, sd_notify, config.
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        .target(name: "Daemon", dependencies: [
            "CSQLite", "CSystemd", "SystemIO", "Imaging", "Models", "CompetitionFormat", "Segmentation",
            .product(name: "TOMLKit", package: "TOMLKit"),
        ]),
        .executableTarget(name: "bonesegd", dependencies: ["Daemon"]),

        // bonectl's commands live in a library so tests can reach them.
        .target(name: "BonectlCommands", dependencies: [
            "TensorEngine", "Models", "Imaging", "CompetitionFormat", "SystemIO", "Segmentation", "Synthesis", "Daemon", "Training",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "bonectl", dependencies: ["BonectlCommands"]),

        .testTarget(name: "TensorEngineTests", dependencies: ["TensorEngine"], exclude: ["Fixtures"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "TensorEngine"], exclude: ["Fixtures"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Models", "TensorEngine", "Segmentation", "CompetitionFormat", "Imaging", "Synthesis", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "SegmentationTests", dependencies: ["Segmentation", "CompetitionFormat", "Imaging", "TensorEngine"],
                    exclude: ["Fixtures"]),
        // Helpers for tests that run the built products as real processes.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "BonectlTests", dependencies: ["TestSupport", "CompetitionFormat", "Imaging", "TensorEngine", "bonectl"]),
        .testTarget(name: "DaemonTests", dependencies: ["Daemon", "BonectlCommands", "Imaging", "TensorEngine", "bonesegd", "bonectl"]),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging"], exclude: ["Fixtures"]),
        .testTarget(name: "SynthesisTests", dependencies: ["Synthesis", "CompetitionFormat", "Imaging"]),
        .testTarget(name: "CompetitionFormatTests", dependencies: ["CompetitionFormat", "Imaging", "TestSupport", "bonectl"],
                    resources: [.copy("Fixtures")]),
    ],
    swiftLanguageModes: [.v6]
)

/// The numeric modules are compiled with -O in debug builds too: training and
/// inference loops run 10–50× slower unoptimised, which would make `swift test`
/// (a debug build) spend minutes in the end-to-end retraining tests.
var optimizedEvenInDebug: [SwiftSetting] { [.unsafeFlags(["-O"], .when(configuration: .debug))] }
