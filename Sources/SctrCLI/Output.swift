import Foundation

/// One object of a listing: docker's field names for tables and templates, and the API's
/// object itself for `json`.
struct Row {
    let fields: [String: String]
    let json: String

    init<T: Encodable>(_ object: T, _ fields: [String: String]) {
        self.fields = fields
        json = Listing.json(object)
    }
}

/// `--format`: a table (default), `json` (one object per line, as docker's), or a Go-style
/// template with docker's simple actions: `{{.Field}}`, `{{json .}}`, `{{json .Field}}`;
/// `table TEMPLATE` adds a header row and aligns columns at tabs.
struct Listing {
    let format: String?

    /// Prints `rows`; `columns` are the default table's (field, header) pairs; `quiet` prints `quietField` only.
    func print(_ rows: [Row], columns: [(String, String)], headers: [String: String] = [:]) throws {
        switch format {
        case nil, "", "table":
            tabulate([columns.map(\.1)] + rows.map { row in columns.map { row.fields[$0.0] ?? "" } })
        case "json":
            for row in rows { Swift.print(row.json) }
        case let text?:
            let table = text.hasPrefix("table ")
            let template = try Template(table ? String(text.dropFirst(6)) : text)
            var lines = try rows.map { try template.render($0) }
            if table {
                let allHeaders = headers.merging(Dictionary(uniqueKeysWithValues: columns)) { a, _ in a }
                lines.insert(template.header(allHeaders), at: 0)
                tabulate(lines.map { $0.components(separatedBy: "\t") })
            } else {
                for line in lines { Swift.print(line) }
            }
        }
    }

    /// Columns padded to their widest cell, three spaces apart (docker's tabwriter).
    func tabulate(_ cells: [[String]]) {
        let width = cells.map(\.count).max() ?? 0
        var widths = [Int](repeating: 0, count: width)
        for line in cells { for (i, c) in line.enumerated() where i < line.count - 1 { widths[i] = max(widths[i], c.count) } }
        for line in cells {
            let padded = line.enumerated().map { i, c in i < line.count - 1 ? c.padding(toLength: widths[i] + 3, withPad: " ", startingAt: 0) : c }
            Swift.print(padded.joined())
        }
    }

    static func json<T: Encodable>(_ value: T, pretty: Bool = false) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(value)) ?? Data("null".utf8), as: UTF8.self)
    }

    static func humanSize(_ bytes: Int64) -> String {
        let units = ["B", "kB", "MB", "GB", "TB"]
        var v = Double(bytes), u = 0
        while v >= 1000 && u < units.count - 1 { v /= 1000; u += 1 }
        return u == 0 ? "\(bytes)B" : "\((v * 100).rounded() / 100)\(units[u])"
    }
}

/// A parsed template: literal text and actions.
struct Template {
    enum Piece { case text(String), field(String), json(String?) }
    let pieces: [Piece]

    init(_ source: String) throws {
        var pieces: [Piece] = []
        var rest = Substring(source.replacingOccurrences(of: "\\t", with: "\t").replacingOccurrences(of: "\\n", with: "\n"))
        while let open = rest.range(of: "{{") {
            pieces.append(.text(String(rest[..<open.lowerBound])))
            guard let close = rest[open.upperBound...].range(of: "}}") else { throw fail("template: unclosed action in \(source)", code: 125) }
            let action = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            let words = action.split(separator: " ").map(String.init)
            if words.count == 1, words[0].hasPrefix("."), words[0].count > 1 {
                pieces.append(.field(String(words[0].dropFirst())))
            } else if words.count == 2, words[0] == "json", words[1] == "." {
                pieces.append(.json(nil))
            } else if words.count == 2, words[0] == "json", words[1].hasPrefix(".") {
                pieces.append(.json(String(words[1].dropFirst())))
            } else {
                throw fail("template: unsupported action {{\(action)}} ({{.Field}}, {{json .}}, {{json .Field}})", code: 125)
            }
            rest = rest[close.upperBound...]
        }
        pieces.append(.text(String(rest)))
        self.pieces = pieces
    }

    func render(_ row: Row) throws -> String {
        try pieces.map { piece -> String in
            switch piece {
            case .text(let t): return t
            case .json(nil): return row.json
            case .field(let name), .json(let name?):
                guard let value = row.fields[name] else {
                    throw fail("template: can't evaluate field \(name) (fields: \(row.fields.keys.sorted().joined(separator: ", ")))", code: 125)
                }
                if case .json = piece { return Listing.json(value) }
                return value
            }
        }.joined()
    }

    /// The header row of a `table` template: each field's column name.
    func header(_ names: [String: String]) -> String {
        pieces.map { piece in
            switch piece {
            case .text(let t): return t
            case .json(nil): return "JSON"
            case .field(let name), .json(let name?): return names[name] ?? name.uppercased()
            }
        }.joined()
    }
}
