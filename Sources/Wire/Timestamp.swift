@preconcurrency import Glibc

/// RFC 3339 timestamps with nanoseconds in UTC, as runc writes `created` and its log lines.
public enum Timestamp {
    /// The current time in that format.
    public static func now() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return format(seconds: Int64(ts.tv_sec), nanoseconds: Int64(ts.tv_nsec))
    }

    /// Civil UTC date from the Unix epoch by arithmetic alone (gmtime would read /etc/localtime).
    public static func format(seconds: Int64, nanoseconds: Int64) -> String {
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let secs = seconds - days * 86400
        // Days to year/month/day in the proleptic Gregorian calendar, counted in 400-year eras.
        let z = days + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ v: Int64, _ w: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        var frac = ""
        if nanoseconds != 0 {
            var digits = pad(nanoseconds, 9)
            while digits.hasSuffix("0") { digits.removeLast() }
            frac = "." + digits
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secs / 3600, 2)):\(pad(secs % 3600 / 60, 2)):\(pad(secs % 60, 2))\(frac)Z"
    }
}

extension Timestamp {
    /// Nanoseconds since the Unix epoch of an RFC 3339 time (`2026-12-01T12:00:00.5Z`, or with a
    /// `+hh:mm`/`-hh:mm` offset); nil for anything else. Clients compare times this way, never
    /// as text: `format` trims trailing zeros, so the text is not fixed-width.
    public static func parse(_ text: String) -> Int64? { parse(bytes: Array(text.utf8)[...]) }

    /// The same from the bytes of a record line (no String in between: logs parse one per record).
    public static func parse(bytes: ArraySlice<UInt8>) -> Int64? {
        let b = Array(bytes)
        func digits(_ at: Int, _ n: Int) -> Int64? {
            guard at + n <= b.count else { return nil }
            var v: Int64 = 0
            for i in at..<(at + n) {
                guard b[i] >= 0x30 && b[i] <= 0x39 else { return nil }
                v = v * 10 + Int64(b[i] - 0x30)
            }
            return v
        }
        guard b.count >= 20, b[4] == 0x2d, b[7] == 0x2d, b[10] == 0x54 || b[10] == 0x74, b[13] == 0x3a, b[16] == 0x3a,
              let year = digits(0, 4), let month = digits(5, 2), let day = digits(8, 2),
              let hour = digits(11, 2), let minute = digits(14, 2), let second = digits(17, 2),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        var at = 19
        var nanos: Int64 = 0
        if b[at] == 0x2e {
            at += 1
            var scale: Int64 = 100_000_000
            let start = at
            while at < b.count, b[at] >= 0x30 && b[at] <= 0x39 {
                nanos += Int64(b[at] - 0x30) * scale
                scale /= 10
                at += 1
            }
            guard at > start else { return nil }
        }
        var offset: Int64 = 0
        guard at < b.count else { return nil }
        if b[at] == 0x5a || b[at] == 0x7a {
            at += 1
        } else if b[at] == 0x2b || b[at] == 0x2d, b.count == at + 6, b[at + 3] == 0x3a,
                  let oh = digits(at + 1, 2), let om = digits(at + 4, 2) {
            offset = (oh * 3600 + om * 60) * (b[at] == 0x2b ? 1 : -1)
            at += 6
        } else { return nil }
        guard at == b.count else { return nil }
        // Days from the civil date (the inverse of `format`'s arithmetic).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = month > 2 ? month - 3 : month + 9
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146097 + doe - 719468
        let seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset
        return seconds * 1_000_000_000 + nanos
    }
}
