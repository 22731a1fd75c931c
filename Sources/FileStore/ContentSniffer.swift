/// The content type of a file, read from its first bytes rather than taken from the client: an
/// upload labelled `image/png` that holds HTML is not served as an image.
public enum ContentSniffer {
    /// How many leading bytes `detect` looks at.
    public static let prefixLength = 4_096

    /// What files that no allowed type matches are stored and served as, always as a download.
    public static let fallback = "application/octet-stream"

    /// The allowed types: images, PDF, audio, plain text.
    public static let allowed: Set<String> = [
        "image/jpeg", "image/png", "image/gif", "image/webp", "image/heic", "image/avif",
        "application/pdf",
        "audio/mpeg", "audio/ogg", "audio/wav", "audio/mp4", "audio/aac", "audio/flac", "audio/amr", "audio/webm",
        "text/plain; charset=utf-8",
    ]

    /// The allowed type the bytes are, or `fallback`.
    /// - Parameters:
    ///   - prefix: the file's first bytes (up to `prefixLength`).
    ///   - complete: whether `prefix` is the whole file (a cut-off UTF-8 sequence at its end is
    ///     then not text).
    public static func detect(_ prefix: [UInt8], complete: Bool) -> String {
        let bytes = prefix.prefix(prefixLength)
        func starts(_ magic: [UInt8], at offset: Int = 0) -> Bool {
            bytes.count >= offset + magic.count && bytes.dropFirst(offset).starts(with: magic)
        }
        func ascii(_ text: String, at offset: Int = 0) -> Bool { starts(Array(text.utf8), at: offset) }

        if starts([0xFF, 0xD8, 0xFF]) { return "image/jpeg" }
        if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return "image/png" }
        if ascii("GIF87a") || ascii("GIF89a") { return "image/gif" }
        if ascii("RIFF"), ascii("WEBP", at: 8) { return "image/webp" }
        if ascii("RIFF"), ascii("WAVE", at: 8) { return "audio/wav" }
        if ascii("%PDF-") { return "application/pdf" }
        if ascii("ftyp", at: 4), bytes.count >= 12 {
            // ISO base media: the major brand says what it holds.
            let brand = String(decoding: bytes.dropFirst(8).prefix(4), as: UTF8.self)
            switch brand {
            case "heic", "heix", "heim", "heis", "mif1", "msf1": return "image/heic"
            case "avif", "avis": return "image/avif"
            case "M4A ", "M4B ": return "audio/mp4"
            default: break
            }
        }
        if ascii("ID3") { return "audio/mpeg" }
        if ascii("OggS") { return "audio/ogg" }
        if ascii("fLaC") { return "audio/flac" }
        if ascii("#!AMR") { return "audio/amr" }
        if starts([0x1A, 0x45, 0xDF, 0xA3]) { return "audio/webm" }
        if bytes.count >= 2, bytes[bytes.startIndex] == 0xFF {
            let second = bytes[bytes.startIndex + 1]
            // ADTS (AAC) frames sync on 0xFFF with layer 00; MPEG audio on 11 bits with a layer set.
            if second & 0xF6 == 0xF0 { return "audio/aac" }
            if second & 0xE0 == 0xE0, second & 0x06 != 0 { return "audio/mpeg" }
        }
        if isText(Array(bytes), complete: complete) { return "text/plain; charset=utf-8" }
        return fallback
    }

    /// UTF-8 without NUL or control characters other than tab, line feed, form feed and carriage
    /// return; an empty file is text.
    static func isText(_ bytes: [UInt8], complete: Bool) -> Bool {
        var body = bytes[...]
        if body.starts(with: [0xEF, 0xBB, 0xBF]) { body = body.dropFirst(3) }
        if body.contains(where: { ($0 < 0x20 && ![0x09, 0x0A, 0x0C, 0x0D].contains($0)) || $0 == 0x7F }) { return false }
        // A prefix may end inside a multi-byte sequence: drop an unfinished tail before decoding.
        if !complete, let start = body.lastIndex(where: { $0 & 0xC0 != 0x80 }), body[start] >= 0xC0 {
            let needed = body[start] >= 0xF0 ? 4 : body[start] >= 0xE0 ? 3 : 2
            if body.distance(from: start, to: body.endIndex) < needed { body = body[..<start] }
        }
        return String(validating: body, as: UTF8.self) != nil
    }

    /// Whether a browser may show the type inline; everything else downloads.
    public static func isInline(_ contentType: String) -> Bool {
        contentType != fallback && allowed.contains(contentType)
    }
}
