import Foundation
import Testing
@testable import TensorEngine

/// Each op against PyTorch (and OpenCV for resize) through fixtures made by
/// tools/make_parity_fixtures.py. Tolerances are absolute on values of order 1.
func fixture(_ name: String, file: String = #filePath) throws -> Tensor {
    let folder = URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent("Fixtures")
    return try NumPyFile.read(path: folder.appendingPathComponent(name + ".npy").path)
}

func maxDifference(_ a: Tensor, _ b: Tensor) -> Float {
    precondition(a.shape == b.shape, "\(a.shape) vs \(b.shape)")
    var m: Float = 0
    for i in 0..<a.count { m = max(m, abs(a.storage[i] - b.storage[i])) }
    return m
}

/// Pools live for the process, so the tests share a few of different sizes.
let testPools = [1, 2, 3].map { ComputePool(threads: $0) }

@Suite struct OpsParityTests {
    @Test func generatorMatchesNumPyBitForBit() throws {
        let committed = try fixture("conv_input")
        let u = DeterministicFill.uniform(name: "conv.input", count: committed.count)
        for i in 0..<committed.count { #expect(u[i] * 2 - 1 == committed.storage[i]) }
    }

    @Test(arguments: [
        ("conv_3x3_s1_p1", 3, 1, 1, 1, 7),
        ("conv_3x3_s2_p1", 3, 2, 1, 1, 6),
        ("conv_3x3_s1_p2_d2", 3, 1, 2, 2, 4),
        ("conv_1x1_s1", 1, 1, 0, 1, 9),
        ("conv_1x1_s2", 1, 2, 0, 1, 8),
        ("conv_7x7_s2_p3", 7, 2, 3, 1, 6),
    ])
    func convolutionMatchesPyTorch(name: String, kernel: Int, stride: Int, padding: Int, dilation: Int, out: Int) throws {
        let input = try fixture("conv_input")
        let expected = try fixture(name)
        for pool in testPools {
            let threads = pool.threadCount
            let conv = Conv2D(inChannels: 5, outChannels: out, kernelSize: kernel, stride: stride, padding: padding, dilation: dilation,
                              weight: DeterministicFill.parameter(name: name + ".weight", shape: [out, 5, kernel, kernel]).array,
                              bias: DeterministicFill.parameter(name: name + ".bias", shape: [out]).array)
            let y = conv(input, pool: pool)
            #expect(y.shape == expected.shape)
            #expect(maxDifference(y, expected) < 1e-5, "\(name) with \(threads) threads")
        }
    }

    @Test func batchNormFoldsIntoConvolution() throws {
        let input = try fixture("conv_input")
        var conv = Conv2D(inChannels: 5, outChannels: 6, kernelSize: 3, padding: 1,
                          weight: DeterministicFill.parameter(name: "convbn.conv.weight", shape: [6, 5, 3, 3]).array)
        func bn(_ key: String) -> [Float] { DeterministicFill.parameter(name: "convbn.bn." + key, shape: [6]).array }
        conv.foldBatchNorm(gamma: bn("weight"), beta: bn("bias"), mean: bn("running_mean"), variance: bn("running_var"))
        #expect(maxDifference(conv(input), try fixture("convbn_3x3")) < 1e-5)
    }

    @Test func epiloguesApplyReLUAndResidual() throws {
        let input = try fixture("conv_input")
        let conv = Conv2D(inChannels: 5, outChannels: 7, kernelSize: 3, padding: 1,
                          weight: DeterministicFill.parameter(name: "conv_3x3_s1_p1.weight", shape: [7, 5, 3, 3]).array,
                          bias: DeterministicFill.parameter(name: "conv_3x3_s1_p1.bias", shape: [7]).array)
        let plain = conv(input)
        let residual = Tensor(shape: plain.shape, values: DeterministicFill.uniform(name: "residual", count: plain.count).map { $0 - 0.5 })
        #expect(maxDifference(conv(input, epilogue: .relu), Ops.relu(plain)) == 0)
        #expect(maxDifference(conv(input, epilogue: .addThenReLU(residual)), Ops.relu(Ops.add(plain, residual))) < 1e-6)
    }

    @Test func poolsMatchPyTorch() throws {
        let input = try fixture("conv_input")
        #expect(maxDifference(Ops.maxPool2d(input, kernel: 3, stride: 2, padding: 1), try fixture("maxpool_3_s2_p1")) == 0)
        #expect(maxDifference(Ops.avgPool2d(input, kernel: 2, stride: 2), try fixture("avgpool_2_s2")) < 1e-6)
    }

    @Test func nearestUpsampleAndConcatMatchPyTorch() throws {
        let input = try fixture("conv_input")
        let up = Ops.upsampleNearest2xConcat(input, [])
        #expect(maxDifference(up, try fixture("nearest_2x")) == 0)
        let joined = Ops.upsampleNearest2xConcat(input, [up, up])
        #expect(joined.shape == [2, 15, 26, 22])
        // Channel 5 of image 1 is channel 0 of the first skip.
        let plane = 26 * 22
        for i in 0..<plane { #expect(joined.storage[(15 + 5) * plane + i] == up.storage[5 * plane + i]) }
    }

    @Test(arguments: [(29, 17), (5, 4), (13, 11), (40, 33)])
    func bilinearResizeMatchesPyTorch(height: Int, width: Int) throws {
        let input = try fixture("conv_input")
        let y = Ops.resizeBilinear(input, height: height, width: width)
        #expect(maxDifference(y, try fixture("bilinear_\(height)x\(width)")) < 1e-5)
    }

    @Test(arguments: [(29, 17), (5, 4)])
    func bilinearResizeMatchesOpenCV(height: Int, width: Int) throws {
        let input = try fixture("conv_input")
        let plane = Tensor(shape: [1, 1, 13, 11], values: Array(input.buffer[0..<(13 * 11)]))
        let expected = try fixture("cv2_linear_\(height)x\(width)")
        let y = Ops.resizeBilinear(plane, height: height, width: width)
        #expect(maxDifference(y.reshaped(expected.shape), expected) < 1e-5)
    }

    @Test func safetensorsReadsTorchDtypes() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
        let (tensors, metadata) = try SafeTensors.read(path: folder.appendingPathComponent("dtypes.safetensors").path)
        #expect(metadata["format"] == "pt")
        #expect(tensors["count"] == nil, "integer tensors are skipped")
        let a32 = try #require(tensors["a32"])
        let reference = DeterministicFill.uniform(name: "st.a", count: 12).map { $0 * 8 - 4 }
        #expect(a32.shape == [3, 4] && a32.array == reference)
        #expect(try #require(tensors["a16"]).array == (try fixture("dtypes_f16")).array)
        #expect(try #require(tensors["abf16"]).array == (try fixture("dtypes_bf16")).array)
    }

    /// Float16 writing rounds as PyTorch's .half() does: written, read back, equal to torch's values.
    @Test func safetensorsWritesFloat16AsTorchRounds() throws {
        let a32 = Tensor(shape: [3, 4], values: DeterministicFill.uniform(name: "st.a", count: 12).map { $0 * 8 - 4 })
        let bytes = SafeTensors.encode(["a": a32], as: .f16)
        let header = String(decoding: bytes[8..<min(bytes.count, 120)], as: UTF8.self)
        #expect(header.contains("\"dtype\":\"F16\""))
        let (back, _) = try bytes.withUnsafeBytes { try SafeTensors.read(bytes: $0, name: "f16") }
        #expect(try #require(back["a"]).array == (try fixture("dtypes_f16")).array)
        #expect(bytes.count < SafeTensors.encode(["a": a32]).count)
    }

    @Test func safetensorsRoundTripsAndRejectsGarbage() throws {
        let t = Tensor(shape: [2, 3], values: [1, -2, 3.5, 0, 1e-8, -7])
        let bytes = SafeTensors.encode(["w": t, "b": Tensor(shape: [1], values: [4])], metadata: ["k": "v"])
        let (back, metadata) = try bytes.withUnsafeBytes { try SafeTensors.read(bytes: $0, name: "mem") }
        #expect(back["w"]!.array == t.array && back["w"]!.shape == [2, 3] && back["b"]!.array == [4])
        #expect(metadata == ["k": "v"])
        let garbage: [UInt8] = Array("this is not a tensor file at all".utf8)
        #expect(throws: TensorFileError.self) { try garbage.withUnsafeBytes { try SafeTensors.read(bytes: $0, name: "g") } }
        var truncated = bytes
        truncated.removeLast(4)
        #expect(throws: TensorFileError.self) { try truncated.withUnsafeBytes { try SafeTensors.read(bytes: $0, name: "t") } }
    }

    @Test func numpyFileRoundTrips() throws {
        let t = Tensor(shape: [1, 2, 3, 4], values: (0..<24).map { Float($0) / 3 })
        let back = try NumPyFile.decode(NumPyFile.encode(t), name: "mem")
        #expect(back.shape == t.shape && back.array == t.array)
        // numpy's own header length is a multiple of 64.
        #expect(NumPyFile.encode(t).count == 128 + 24 * 4)
    }
}
