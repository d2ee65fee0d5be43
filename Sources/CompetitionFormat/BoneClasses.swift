/// The competition's 29 classes in their fixed order: CSV rows and model channels.
/// finger-1..3 thumb (tip → metacarpal), 4..7 index, 8..11 middle, 12..15 ring,
/// 16..19 little; then the eight carpals; then the forearm bones.
public enum BoneClasses {
    public static let names: [String] = (1...19).map { "finger-\($0)" } + [
        "Trapezium", "Trapezoid", "Capitate", "Hamate", "Scaphoid", "Lunate",
        "Triquetrum", "Pisiform", "Radius", "Ulna",
    ]

    public static let count = names.count

    private static let indexByName: [String: Int] = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })

    /// The channel of a class name, or nil for a name outside the 29.
    public static func index(of name: String) -> Int? { indexByName[name] }
}
