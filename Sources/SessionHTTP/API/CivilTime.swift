/// A moment as its UTC calendar date and time of day, from seconds since the Unix epoch, for the
/// `Date` header and RFC 3339 timestamps: Howard Hinnant's civil-from-days algorithm, so no
/// locale or Foundation is involved. Moments before 1970 round toward the past.
struct CivilTime {
    let year: Int
    let month: Int
    let day: Int
    /// 0 for Monday … 6 for Sunday.
    let weekday: Int
    let hour: Int
    let minute: Int
    let second: Int

    init(epochSeconds: Int64) {
        let days = Int(epochSeconds >= 0 ? epochSeconds / 86400 : (epochSeconds - 86399) / 86400)
        let secondOfDay = Int(epochSeconds - Int64(days) * 86400)
        (hour, minute, second) = (secondOfDay / 3600, secondOfDay / 60 % 60, secondOfDay % 60)
        weekday = ((days + 3) % 7 + 7) % 7
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
    }
}
