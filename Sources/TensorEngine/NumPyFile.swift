import Foundation

/// NumPy's .npy format, version 1.0, little-endian float32, C order: the
/// format `bonectl segment --logits` writes and the parity fixtures use.
public enum NumPyFile {
    public static func encode(_ tensor: Tensor) -> [UInt8] {
        let shape = tensor.shape.count == 1 ? "(\(tensor.shape[0]),)" : "(" + tensor.shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shape), }"
        let preamble = 10
        let total = preamble + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - total % 64) % 64) + "\n"
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        let length = UInt16(header.utf8.count)
        out.append(UInt8(length & 0xff))
        out.append(UInt8(length >> 8))
        out.append(contentsOf: header.utf8)
        out.append(contentsOf: UnsafeRawBufferPointer(start: tensor.storage, count: tensor.count * 4))
        return out
    }

    public static func read(path: String) throws -> Tensor {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TensorFileError("\(path): cannot read")
        }
        return try decode([UInt8](data), name: path)
    }

    public static func decode(_ bytes: [UInt8], name: String) throws -> Tensor {
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1..<6]) == Array("NUMPY".utf8) else {
            throw TensorFileError("\(name): not a .npy file")
        }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        if major == 1 {
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        } else {
            guard bytes.count >= 12 else { throw TensorFileError("\(name): truncated .npy header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        }
        guard headerStart + headerLength <= bytes.count else { throw TensorFileError("\(name): truncated .npy header") }
        let header = String(decoding: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        guard header.contains("'descr': '<f4'") else { throw TensorFileError("\(name): only little-endian float32 .npy is supported") }
        guard header.contains("'fortran_order': False") else { throw TensorFileError("\(name): Fortran-order .npy is not supported") }
        guard let open = header.range(of: "'shape': ("), let close = header[open.upperBound...].firstIndex(of: ")") else {
            throw TensorFileError("\(name): .npy header has no shape")
        }
        let shape = header[open.upperBound..<close].split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let count = shape.reduce(1, *)
        let dataStart = headerStart + headerLength
        guard bytes.count - dataStart == count * 4 else {
            throw TensorFileError("\(name): .npy holds \(bytes.count - dataStart) data bytes, shape \(shape) needs \(count * 4)")
        }
        let tensor = Tensor(shape: shape)
        bytes.withUnsafeBytes { raw in
            for i in 0..<count {
                tensor.storage[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: dataStart + 4 * i, as: UInt32.self)))
            }
        }
        return tensor
    }
}
