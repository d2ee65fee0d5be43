import Foundation

/// One labelling-tool annotation file, in the competition's exact schema
/// (`outputs_json/IDxxx/<stem>.json`). `filename` and `metadata` are leftovers
/// of the labelling tool (they say .jpg and 3060×3060) and are never trusted.
public struct AnnotationFile: Codable, Sendable, Equatable {
    public var annotations: [BoneAnnotation]
    public var attributes: [String: String]
    public var fileID: String
    public var filename: String
    public var parentPath: String
    public var lastModifierID: String
    public var metadata: Metadata

    public struct Metadata: Codable, Sendable, Equatable {
        public var height: Int
        public var width: Int
        public init(height: Int, width: Int) {
            self.height = height
            self.width = width
        }
    }

    enum CodingKeys: String, CodingKey {
        case annotations, attributes, filename, metadata
        case fileID = "file_id"
        case parentPath = "parent_path"
        case lastModifierID = "last_modifier_id"
    }

    public init(annotations: [BoneAnnotation], attributes: [String: String] = [:], fileID: String, filename: String,
                parentPath: String, lastModifierID: String, metadata: Metadata) {
        self.annotations = annotations
        self.attributes = attributes
        self.fileID = fileID
        self.filename = filename
        self.parentPath = parentPath
        self.lastModifierID = lastModifierID
        self.metadata = metadata
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        annotations = try c.decode([BoneAnnotation].self, forKey: .annotations)
        // Fields the readers ignore are optional so a hand-made file still loads.
        attributes = (try? c.decode([String: String].self, forKey: .attributes)) ?? [:]
        fileID = (try? c.decode(String.self, forKey: .fileID)) ?? ""
        filename = (try? c.decode(String.self, forKey: .filename)) ?? ""
        parentPath = (try? c.decode(String.self, forKey: .parentPath)) ?? ""
        lastModifierID = (try? c.decode(String.self, forKey: .lastModifierID)) ?? ""
        metadata = (try? c.decode(Metadata.self, forKey: .metadata)) ?? Metadata(height: 0, width: 0)
    }

    /// Reads an annotation file; errors name the file.
    public static func read(path: String) throws -> AnnotationFile {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw AnnotationError(path: path, message: "cannot read: \(error.localizedDescription)")
        }
        do {
            return try JSONDecoder().decode(AnnotationFile.self, from: data)
        } catch {
            throw AnnotationError(path: path, message: "not an annotation file: \(describe(error))")
        }
    }

    /// The polygon of each class by channel; nil where a class is missing.
    public func polygonsByClass() -> [[Point]?] {
        var out = [[Point]?](repeating: nil, count: BoneClasses.count)
        for annotation in annotations {
            if let index = BoneClasses.index(of: annotation.label) { out[index] = annotation.points }
        }
        return out
    }
}

public struct Point: Codable, Sendable, Equatable, Hashable {
    public var x: Int
    public var y: Int
    public init(x: Int, y: Int) {
        self.x = x
        self.y = y
    }

    // The schema stores a point as a two-element array [x, y].
    public init(from decoder: Decoder) throws {
        var c = try decoder.unkeyedContainer()
        x = try Self.decodeCoordinate(&c)
        y = try Self.decodeCoordinate(&c)
    }

    private static func decodeCoordinate(_ c: inout UnkeyedDecodingContainer) throws -> Int {
        if let value = try? c.decode(Int.self) { return value }
        // Some tools write 12.0; truncate the way numpy's astype(int32) would.
        return Int(try c.decode(Double.self))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.unkeyedContainer()
        try c.encode(x)
        try c.encode(y)
    }
}

public struct BoneAnnotation: Codable, Sendable, Equatable {
    public var id: String
    public var type: String
    public var attributes: [String: String]
    public var points: [Point]
    public var label: String

    public init(id: String, type: String = "poly_seg", attributes: [String: String] = [:], points: [Point], label: String) {
        self.id = id
        self.type = type
        self.attributes = attributes
        self.points = points
        self.label = label
    }

    enum CodingKeys: String, CodingKey { case id, type, attributes, points, label }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = (try? c.decode(String.self, forKey: .id)) ?? ""
        type = (try? c.decode(String.self, forKey: .type)) ?? "poly_seg"
        attributes = (try? c.decode([String: String].self, forKey: .attributes)) ?? [:]
        points = try c.decode([Point].self, forKey: .points)
        label = try c.decode(String.self, forKey: .label)
    }
}

public struct AnnotationError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let message: String
    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }
    public var description: String { "\(path): \(message)" }
}

func describe(_ error: Error) -> String {
    switch error {
    case DecodingError.keyNotFound(let key, let context):
        return "missing key '\(key.stringValue)' at \(path(context.codingPath))"
    case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
        return "\(context.debugDescription) at \(path(context.codingPath))"
    case DecodingError.dataCorrupted(let context):
        return context.debugDescription
    default:
        return "\(error)"
    }
}

private func path(_ keys: [CodingKey]) -> String {
    keys.isEmpty ? "top level" : keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
}
