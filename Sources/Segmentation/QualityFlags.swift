/// Flags on a result that a person should look at: a bone missing, or a bone
/// far outside the area it usually covers in a whole-hand PA film.
public enum QualityFlags {
    /// Usual share of the image each class covers, from the competition's real
    /// annotation (ID001, 2048²). Radius and Ulna depend on how much forearm is
    /// in the field, so they get a wider band.
    public static let typicalAreaFraction: [Double] = [
        0.00148, 0.00336, 0.00527, 0.00106, 0.00220, 0.00479, 0.00760, 0.00130, 0.00264, 0.00517,
        0.00689, 0.00137, 0.00237, 0.00422, 0.00497, 0.00084, 0.00141, 0.00327, 0.00550, 0.00198,
        0.00139, 0.00372, 0.00212, 0.00219, 0.00154, 0.00126, 0.00074, 0.01338, 0.00693,
    ]

    public struct Flag: Codable, Sendable, Equatable {
        public var className: String
        public var kind: String
        public var detail: String
        enum CodingKeys: String, CodingKey { case className = "class", kind, detail }
    }

    public static func evaluate(areas: [Int], classNames: [String], imagePixels: Int) -> [Flag] {
        var flags: [Flag] = []
        for (c, area) in areas.enumerated() {
            let name = c < classNames.count ? classNames[c] : "class-\(c + 1)"
            if area == 0 {
                flags.append(Flag(className: name, kind: "empty", detail: "no pixels"))
                continue
            }
            guard areas.count == typicalAreaFraction.count, imagePixels > 0 else { continue }
            let fraction = Double(area) / Double(imagePixels)
            let typical = typicalAreaFraction[c]
            let band = c >= 27 ? 10.0 : 5.0
            if fraction < typical / band || fraction > typical * band {
                let ratio = fraction / typical
                flags.append(Flag(className: name, kind: "unusual_area",
                                  detail: String(format: "covers %.3f%% of the image, %.2f× its usual share", fraction * 100, ratio)))
            }
        }
        return flags
    }
}
