import Foundation

/// Sessions as an aligned text table for the terminal: one row per session, the columns an
/// admin needs to tell devices apart. User agents are cut to keep rows on one line.
enum SessionTable {
    static let columns = ["HANDLE", "CREATED", "LAST SEEN", "EXPIRES", "IP", "USER AGENT"]

    static func render(_ sessions: [[String: Any]]) -> String {
        let rows = sessions.map { session in
            [
                text(session["handle"]),
                timestamp(session["created_at"]),
                timestamp(session["last_seen_at"]),
                timestamp(session["expires_at"]),
                text(session["ip"]),
                String(text(session["user_agent"]).prefix(60)),
            ]
        }
        var widths = columns.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        return ([columns] + rows).map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    /// Control characters (from a client's user agent) would move the cursor: shown as `?`.
    static func text(_ value: Any?) -> String {
        guard let string = value as? String else { return "-" }
        return String(String.UnicodeScalarView(string.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "?" : $0 }))
    }

    /// `2025-01-31T12:00:00.000Z` as `2025-01-31 12:00:00Z`.
    static func timestamp(_ value: Any?) -> String {
        guard let string = value as? String, string.count == 24 else { return text(value) }
        return String(string.prefix(10)) + " " + String(string.dropFirst(11).prefix(8)) + "Z"
    }
}
