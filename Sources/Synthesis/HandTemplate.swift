// The hand template: one parametric description per bone, measured once from
// the real competition annotation (annotation-sample/ID001, a right hand in PA
// view, 2048×2048), not copied from it. For each bone: the centre of its
// proximal and distal end slices (its axis), its greatest width, and its
// outline as two side profiles — signed distances from the axis at 13 evenly
// spaced stations (u = 1/14 … 13/14 from proximal to distal), in units of the
// width. sideA lies along the axis' left normal (−a.y, a.x), sideB opposite.
// The ends are closed with half-ellipses. Radius and Ulna are truncated in the
// sample, so their templates are drawn by hand to match its distal ends and
// ordinary forearm proportions.
//
// Measured with: mask = fill(polygon); axis = principal axis of the mask;
// P, D = centres of the end slices; per station the min/max of the mask's
// signed distance from P→D within ±0.6 px.

struct BoneTemplate: Sendable {
    let label: String
    /// Centre of the proximal end (template frame: right hand, thumb on image left, 2048 px).
    let proximal: Vec2
    /// Centre of the distal end.
    let distal: Vec2
    /// Greatest width across the axis.
    let width: Double
    /// Stations along the axis (0 = proximal end, 1 = distal end).
    let stations: [Double]
    /// Offsets of the outline along +normal (sideA) and −normal (sideB), in units of `width`.
    let sideA: [Double]
    let sideB: [Double]
    /// Depth of the end caps in units of the length beyond the first/last station (negative: concave).
    let proximalCap: Double
    let distalCap: Double
    /// Cortex thickness as a fraction of the shaft half-width, and medulla density relative to cortex.
    let cortex: Double
    let medulla: Double
    /// How much further distally each side reaches at its distal end (fraction of the length),
    /// e.g. the radial styloid.
    let tiltA: Double
    let tiltB: Double

    init(label: String, proximal: Vec2, distal: Vec2, width: Double, sideA: [Double], sideB: [Double],
         stations: [Double]? = nil, proximalCap: Double? = nil, distalCap: Double? = nil,
         cortex: Double? = nil, medulla: Double? = nil, tiltA: Double = 0, tiltB: Double = 0) {
        let evenly = (1...13).map { Double($0) / 14 }
        let s = stations ?? evenly
        precondition(s.count == sideA.count && s.count == sideB.count, "template \(label): station count mismatch")
        self.label = label
        self.proximal = proximal
        self.distal = distal
        self.width = width
        self.stations = s
        self.sideA = sideA
        self.sideB = sideB
        self.proximalCap = proximalCap ?? s[0]
        self.distalCap = distalCap ?? (1 - s[s.count - 1])
        let isCarpal = !label.hasPrefix("finger") && label != "Radius" && label != "Ulna"
        self.cortex = cortex ?? (isCarpal ? 0.16 : 0.30)
        self.medulla = medulla ?? (isCarpal ? 0.30 : 0.18)
        self.tiltA = tiltA
        self.tiltB = tiltB
    }
}

