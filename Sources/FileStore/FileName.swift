import Foundation

/// User-given file names, made harmless. The name a client sends is display metadata only: the
/// path on disk is built from server ids plus `diskName`, which cannot name another directory.
public enum FileName {
    /// Longest display name, in UTF-8 bytes.
    public static let maxDisplayBytes = 255
    /// Longest name part on disk, in bytes.
    public static let maxDiskBytes = 64

    /// The name to show: its last path component (either separator), without control or
    /// invisible formatting characters (NUL, bidi overrides), trimmed, at most 255 bytes; `file`
    /// when nothing is left (`..`, an empty or all-control name).
    public static func display(_ name: String) -> String {
        let lastComponent = name.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? ""
        let visible = String(String.UnicodeScalarView(lastComponent.precomposedStringWithCanonicalMapping.unicodeScalars.filter { scalar in
            switch scalar.properties.generalCategory {
            case .control, .format, .lineSeparator, .paragraphSeparator, .surrogate, .privateUse, .unassigned: false
            default: true
            }
        })).trimmingCharacters(in: .whitespaces)
        guard !visible.isEmpty, visible.contains(where: { $0 != "." }) else { return "file" }
        return truncated(visible, bytes: maxDisplayBytes)
    }

    /// The name part of the file on disk: the display name reduced to ASCII letters, digits, `.`,
    /// `-` and `_` (others become `_`), no leading dot, at most 64 bytes keeping the extension.
    public static func disk(_ name: String) -> String {
        var out = ""
        for scalar in display(name).unicodeScalars {
            let safe = scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || scalar == "." || scalar == "-" || scalar == "_")
            let next: Character = safe ? Character(scalar) : "_"
            // No runs of `_` or `.`: `..` never appears, and names stay readable.
            if (next == "_" || next == "."), out.last == next { continue }
            out.append(next)
        }
        while out.first == "." || out.first == "_" { out.removeFirst() }
        guard !out.isEmpty, out.contains(where: { $0 != "." && $0 != "_" }) else { return "file" }
        guard out.utf8.count > maxDiskBytes else { return out }
        // Keep a short extension: `report.pdf` stays recognizable when the stem is cut.
        if let dot = out.lastIndex(of: "."), out.distance(from: dot, to: out.endIndex) <= 10 {
            let ext = String(out[dot...])
            return String(out.prefix(maxDiskBytes - ext.count)) + ext
        }
        return String(out.prefix(maxDiskBytes))
    }

    /// `text` cut to at most `bytes` UTF-8 bytes on a character boundary.
    static func truncated(_ text: String, bytes: Int) -> String {
        guard text.utf8.count > bytes else { return text }
        var out = ""
        for character in text {
            guard out.utf8.count + character.utf8.count <= bytes else { break }
            out.append(character)
        }
        return out
    }
}
