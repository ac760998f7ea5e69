import Foundation
@testable import SessionHTTP
import Testing

/// The calendar arithmetic behind the `Date` header and RFC 3339 timestamps, against Foundation's
/// Gregorian calendar in UTC: the epoch, leap days, century rules, moments before 1970 and far
/// ahead, and a spread of random moments.
@Suite struct CivilTimeTests {
    static let utc: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    static let moments: [Int64] = {
        var generator = SystemRandomNumberGenerator()
        let chosen: [Int64] = [
            0, -1, 86399, 86400, -86400, -86401, 951_782_400 /* 2000-02-29 */, 4_107_542_400 /* 2100-03-01 */,
            -2_203_891_200 /* 1900-03-01 */, 1_709_164_799 /* 2024-02-28T23:59:59 */, 253_402_300_799 /* 9999-12-31T23:59:59 */,
        ]
        return chosen + (0..<2000).map { _ in Int64.random(in: -2_208_988_800...253_402_300_799, using: &generator) }
    }()

    @Test func fieldsMatchFoundation() {
        for moment in Self.moments {
            let time = CivilTime(epochSeconds: moment)
            let expected = Self.utc.dateComponents(
                [.year, .month, .day, .hour, .minute, .second, .weekday], from: Date(timeIntervalSince1970: TimeInterval(moment))
            )
            let got = [time.year, time.month, time.day, time.hour, time.minute, time.second, (time.weekday + 1) % 7 + 1]
            let want = [expected.year, expected.month, expected.day, expected.hour, expected.minute, expected.second, expected.weekday]
            #expect(got == want.map { $0! }, "\(moment)")
        }
    }

    /// RFC 3339 text against Foundation's calendar fields of the whole second (no formatter:
    /// their rounding of fractions differs between Foundation versions), milliseconds before 1970
    /// included; the Date header against Foundation's formatter.
    @Test func rfc3339AndHTTPDateMatchFoundation() {
        let imf = DateFormatter()
        imf.locale = Locale(identifier: "en_US_POSIX")
        imf.timeZone = TimeZone(identifier: "GMT")
        imf.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        for moment in Self.moments {
            let milliseconds = moment * 1000 + abs(moment % 1000)
            let second = milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000
            let fields = Self.utc.dateComponents([.year, .month, .day, .hour, .minute, .second], from: Date(timeIntervalSince1970: TimeInterval(second)))
            let expected = String(
                format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", fields.year!, fields.month!, fields.day!, fields.hour!, fields.minute!,
                fields.second!, Int(milliseconds - second * 1000)
            )
            #expect(Self.rfc3339(milliseconds) == expected, "\(milliseconds)")
            #expect(HTTPDate.format(Int(moment)) == imf.string(from: Date(timeIntervalSince1970: TimeInterval(moment))), "\(moment)")
        }
        #expect(Self.rfc3339(-1) == "1969-12-31T23:59:59.999Z")
        #expect(Self.rfc3339(-1000) == "1969-12-31T23:59:59.000Z")
        #expect(Self.rfc3339(-1001) == "1969-12-31T23:59:58.999Z")
        #expect(Self.rfc3339(1_765_000_000_123) == "2025-12-06T05:46:40.123Z")
    }

    static func rfc3339(_ milliseconds: Int64) -> String {
        var bytes = [UInt8]()
        RFC3339.write(milliseconds: milliseconds, into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }
}
