/// Errors from loading or building a model, each naming the file, key or value at fault.
public struct ModelError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
