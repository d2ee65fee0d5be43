import Imaging
import SystemIO

/// Reads a radiograph file into the gray image the models see, with errors that
/// name the file.
enum ImageInput {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func readGray(_ path: String, maxSide: Int = PNGCodec.defaultMaxSide) throws -> (GrayImage, [UInt8]) {
        let bytes: [UInt8]
        do {
            bytes = try AtomicFile.read(path)
        } catch let error as FileError {
            throw Failure(description: error.description)
        }
        do {
            let decoded = try ImageCodec.decode(bytes, maxWidth: maxSide, maxHeight: maxSide)
            return (decoded.grayscale(), bytes)
        } catch let error as ImageDecodeError {
            throw Failure(description: "\(path): \(error.message)")
        }
    }
}
