import Imaging
import Models
import TensorEngine

/// Radiograph → network input, as the competition baseline prepared it:
/// gray replicated to 3 channels, normalised, resized (bilinear,
/// align_corners=False) to the model's input size. Normalisation is affine and
/// resize weights sum to one, so resizing the single gray plane first gives the
/// same values at a third of the cost.
public enum Preprocessing {
    public static func input(for image: GrayImage, size: Int, normalize: Normalization) -> Tensor {
        input(for: image, height: size, width: size, normalize: normalize)
    }

    public static func input(for image: GrayImage, height: Int, width: Int, normalize: Normalization) -> Tensor {
        var plane = image.pixels
        if image.height != height || image.width != width {
            var resized = [Float](repeating: 0, count: height * width)
            let xs = BilinearAxis(inSize: image.width, outSize: width)
            let ys = BilinearAxis(inSize: image.height, outSize: height)
            plane.withUnsafeBufferPointer { src in
                resized.withUnsafeMutableBufferPointer { dst in
                    Ops.resizePlane(src: src.baseAddress!, width: image.width, dst: dst.baseAddress!,
                                    outWidth: width, outHeight: height, xs: xs, ys: ys)
                }
            }
            plane = resized
        }
        let tensor = Tensor(shape: [1, 3, height, width])
        let count = height * width
        for c in 0..<3 {
            let (scale, offset) = normalize.affine(channel: c)
            let out = tensor.storage + c * count
            for i in 0..<count { out[i] = plane[i] * scale + offset }
        }
        return tensor
    }
}
