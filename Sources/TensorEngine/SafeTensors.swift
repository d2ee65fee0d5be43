import Foundation

/// Errors from reading tensor files, naming the file and what is wrong.
public struct TensorFileError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The safetensors format (as written by `safetensors.torch.save_file`): an
/// 8-byte little-endian header length, a JSON header of name → dtype, shape and
/// byte offsets, then the raw little-endian data.
public enum SafeTensors {
    public struct Entry: Sendable {
        public let dtype: String
        public let shape: [Int]
        public let begin: Int
        public let end: Int
    }

    /// Reads every floating-point tensor (F32, F16, BF16, F64) as Float32.
    /// Integer tensors (BatchNorm's `num_batches_tracked`) are skipped: inference never uses them.
    public static func read(path: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw TensorFileError("\(path): cannot read: \(error.localizedDescription)")
        }
        return try data.withUnsafeBytes { try read(bytes: $0, name: path) }
    }

    public static func read(bytes: UnsafeRawBufferPointer, name: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        let (entries, metadata, dataStart) = try parseHeader(bytes: bytes, name: name)
        var tensors: [String: Tensor] = [:]
        for (key, entry) in entries {
            let count = entry.shape.reduce(1, *)
            let start = dataStart + entry.begin
            guard entry.end >= entry.begin, dataStart + entry.end <= bytes.count else {
                throw TensorFileError("\(name): tensor '\(key)' points past the end of the file")
            }
            let raw = UnsafeRawBufferPointer(rebasing: bytes[start..<(dataStart + entry.end)])
            let width: Int
            switch entry.dtype {
            case "F32": width = 4
            case "F16", "BF16": width = 2
            case "F64": width = 8
            case "I64", "I32", "I16", "I8", "U8", "BOOL", "U16", "U32", "U64": continue
            default: throw TensorFileError("\(name): tensor '\(key)' has unsupported dtype \(entry.dtype)")
            }
            guard raw.count == count * width else {
                throw TensorFileError("\(name): tensor '\(key)' holds \(raw.count) bytes, shape \(entry.shape) of \(entry.dtype) needs \(count * width)")
            }
            let tensor = Tensor(shape: entry.shape)
            let out = tensor.storage
            switch entry.dtype {
            case "F32":
                for i in 0..<count { out[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
            case "F16":
                for i in 0..<count { out[i] = Float(Float16(bitPattern: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))) }
            case "BF16":
                for i in 0..<count { out[i] = Float(bitPattern: UInt32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16) }
            default:
                for i in 0..<count { out[i] = Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
            }
            tensors[key] = tensor
        }
        return (tensors, metadata)
    }

    /// The header alone: names, dtypes and shapes, without reading tensor data.
    public static func parseHeader(bytes: UnsafeRawBufferPointer, name: String) throws -> (entries: [String: Entry], metadata: [String: String], dataStart: Int) {
        guard bytes.count >= 8 else { throw TensorFileError("\(name): not a safetensors file (shorter than its 8-byte header length)") }
        let headerLength = Int(UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self)))
        guard headerLength > 1, headerLength <= bytes.count - 8, headerLength < 100_000_000 else {
            throw TensorFileError("\(name): not a safetensors file (header length \(headerLength) does not fit the file)")
        }
        let headerData = Data(bytes[8..<(8 + headerLength)])
        guard let json = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any] else {
            throw TensorFileError("\(name): not a safetensors file (header is not a JSON object)")
        }
        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        for (key, value) in json {
            if key == "__metadata__" {
                if let m = value as? [String: Any] {
                    for (k, v) in m { metadata[k] = "\(v)" }
                }
                continue
            }
            guard let object = value as? [String: Any], let dtype = object["dtype"] as? String,
                  let shape = object["shape"] as? [Int], let offsets = object["data_offsets"] as? [Int], offsets.count == 2 else {
                throw TensorFileError("\(name): tensor '\(key)' has a malformed header entry")
            }
            entries[key] = Entry(dtype: dtype, shape: shape, begin: offsets[0], end: offsets[1])
        }
        return (entries, metadata, 8 + headerLength)
    }

    /// How `encode` stores values: Float32 as computed, or Float16 (round to
    /// nearest even) for half-size files such as the committed demo release.
    public enum StorageType: String, Sendable, CaseIterable {
        case f32 = "F32", f16 = "F16"
        var width: Int { self == .f32 ? 4 : 2 }
    }

    /// Tensors as safetensors bytes; keys sorted so the same tensors give the same bytes.
    public static func encode(_ tensors: [String: Tensor], metadata: [String: String] = [:], as storage: StorageType = .f32) -> [UInt8] {
        let keys = tensors.keys.sorted()
        var offset = 0
        var header = "{"
        if !metadata.isEmpty {
            let items = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }
            header += "\"__metadata__\":{\(items.joined(separator: ","))},"
        }
        var items: [String] = []
        for key in keys {
            let t = tensors[key]!
            let size = t.count * storage.width
            items.append("\(jsonString(key)):{\"dtype\":\"\(storage.rawValue)\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + size)]}")
            offset += size
        }
        header += items.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while (8 + headerBytes.count) % 8 != 0 { headerBytes.append(0x20) }
        var out = [UInt8]()
        out.reserveCapacity(8 + headerBytes.count + offset)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: headerBytes)
        for key in keys {
            let t = tensors[key]!
            switch storage {
            case .f32:
                out.append(contentsOf: UnsafeRawBufferPointer(start: t.storage, count: t.count * 4))
            case .f16:
                for i in 0..<t.count {
                    withUnsafeBytes(of: Float16(t.storage[i]).bitPattern.littleEndian) { out.append(contentsOf: $0) }
                }
            }
        }
        return out
    }

    private static func jsonString(_ s: String) -> String {
        let data = try! JSONSerialization.data(withJSONObject: [s], options: [])
        let text = String(decoding: data, as: UTF8.self)
        return String(text.dropFirst().dropLast())
    }
}
