/// A file store failure with a stable code and a message a client can act on.
public struct FileStoreError: Error, Sendable, CustomStringConvertible {
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The file is larger than the configured limit.
        public static let tooLarge = Code(rawValue: "file_too_large")
        /// The disk is full (or would drop below the configured reserve).
        public static let insufficientStorage = Code(rawValue: "insufficient_storage")
        /// Reading or writing the disk failed for another reason.
        public static let storageFailure = Code(rawValue: "storage_failure")
        /// A tenant, owner or file id that is not a plain identifier.
        public static let invalidIdentifier = Code(rawValue: "invalid_identifier")
        /// No such file or upload session.
        public static let notFound = Code(rawValue: "not_found")
        /// A chunk that does not start where the upload stands.
        public static let offsetMismatch = Code(rawValue: "offset_mismatch")
        /// Finishing an upload that has not received all its bytes.
        public static let incomplete = Code(rawValue: "upload_incomplete")
        /// Another request is writing the same upload.
        public static let busy = Code(rawValue: "upload_busy")
        /// A path under the store that is not what the store made (a symbolic link, say).
        public static let unsafePath = Code(rawValue: "unsafe_path")
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    /// Maps an errno from a failed call on `what`: a full disk or quota is `insufficientStorage`.
    static func errno(_ number: Int32, _ what: String) -> FileStoreError {
        let reason = String(cString: strerror(number))
        switch number {
        case ENOSPC, EDQUOT, EFBIG:
            return FileStoreError(.insufficientStorage, "the file store is full (\(reason)); nothing was kept")
        case ENOENT:
            return FileStoreError(.notFound, "\(what): \(reason)")
        default:
            return FileStoreError(.storageFailure, "\(what): \(reason)")
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