enum HandTemplate {
    /// The 27 bones of the hand (fingers and carpals) as measured.
    static let handBones: [BoneTemplate] = [
        BoneTemplate(label: "finger-1", proximal: Vec2(545.9, 836.6), distal: Vec2(468.0, 712.3), width: 71.2,
                     sideA: [0.507, 0.519, 0.484, 0.351, 0.304, 0.273, 0.237, 0.206, 0.279, 0.318, 0.306, 0.295, 0.228],
                     sideB: [-0.493, -0.473, -0.353, -0.287, -0.248, -0.225, -0.218, -0.241, -0.246, -0.246, -0.250, -0.262, -0.203]),
        BoneTemplate(label: "finger-2", proximal: Vec2(605.9, 1051.2), distal: Vec2(554.1, 828.7), width: 90.7,
                     sideA: [0.493, 0.806, 0.833, 0.704, 0.530, 0.415, 0.324, 0.273, 0.240, 0.248, 0.301, 0.354, 0.333],
                     sideB: [-0.210, -0.194, -0.165, -0.154, -0.181, -0.214, -0.243, -0.281, -0.327, -0.386, -0.472, -0.488, -0.311]),
        BoneTemplate(label: "finger-3", proximal: Vec2(790.4, 1290.5), distal: Vec2(630.4, 1032.6), width: 112.5,
                     sideA: [0.390, 0.443, 0.395, 0.273, 0.195, 0.183, 0.175, 0.164, 0.187, 0.229, 0.359, 0.512, 0.551],
                     sideB: [-0.302, -0.385, -0.371, -0.331, -0.332, -0.336, -0.342, -0.356, -0.373, -0.399, -0.464, -0.488, -0.400]),
        BoneTemplate(label: "finger-4", proximal: Vec2(753.0, 335.0), distal: Vec2(746.5, 230.1), width: 65.2,
                     sideA: [0.445, 0.545, 0.520, 0.374, 0.304, 0.266, 0.243, 0.249, 0.303, 0.356, 0.348, 0.340, 0.285],
                     sideB: [-0.432, -0.455, -0.355, -0.303, -0.265, -0.242, -0.235, -0.273, -0.343, -0.367, -0.376, -0.337, -0.253]),
        BoneTemplate(label: "finger-5", proximal: Vec2(794.0, 491.8), distal: Vec2(758.1, 336.5), width: 84.0,
                     sideA: [0.407, 0.420, 0.368, 0.316, 0.294, 0.268, 0.249, 0.267, 0.290, 0.322, 0.378, 0.358, 0.330],
                     sideB: [-0.511, -0.580, -0.525, -0.443, -0.376, -0.333, -0.303, -0.294, -0.297, -0.328, -0.371, -0.376, -0.358]),
        BoneTemplate(label: "finger-6", proximal: Vec2(848.0, 777.0), distal: Vec2(794.0, 489.6), width: 110.2,
                     sideA: [0.467, 0.424, 0.341, 0.302, 0.276, 0.267, 0.265, 0.264, 0.262, 0.267, 0.288, 0.312, 0.266],
                     sideB: [-0.533, -0.498, -0.379, -0.298, -0.281, -0.263, -0.264, -0.263, -0.263, -0.274, -0.312, -0.346, -0.329]),
        BoneTemplate(label: "finger-7", proximal: Vec2(924.5, 1250.0), distal: Vec2(856.0, 775.9), width: 106.4,
                     sideA: [0.167, 0.095, 0.023, -0.041, -0.064, -0.061, -0.034, 0.023, 0.060, 0.115, 0.200, 0.352, 0.327],
                     sideB: [-0.397, -0.841, -0.681, -0.597, -0.565, -0.532, -0.510, -0.485, -0.477, -0.464, -0.493, -0.648, -0.539]),
        BoneTemplate(label: "finger-8", proximal: Vec2(1006.3, 274.8), distal: Vec2(1010.2, 154.1), width: 69.1,
                     sideA: [0.462, 0.502, 0.397, 0.320, 0.273, 0.269, 0.250, 0.246, 0.328, 0.354, 0.364, 0.361, 0.313],
                     sideB: [-0.436, -0.498, -0.443, -0.346, -0.292, -0.267, -0.257, -0.261, -0.309, -0.371, -0.360, -0.335, -0.295]),
        BoneTemplate(label: "finger-9", proximal: Vec2(1006.0, 464.0), distal: Vec2(1005.0, 275.1), width: 85.0,
                     sideA: [0.478, 0.443, 0.420, 0.374, 0.340, 0.317, 0.306, 0.295, 0.284, 0.308, 0.356, 0.369, 0.322],
                     sideB: [-0.522, -0.533, -0.462, -0.402, -0.343, -0.283, -0.235, -0.223, -0.234, -0.280, -0.373, -0.420, -0.395]),
        BoneTemplate(label: "finger-10", proximal: Vec2(1010.0, 782.3), distal: Vec2(1007.0, 464.0), width: 106.0,
                     sideA: [0.478, 0.423, 0.350, 0.305, 0.288, 0.281, 0.274, 0.266, 0.268, 0.270, 0.291, 0.359, 0.324],
                     sideB: [-0.522, -0.454, -0.348, -0.299, -0.268, -0.257, -0.264, -0.262, -0.260, -0.277, -0.312, -0.367, -0.327]),
        BoneTemplate(label: "finger-11", proximal: Vec2(955.9, 1228.3), distal: Vec2(1020.2, 782.7), width: 105.1,
                     sideA: [0.538, 0.497, 0.318, 0.274, 0.268, 0.272, 0.292, 0.308, 0.321, 0.327, 0.365, 0.459, 0.367],
                     sideB: [-0.301, -0.374, -0.297, -0.216, -0.187, -0.174, -0.186, -0.205, -0.221, -0.265, -0.348, -0.541, -0.459]),
        BoneTemplate(label: "finger-12", proximal: Vec2(1273.8, 407.5), distal: Vec2(1296.6, 278.8), width: 70.1,
                     sideA: [0.407, 0.429, 0.289, 0.250, 0.241, 0.219, 0.222, 0.253, 0.346, 0.340, 0.345, 0.337, 0.270],
                     sideB: [-0.450, -0.571, -0.495, -0.372, -0.294, -0.263, -0.259, -0.268, -0.349, -0.402, -0.382, -0.318, -0.254]),
        BoneTemplate(label: "finger-13", proximal: Vec2(1220.0, 576.9), distal: Vec2(1269.2, 406.1), width: 78.2,
                     sideA: [0.504, 0.489, 0.415, 0.369, 0.332, 0.301, 0.289, 0.287, 0.286, 0.309, 0.380, 0.406, 0.360],
                     sideB: [-0.496, -0.483, -0.436, -0.389, -0.349, -0.326, -0.307, -0.276, -0.298, -0.319, -0.377, -0.436, -0.385]),
        BoneTemplate(label: "finger-14", proximal: Vec2(1139.5, 861.3), distal: Vec2(1218.6, 575.3), width: 94.4,
                     sideA: [0.490, 0.394, 0.302, 0.260, 0.241, 0.246, 0.256, 0.268, 0.275, 0.283, 0.303, 0.338, 0.325],
                     sideB: [-0.510, -0.482, -0.352, -0.304, -0.273, -0.266, -0.269, -0.280, -0.288, -0.298, -0.312, -0.407, -0.366]),
        BoneTemplate(label: "finger-15", proximal: Vec2(1023.0, 1248.4), distal: Vec2(1139.0, 861.6), width: 78.5,
                     sideA: [0.556, 0.643, 0.545, 0.331, 0.282, 0.274, 0.272, 0.280, 0.299, 0.326, 0.362, 0.478, 0.404],
                     sideB: [-0.376, -0.325, -0.306, -0.250, -0.179, -0.155, -0.167, -0.216, -0.245, -0.262, -0.335, -0.522, -0.488]),
        BoneTemplate(label: "finger-16", proximal: Vec2(1482.5, 638.1), distal: Vec2(1536.7, 545.5), width: 54.3,
                     sideA: [0.428, 0.426, 0.311, 0.252, 0.216, 0.199, 0.206, 0.239, 0.269, 0.302, 0.376, 0.334, 0.234],
                     sideB: [-0.449, -0.574, -0.557, -0.451, -0.330, -0.256, -0.241, -0.224, -0.301, -0.319, -0.320, -0.319, -0.280]),
        BoneTemplate(label: "finger-17", proximal: Vec2(1395.3, 735.0), distal: Vec2(1478.4, 633.4), width: 64.3,
                     sideA: [0.518, 0.497, 0.456, 0.416, 0.375, 0.345, 0.340, 0.309, 0.325, 0.350, 0.431, 0.444, 0.382],
                     sideB: [-0.482, -0.503, -0.422, -0.341, -0.338, -0.257, -0.217, -0.216, -0.223, -0.273, -0.338, -0.388, -0.387]),
        BoneTemplate(label: "finger-18", proximal: Vec2(1256.2, 933.2), distal: Vec2(1391.9, 731.2), width: 93.1,
                     sideA: [0.481, 0.430, 0.358, 0.289, 0.276, 0.285, 0.275, 0.280, 0.283, 0.300, 0.338, 0.352, 0.337],
                     sideB: [-0.519, -0.495, -0.389, -0.312, -0.262, -0.221, -0.203, -0.195, -0.187, -0.191, -0.233, -0.308, -0.306]),
        BoneTemplate(label: "finger-19", proximal: Vec2(1092.1, 1267.8), distal: Vec2(1252.1, 924.8), width: 92.8,
                     sideA: [0.458, 0.518, 0.439, 0.350, 0.316, 0.314, 0.312, 0.310, 0.313, 0.330, 0.382, 0.403, 0.310],
                     sideB: [-0.474, -0.482, -0.406, -0.317, -0.221, -0.195, -0.187, -0.188, -0.195, -0.235, -0.299, -0.494, -0.444]),
        BoneTemplate(label: "Trapezium", proximal: Vec2(857.1, 1345.0), distal: Vec2(841.5, 1221.2), width: 104.7,
                     sideA: [0.199, 0.354, 0.423, 0.443, 0.442, 0.366, 0.301, 0.254, 0.217, 0.228, 0.247, 0.228, 0.172],
                     sideB: [-0.177, -0.426, -0.502, -0.539, -0.558, -0.529, -0.528, -0.441, -0.323, -0.275, -0.264, -0.244, -0.213]),
        BoneTemplate(label: "Trapezoid", proximal: Vec2(931.6, 1295.7), distal: Vec2(849.8, 1231.2), width: 75.0,
                     sideA: [0.153, 0.260, 0.346, 0.368, 0.360, 0.344, 0.337, 0.321, 0.303, 0.306, 0.338, 0.330, 0.283],
                     sideB: [-0.183, -0.276, -0.387, -0.480, -0.581, -0.647, -0.663, -0.663, -0.631, -0.582, -0.523, -0.398, -0.243]),
        BoneTemplate(label: "Capitate", proximal: Vec2(956.8, 1397.2), distal: Vec2(1015.2, 1220.0), width: 101.6,
                     sideA: [0.315, 0.424, 0.490, 0.438, 0.404, 0.361, 0.318, 0.290, 0.263, 0.282, 0.270, 0.258, 0.261],
                     sideB: [-0.392, -0.467, -0.510, -0.519, -0.512, -0.564, -0.639, -0.682, -0.700, -0.650, -0.600, -0.437, -0.262]),
        BoneTemplate(label: "Hamate", proximal: Vec2(1022.1, 1377.6), distal: Vec2(1110.7, 1268.1), width: 99.1,
                     sideA: [0.118, 0.122, 0.140, 0.165, 0.168, 0.151, 0.176, 0.209, 0.240, 0.237, 0.234, 0.230, 0.217],
                     sideB: [-0.135, -0.296, -0.387, -0.461, -0.516, -0.584, -0.674, -0.728, -0.760, -0.729, -0.604, -0.400, -0.224]),
        BoneTemplate(label: "Scaphoid", proximal: Vec2(945.5, 1435.7), distal: Vec2(878.4, 1318.5), width: 83.9,
                     sideA: [0.183, 0.275, 0.318, 0.352, 0.395, 0.407, 0.408, 0.394, 0.367, 0.309, 0.327, 0.366, 0.398],
                     sideB: [-0.256, -0.383, -0.447, -0.515, -0.536, -0.567, -0.581, -0.606, -0.600, -0.599, -0.642, -0.603, -0.399]),
        BoneTemplate(label: "Lunate", proximal: Vec2(1038.5, 1449.2), distal: Vec2(933.5, 1381.3), width: 81.5,
                     sideA: [0.242, 0.284, 0.323, 0.338, 0.353, 0.396, 0.434, 0.460, 0.400, 0.316, 0.226, 0.159, 0.085],
                     sideB: [-0.257, -0.368, -0.414, -0.447, -0.483, -0.506, -0.528, -0.540, -0.403, -0.309, -0.212, -0.146, -0.114]),
        BoneTemplate(label: "Triquetrum", proximal: Vec2(1039.3, 1414.3), distal: Vec2(1118.6, 1345.3), width: 57.7,
                     sideA: [0.422, 0.449, 0.465, 0.481, 0.497, 0.500, 0.502, 0.494, 0.485, 0.488, 0.528, 0.458, 0.314],
                     sideB: [-0.418, -0.414, -0.400, -0.433, -0.454, -0.451, -0.449, -0.457, -0.479, -0.488, -0.472, -0.469, -0.342]),
        BoneTemplate(label: "Pisiform", proximal: Vec2(1047.2, 1418.5), distal: Vec2(1111.7, 1382.3), width: 50.6,
                     sideA: [0.332, 0.417, 0.465, 0.496, 0.510, 0.490, 0.486, 0.481, 0.478, 0.474, 0.444, 0.422, 0.276],
                     sideB: [-0.342, -0.399, -0.439, -0.460, -0.490, -0.503, -0.499, -0.512, -0.488, -0.457, -0.433, -0.368, -0.256]),
    ]

