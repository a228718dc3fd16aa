/// runc-style flag parsing (urfave/cli on Go's flag package): `-flag`, `--flag`, `--flag=value`,
/// `--flag value`, booleans as `--flag` or `--flag=false`. Hand-written: it costs nothing at start.
struct FlagSpec {
    let names: [String]
    let takesValue: Bool
    var canonical: String { names[0] }

    static func value(_ names: String...) -> FlagSpec { FlagSpec(names: names, takesValue: true) }
    static func bool(_ names: String...) -> FlagSpec { FlagSpec(names: names, takesValue: false) }
}

struct UsageError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Flags and positionals of one command line segment.
struct ParsedArguments {
    var values: [String: String] = [:]
    /// Every value of a repeatable flag (`-e A=1 -e B=2`), in order.
    var lists: [String: [String]] = [:]
    var bools: Set<String> = []
    var positionals: [String] = []

    func value(_ name: String) -> String? { values[name] }
    func all(_ name: String) -> [String] { lists[name] ?? [] }
    func flag(_ name: String) -> Bool { bools.contains(name) }

    /// Parses flags; with `stopAtPositional` the first non-flag and everything after it are
    /// positionals (global flags before the verb), otherwise flags may follow positionals.
    init(_ args: ArraySlice<String>, flags: [FlagSpec], stopAtPositional: Bool = false) throws {
        var i = args.startIndex
        while i < args.endIndex {
            let arg = args[i]
            i += 1
            if arg == "--" { positionals += args[i...]; break }
            guard arg.hasPrefix("-"), arg != "-" else {
                positionals.append(arg)
                if stopAtPositional { positionals += args[i...]; break }
                continue
            }
            var name = String(arg.drop { $0 == "-" })
            var inline: String?
            if let eq = name.firstIndex(of: "=") {
                inline = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            guard let spec = flags.first(where: { $0.names.contains(name) }) else {
                throw UsageError("flag provided but not defined: -\(name)")
            }
            if spec.takesValue {
                let value: String
                if let inline { value = inline } else {
                    guard i < args.endIndex else { throw UsageError("flag needs an argument: -\(name)") }
                    value = args[i]
                    i += 1
                }
                values[spec.canonical] = value
                lists[spec.canonical, default: []].append(value)
            } else if let inline {
                guard let b = Bool(inline) else { throw UsageError("invalid boolean value \"\(inline)\" for -\(name)") }
                if b { bools.insert(spec.canonical) } else { bools.remove(spec.canonical) }
            } else {
                bools.insert(spec.canonical)
            }
        }
    }
}

/// Go's durations as runc's flags take them (`100ms`, `5s`, `1m30s`); a bare number is seconds.
enum GoDuration {
    static func milliseconds(_ text: String) -> UInt32? {
        if let seconds = UInt32(text) { return seconds.multipliedReportingOverflow(by: 1000).overflow ? nil : seconds * 1000 }
        let units: [(String, Double)] = [("ns", 1e-6), ("us", 1e-3), ("µs", 1e-3), ("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
        var rest = Substring(text), total = 0.0
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            guard let unit = units.first(where: { rest.hasPrefix($0.0) && !(rest.hasPrefix("ms") && $0.0 == "m") }) else { return nil }
            rest = rest.dropFirst(unit.0.count)
            total += value * unit.1
        }
        return total < Double(UInt32.max) ? UInt32(total.rounded(.up)) : nil
    }
}
