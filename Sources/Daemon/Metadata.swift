import API
import Foundation
import GRDB
import Wire

/// The daemon's records in SQLite (through GRDB): images by name, containers and volumes,
/// each in a namespace, and the event window. Every change is one transaction together with
/// the event it causes, so a kill -9 at any moment leaves a consistent store and never a
/// change without its event (or an event without its change).
final class Metadata: @unchecked Sendable {
    let db: DatabaseQueue
    /// Called after a transaction that recorded an event has committed.
    var eventsCommitted: @Sendable () -> Void = {}
    /// How many events the window keeps.
    static let eventWindow: Int64 = 10_000

    init(path: String) throws {
        var config = Configuration()
        config.busyMode = .timeout(5)
        // WAL with synchronous=NORMAL: a kill -9 never loses a committed change or tears one,
        // and a change costs one fsync at checkpoint rather than several per transaction.
        config.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
        db = try DatabaseQueue(path: path, configuration: config)
        try db.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA journal_mode = WAL") }
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in try db.execute(sql: MetadataSchema.v1) }
        migrator.registerMigration("v2-namespaces-labels-events") { db in try db.execute(sql: MetadataSchema.v2) }
        migrator.registerMigration("v3-container-error") { db in try db.execute(sql: "ALTER TABLE containers ADD COLUMN error TEXT") }
        migrator.registerMigration("v4-networks") { db in try db.execute(sql: MetadataSchema.v4) }
        try migrator.migrate(db)
    }

    /// One write transaction; the event, if any, is recorded in it and announced after commit.
    func write<T>(_ event: EventDraft? = nil, _ body: (Database) throws -> T) throws -> T {
        let result = try db.write { db -> T in
            let value = try body(db)
            if let event { try Metadata.append(event, db) }
            return value
        }
        if event != nil { eventsCommitted() }
        return result
    }

    // MARK: images

    struct ImageRow: Sendable {
        var namespace: String
        var name: String
        var manifestDigest: String
        var created: String
        var labels: [String: String]
    }

    func putImage(_ ns: String, name: String, manifestDigest: String, labels: [String: String], event: EventDraft?) throws {
        try write(event) { db in
            try db.execute(sql: """
                INSERT INTO images (namespace, name, manifestDigest, created, labels) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT(namespace, name) DO UPDATE SET manifestDigest = excluded.manifestDigest, labels = excluded.labels
                """, arguments: [ns, name, manifestDigest, Timestamp.now(), Metadata.text(labels)])
        }
    }

    /// The images of a namespace, or of all namespaces.
    func images(_ ns: String?) throws -> [ImageRow] {
        try db.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM images WHERE ? IS NULL OR namespace = ? ORDER BY name", arguments: [ns, ns]).map {
                ImageRow(namespace: $0["namespace"], name: $0["name"], manifestDigest: $0["manifestDigest"], created: $0["created"],
                         labels: Metadata.labels($0["labels"]))
            }
        }
    }

    func removeImage(_ ns: String, name: String, event: EventDraft?) throws -> Bool {
        try write(event) { db in
            try db.execute(sql: "DELETE FROM images WHERE namespace = ? AND name = ?", arguments: [ns, name])
            return db.changesCount > 0
        }
    }

    // MARK: containers

    /// One container as stored: its create options, state and last exit.
    struct ContainerRow: Sendable {
        var id: String
        var namespace: String
        var name: String
        var image: String
        var manifestDigest: String
        var options: CreateOptions
        var status: ContainerStatus
        var pid: Int
        var exitCode: Int?
        var exitSignal: Int?
        var oomKilled: Bool
        var restartCount: Int
        var created: String
        var startedAt: String?
        var finishedAt: String?
        /// Why the last run ended abnormally (its shim died).
        var error: String?

        init(row: Row) throws {
            id = row["id"]; namespace = row["namespace"]; name = row["name"]; image = row["image"]; manifestDigest = row["manifestDigest"]
            options = try ValueDecoder(strict: false).decode(CreateOptions.self, from: JSONValue.parse(row["options"] as String))
            status = ContainerStatus(rawValue: row["status"]) ?? .exited
            pid = row["pid"]; exitCode = row["exitCode"]; exitSignal = row["exitSignal"]
            oomKilled = row["oomKilled"]; restartCount = row["restartCount"]; created = row["created"]
            startedAt = row["startedAt"]; finishedAt = row["finishedAt"]; error = row["error"]
        }
    }

    func insertContainer(_ ns: String, id: String, name: String, image: String, manifestDigest: String, options: CreateOptions) throws {
        let json = String(decoding: try JSONEncoder().encode(options), as: UTF8.self)
        try write { db in
            if try Row.fetchOne(db, sql: "SELECT 1 FROM containers WHERE namespace = ? AND name = ?", arguments: [ns, name]) != nil {
                throw APIError.conflict("a container named \(name) exists")
            }
            try db.execute(sql: "INSERT INTO containers (id, namespace, name, image, manifestDigest, options, status, created) VALUES (?, ?, ?, ?, ?, ?, 'creating', ?)",
                           arguments: [id, ns, name, image, manifestDigest, json, Timestamp.now()])
        }
    }

    /// A new name, unique in the namespace.
    func renameContainer(_ c: ContainerRow, to name: String, event: EventDraft) throws {
        try write(event) { db in
            if try Row.fetchOne(db, sql: "SELECT 1 FROM containers WHERE namespace = ? AND name = ?", arguments: [c.namespace, name]) != nil {
                throw APIError.conflict("a container named \(name) exists")
            }
            try db.execute(sql: "UPDATE containers SET name = ? WHERE id = ?", arguments: [name, c.id])
        }
    }

    /// The create options as they are now (after an update).
    func setOptions(_ id: String, _ options: CreateOptions, event: EventDraft) throws {
        let json = String(decoding: try JSONEncoder().encode(options), as: UTF8.self)
        try write(event) { db in try db.execute(sql: "UPDATE containers SET options = ? WHERE id = ?", arguments: [json, id]) }
    }

    /// By exact id, exact name, then a unique id prefix, within the namespace.
    func container(_ ns: String, _ ref: String) throws -> ContainerRow? {
        try db.read { db in
            if let row = try Row.fetchOne(db, sql: "SELECT * FROM containers WHERE namespace = ? AND (id = ? OR name = ?)", arguments: [ns, ref, ref]) {
                return try ContainerRow(row: row)
            }
            guard !ref.isEmpty, ref.allSatisfy(\.isHexDigit) else { return nil }
            let rows = try Row.fetchAll(db, sql: "SELECT * FROM containers WHERE namespace = ? AND id LIKE ? || '%'", arguments: [ns, ref])
            return rows.count == 1 ? try ContainerRow(row: rows[0]) : nil
        }
    }

    /// By id alone, whatever its namespace (the daemon's own threads).
    func container(id: String) throws -> ContainerRow? {
        try db.read { db in try Row.fetchOne(db, sql: "SELECT * FROM containers WHERE id = ?", arguments: [id]).map(ContainerRow.init) }
    }

    /// The containers of a namespace, or of all namespaces.
    func containers(_ ns: String?) throws -> [ContainerRow] {
        try db.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM containers WHERE ? IS NULL OR namespace = ? ORDER BY created", arguments: [ns, ns]).map(ContainerRow.init)
        }
    }

    func setStatus(_ id: String, _ status: ContainerStatus, pid: Int? = nil, started: Bool = false, event: EventDraft? = nil) throws {
        try write(event) { db in
            try db.execute(sql: "UPDATE containers SET status = ?, pid = COALESCE(?, pid), startedAt = CASE WHEN ? THEN ? ELSE startedAt END WHERE id = ?",
                           arguments: [status.rawValue, pid, started, Timestamp.now(), id])
        }
    }

    /// The exit as the shim recorded it (its time, not ours: after a daemon restart they differ).
    /// `restarted`: the restart policy runs it again; its status is `restarting` until then.
    func setExited(_ id: String, _ exit: ExitStatus, restarted: Bool, error: String? = nil, event: EventDraft?) throws {
        try write(event) { db in
            try db.execute(sql: "UPDATE containers SET status = \(restarted ? "'restarting'" : "'exited'"), exitCode = ?, exitSignal = ?, oomKilled = ?, finishedAt = ?, restartCount = restartCount + ?, error = ? WHERE id = ?",
                           arguments: [exit.code, exit.signal, exit.oomKilled ?? false, exit.time ?? Timestamp.now(), restarted ? 1 : 0, error, id])
        }
    }

    func removeContainer(_ id: String, event: EventDraft?) throws {
        try write(event) { db in try db.execute(sql: "DELETE FROM containers WHERE id = ?", arguments: [id]) }
    }

    // MARK: volumes

    struct VolumeRow: Sendable {
        var namespace: String
        var name: String
        var created: String
        var labels: [String: String]
    }

    /// Creates the volume's record unless it exists; true if it was created.
    func putVolume(_ ns: String, _ name: String, labels: [String: String], event: EventDraft?) throws -> Bool {
        let created = try db.write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO volumes (namespace, name, created, labels) VALUES (?, ?, ?, ?)",
                           arguments: [ns, name, Timestamp.now(), Metadata.text(labels)])
            guard db.changesCount > 0 else { return false }
            if let event { try Metadata.append(event, db) }
            return true
        }
        if created && event != nil { eventsCommitted() }
        return created
    }

    func volumes(_ ns: String) throws -> [VolumeRow] {
        try db.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM volumes WHERE namespace = ? ORDER BY name", arguments: [ns]).map {
                VolumeRow(namespace: $0["namespace"], name: $0["name"], created: $0["created"], labels: Metadata.labels($0["labels"]))
            }
        }
    }

    func removeVolume(_ ns: String, _ name: String, event: EventDraft?) throws -> Bool {
        try write(event) { db in
            try db.execute(sql: "DELETE FROM volumes WHERE namespace = ? AND name = ?", arguments: [ns, name])
            return db.changesCount > 0
        }
    }

    // MARK: networks

    struct NetworkRow: Sendable, Equatable {
        var id: String
        var name: String
        var subnet: String
        var gateway: String
        var bridge: String
        var `internal`: Bool
        var labels: [String: String]
        var created: String

        init(id: String, name: String, subnet: String, gateway: String, bridge: String, internal: Bool, labels: [String: String], created: String) {
            self.id = id; self.name = name; self.subnet = subnet; self.gateway = gateway; self.bridge = bridge
            self.internal = `internal`; self.labels = labels; self.created = created
        }

        init(row: Row) {
            id = row["id"]; name = row["name"]; subnet = row["subnet"]; gateway = row["gateway"]; bridge = row["bridge"]
            `internal` = row["internal"]; labels = Metadata.labels(row["labels"]); created = row["created"]
        }
    }

    /// Records a network unless its name is taken.
    func insertNetwork(_ n: NetworkRow, event: EventDraft?) throws {
        try write(event) { db in
            if try Row.fetchOne(db, sql: "SELECT 1 FROM networks WHERE name = ?", arguments: [n.name]) != nil {
                throw APIError.conflict("network with name \(n.name) already exists")
            }
            try db.execute(sql: "INSERT INTO networks (id, name, subnet, gateway, bridge, internal, labels, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           arguments: [n.id, n.name, n.subnet, n.gateway, n.bridge, n.internal, Metadata.text(n.labels), n.created])
        }
    }

    func networks() throws -> [NetworkRow] {
        try db.read { db in try Row.fetchAll(db, sql: "SELECT * FROM networks ORDER BY name").map(NetworkRow.init) }
    }

    /// By exact name, exact id, then a unique id prefix.
    func network(_ ref: String) throws -> NetworkRow? {
        try db.read { db in
            if let row = try Row.fetchOne(db, sql: "SELECT * FROM networks WHERE name = ? OR id = ?", arguments: [ref, ref]) { return NetworkRow(row: row) }
            guard !ref.isEmpty, ref.allSatisfy(\.isHexDigit) else { return nil }
            let rows = try Row.fetchAll(db, sql: "SELECT * FROM networks WHERE id LIKE ? || '%'", arguments: [ref])
            return rows.count == 1 ? NetworkRow(row: rows[0]) : nil
        }
    }

    func removeNetwork(_ id: String, event: EventDraft?) throws {
        try write(event) { db in try db.execute(sql: "DELETE FROM networks WHERE id = ?", arguments: [id]) }
    }

    /// Every namespace that holds something.
    func namespaces() throws -> [String] {
        try db.read { db in
            try String.fetchAll(db, sql: "SELECT namespace FROM images UNION SELECT namespace FROM containers UNION SELECT namespace FROM volumes ORDER BY 1")
        }
    }

    // MARK: labels as stored

    static func text(_ labels: [String: String]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: (try? encoder.encode(labels)) ?? Data("{}".utf8), as: UTF8.self)
    }

    static func labels(_ text: String) -> [String: String] {
        (try? JSONValue.parse(text)).flatMap { try? ValueDecoder(strict: false).decode([String: String].self, from: $0) } ?? [:]
    }
}
