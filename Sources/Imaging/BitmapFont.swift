/// A 5×7 ASCII bitmap font (printable 32...126) in 6×9 cells, for overlay
/// legends without a font library. Each glyph is 8 rows of 5 bits packed in a
/// UInt64: byte r is row r from the top, bit 4 of it the leftmost column. Rows
/// 0–6 hold the glyph, row 7 the descenders of g, j, p, q and y.
public enum BitmapFont {
    public static let glyphWidth = 5
    public static let glyphHeight = 8
    /// Horizontal advance per character and line height, in font pixels.
    public static let advance = 6
    public static let lineHeight = 9

    static let glyphs: [UInt64] = [
        0x0000000000000000, 0x0004000404040404, 0x00000000000A0A0A, 0x000A0A1F0A1F0A0A,  // space ! " #
        0x00041E050E140F04, 0x0003130804021918, 0x000D12150814120C, 0x0000000000080404,  // $ % & '
        0x0002040808080402, 0x0008040202020408, 0x000004150E150400, 0x000004041F040400,  // ( ) * +
        0x0008040C00000000, 0x000000001F000000, 0x000C0C0000000000, 0x0000100804020100,  // , - . /
        0x000E11191513110E, 0x000E040404040C04, 0x001F08040201110E, 0x000E11010204021F,  // 0 1 2 3
        0x0002021F120A0602, 0x000E1101011E101F, 0x000E11111E100806, 0x000808080402011F,  // 4 5 6 7
        0x000E11110E11110E, 0x000C02010F11110E, 0x00000C0C000C0C00, 0x0008040C000C0C00,  // 8 9 : ;
        0x0002040810080402, 0x0000001F001F0000, 0x0008040201020408, 0x000400040201110E,  // < = > ?
        0x000E15150D01110E, 0x0011111F1111110E, 0x001E11111E11111E, 0x000E11101010110E,  // @ A B C
        0x001C12111111121C, 0x001F10101E10101F, 0x001010101E10101F, 0x000F11111710110E,  // D E F G
        0x001111111F111111, 0x000E04040404040E, 0x000C120202020207, 0x0011121418141211,  // H I J K
        0x001F101010101010, 0x0011111115151B11, 0x0011111315191111, 0x000E11111111110E,  // L M N O
        0x001010101E11111E, 0x000D12151111110E, 0x001112141E11111E, 0x001E01010E10100F,  // P Q R S
        0x000404040404041F, 0x000E111111111111, 0x00040A1111111111, 0x000A151515111111,  // T U V W
        0x0011110A040A1111, 0x000404040A111111, 0x001F10080402011F, 0x000E08080808080E,  // X Y Z [
        0x0000010204081000, 0x000E02020202020E, 0x0000000000110A04, 0x001F000000000000,  // \\ ] ^ _
        0x0000000000020408, 0x000F110F010E0000, 0x001E111119161010, 0x000E1110100E0000,  // ` a b c
        0x000F1111130D0101, 0x000E101F110E0000, 0x000808081C080906, 0x0E010F11110F0000,  // d e f g
        0x0011111119161010, 0x000E0404040C0004, 0x0C12020202060002, 0x0012141814121010,  // h i j k
        0x000E04040404040C, 0x00111115151A0000, 0x0011111119160000, 0x000E1111110E0000,  // l m n o
        0x10101E11111E0000, 0x01010F11110F0000, 0x0010101019160000, 0x001E010E100E0000,  // p q r s
        0x00060908081C0808, 0x000D131111110000, 0x00040A1111110000, 0x000A151511110000,  // t u v w
        0x00110A040A110000, 0x0E010F1111110000, 0x001F0804021F0000, 0x0002040408040402,  // x y z {
        0x0004040404040404, 0x0008040402040408, 0x0000000215080000,  // | } ~
    ]

    /// The glyph of a character; anything outside printable ASCII draws as '?'.
    static func glyph(_ scalar: Unicode.Scalar) -> UInt64 {
        let v = Int(scalar.value)
        return (32...126).contains(v) ? glyphs[v - 32] : glyphs[Int(("?" as Unicode.Scalar).value) - 32]
    }

    /// Width of a line of text in output pixels at the given scale.
    public static func width(of text: String, scale: Int) -> Int {
        let count = text.unicodeScalars.count
        return count == 0 ? 0 : (count * advance - 1) * scale
    }

    /// Draws `text` into an interleaved RGB buffer with its top-left corner at
    /// (x, y), each font pixel a `scale`×`scale` block; clipped to the buffer.
    public static func draw(_ text: String, x: Int, y: Int, scale: Int, color: (UInt8, UInt8, UInt8),
                            into rgb: UnsafeMutableBufferPointer<UInt8>, width: Int, height: Int) {
        var penX = x
        for scalar in text.unicodeScalars {
            let glyph = glyph(scalar)
            for row in 0..<glyphHeight {
                let bits = Int((glyph >> UInt64(8 * row)) & 0x1F)
                if bits == 0 { continue }
                for column in 0..<glyphWidth where bits & (0x10 >> column) != 0 {
                    fill(x: penX + column * scale, y: y + row * scale, width: scale, height: scale,
                         color: color, into: rgb, imageWidth: width, imageHeight: height)
                }
            }
            penX += advance * scale
        }
    }

    /// Fills a rectangle, clipped to the image.
    static func fill(x: Int, y: Int, width w: Int, height h: Int, color: (UInt8, UInt8, UInt8),
                     into rgb: UnsafeMutableBufferPointer<UInt8>, imageWidth: Int, imageHeight: Int) {
        let x0 = max(0, x), x1 = min(imageWidth, x + w)
        let y0 = max(0, y), y1 = min(imageHeight, y + h)
        guard x0 < x1, y0 < y1 else { return }
        for yy in y0..<y1 {
            var i = (yy * imageWidth + x0) * 3
            for _ in x0..<x1 {
                rgb[i] = color.0; rgb[i + 1] = color.1; rgb[i + 2] = color.2
                i += 3
            }
        }
    }
}