    /// Forearm bones, drawn to run 1,400 px proximally so they always leave the image.
    /// Radius: the distal surface under scaphoid and lunate, concave, with the radial
    /// styloid reaching further distally on the thumb side (sideB).
    static let radius = BoneTemplate(
        label: "Radius", proximal: Vec2(990, 2850), distal: Vec2(918, 1441), width: 215,
        sideA: [0.24, 0.24, 0.24, 0.245, 0.25, 0.26, 0.28, 0.32, 0.36, 0.40, 0.43],
        sideB: [-0.24, -0.24, -0.24, -0.245, -0.25, -0.27, -0.30, -0.34, -0.40, -0.48, -0.57],
        stations: [0.0, 0.3, 0.6, 0.80, 0.855, 0.895, 0.925, 0.95, 0.968, 0.984, 0.995],
        proximalCap: 0.0, distalCap: -0.008, cortex: 0.30, medulla: 0.17, tiltB: 0.042)

    /// Ulna: a rounded head beside the radius' sigmoid notch, the styloid on the little-finger side (sideA).
    static let ulna = BoneTemplate(
        label: "Ulna", proximal: Vec2(1225, 2870), distal: Vec2(1086, 1484), width: 104,
        sideA: [0.36, 0.36, 0.36, 0.37, 0.38, 0.42, 0.47, 0.50, 0.48, 0.36],
        sideB: [-0.36, -0.36, -0.36, -0.36, -0.37, -0.40, -0.45, -0.48, -0.45, -0.30],
        stations: [0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.97, 0.985, 0.995, 1.0],
        proximalCap: 0.0, distalCap: 0.006, cortex: 0.32, medulla: 0.17, tiltA: 0.014)

    /// Pivot of wrist deviation: the radiocarpal joint under the lunate.
    static let wristPivot = Vec2(975, 1445)

    /// Finger rays, metacarpal first, then phalanges proximal → distal, by class name.
    static let rays: [[String]] = [
        ["finger-3", "finger-2", "finger-1"],
        ["finger-7", "finger-6", "finger-5", "finger-4"],
        ["finger-11", "finger-10", "finger-9", "finger-8"],
        ["finger-15", "finger-14", "finger-13", "finger-12"],
        ["finger-19", "finger-18", "finger-17", "finger-16"],
    ]

    static let carpals = ["Trapezium", "Trapezoid", "Capitate", "Hamate", "Scaphoid", "Lunate", "Triquetrum", "Pisiform"]

    static let byLabel: [String: BoneTemplate] = {
        var d: [String: BoneTemplate] = [:]
        for b in handBones + [radius, ulna] { d[b.label] = b }
        return d
    }()
}
