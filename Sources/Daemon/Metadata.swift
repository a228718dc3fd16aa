import Foundation
import GRDB
import Wire

/// The daemon's records in SQLite (through GRDB): images by name, containers, volumes. Every
/// change is one transaction, so a kill -9 at any moment leaves a consistent store.
final class Metadata: @unchecked Sendable {
    let db: DatabaseQueue

    init(path: String) throws {
        var config = Configuration()
        config.busyMode = .timeout(5)
        // WAL with synchronous=NORMAL: a kill -9 never loses a committed change or tears one,
        // and a change costs one fsync at checkpoint rather than several per transaction.
        config.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
        db = try DatabaseQueue(path: path, configuration: config)
        try db.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA journal_mode = WAL") }
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE images (
                    name TEXT PRIMARY KEY,
                    manifestDigest TEXT NOT NULL,
                    created TEXT NOT NULL);
                CREATE TABLE containers (
                    id TEXT PRIMARY KEY,
                    name TEXT NOT NULL UNIQUE,
                    image TEXT NOT NULL,
                    manifestDigest TEXT NOT NULL,
                    options TEXT NOT NULL,
                    status TEXT NOT NULL,
                    pid INTEGER NOT NULL DEFAULT 0,
                    exitCode INTEGER,
                    exitSignal INTEGER,
                    oomKilled INTEGER NOT NULL DEFAULT 0,
                    restartCount INTEGER NOT NULL DEFAULT 0,
                    created TEXT NOT NULL,
                    startedAt TEXT,
                    finishedAt TEXT);
                CREATE TABLE volumes (
                    name TEXT PRIMARY KEY,
                    created TEXT NOT NULL);
                """)
        }
        try migrator.migrate(db)
    }

    // MARK: images

    func putImage(name: String, manifestDigest: String) throws {
        try db.write { db in
            try db.execute(sql: "INSERT INTO images (name, manifestDigest, created) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET manifestDigest = excluded.manifestDigest",
                           arguments: [name, manifestDigest, Metadata.now()])
        }
    }

    func images() throws -> [(name: String, manifestDigest: String, created: String)] {
        try db.read { db in
            try Row.fetchAll(db, sql: "SELECT name, manifestDigest, created FROM images ORDER BY name").map { ($0["name"], $0["manifestDigest"], $0["created"]) }
        }
    }

    func removeImage(name: String) throws -> Bool {
        try db.write { db in
            try db.execute(sql: "DELETE FROM images WHERE name = ?", arguments: [name])
            return db.changesCount > 0
        }
    }

    // MARK: containers

    /// One container as stored: its create options, state and last exit.
    struct ContainerRow: Sendable {
        var id: String
        var name: String
        var image: String
        var manifestDigest: String
        var options: CreateOptions
        var status: String
        var pid: Int
        var exitCode: Int?
        var exitSignal: Int?
        var oomKilled: Bool
        var restartCount: Int
        var created: String
        var startedAt: String?
        var finishedAt: String?

        init(row: Row) throws {
            id = row["id"]; name = row["name"]; image = row["image"]; manifestDigest = row["manifestDigest"]
            options = try JSONDecoder().decode(CreateOptions.self, from: Data((row["options"] as String).utf8))
            status = row["status"]; pid = row["pid"]; exitCode = row["exitCode"]; exitSignal = row["exitSignal"]
            oomKilled = row["oomKilled"]; restartCount = row["restartCount"]; created = row["created"]
            startedAt = row["startedAt"]; finishedAt = row["finishedAt"]
        }
    }

    func insertContainer(id: String, name: String, image: String, manifestDigest: String, options: CreateOptions) throws {
        let json = String(decoding: try JSONEncoder().encode(options), as: UTF8.self)
        try db.write { db in
            if try Row.fetchOne(db, sql: "SELECT 1 FROM containers WHERE name = ?", arguments: [name]) != nil {
                throw RPCError.conflict("a container named \(name) exists")
            }
            try db.execute(sql: "INSERT INTO containers (id, name, image, manifestDigest, options, status, created) VALUES (?, ?, ?, ?, ?, 'creating', ?)",
                           arguments: [id, name, image, manifestDigest, json, Metadata.now()])
        }
    }

    func container(_ ref: String) throws -> ContainerRow? {
        try db.read { db in
            // Exact id, exact name, then a unique id prefix.
            if let row = try Row.fetchOne(db, sql: "SELECT * FROM containers WHERE id = ? OR name = ?", arguments: [ref, ref]) {
                return try ContainerRow(row: row)
            }
            let rows = try Row.fetchAll(db, sql: "SELECT * FROM containers WHERE id LIKE ? || '%'", arguments: [ref])
            return rows.count == 1 ? try ContainerRow(row: rows[0]) : nil
        }
    }

    func containers() throws -> [ContainerRow] {
        try db.read { db in try Row.fetchAll(db, sql: "SELECT * FROM containers ORDER BY created").map(ContainerRow.init) }
    }

    func setStatus(_ id: String, _ status: String, pid: Int? = nil, started: Bool = false) throws {
        try db.write { db in
            try db.execute(sql: "UPDATE containers SET status = ?, pid = COALESCE(?, pid), startedAt = CASE WHEN ? THEN ? ELSE startedAt END WHERE id = ?",
                           arguments: [status, pid, started, Metadata.now(), id])
        }
    }

    func setExited(_ id: String, code: Int, signal: Int?, oomKilled: Bool, restarted: Bool) throws {
        try db.write { db in
            try db.execute(sql: "UPDATE containers SET status = 'exited', exitCode = ?, exitSignal = ?, oomKilled = ?, finishedAt = ?, restartCount = restartCount + ? WHERE id = ?",
                           arguments: [code, signal, oomKilled, Metadata.now(), restarted ? 1 : 0, id])
        }
    }

    func removeContainer(_ id: String) throws {
        try db.write { db in try db.execute(sql: "DELETE FROM containers WHERE id = ?", arguments: [id]) }
    }

    // MARK: volumes

    func putVolume(_ name: String) throws -> Bool {
        try db.write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO volumes (name, created) VALUES (?, ?)", arguments: [name, Metadata.now()])
            return db.changesCount > 0
        }
    }

    func volumes() throws -> [(name: String, created: String)] {
        try db.read { db in try Row.fetchAll(db, sql: "SELECT name, created FROM volumes ORDER BY name").map { ($0["name"], $0["created"]) } }
    }

    func removeVolume(_ name: String) throws -> Bool {
        try db.write { db in
            try db.execute(sql: "DELETE FROM volumes WHERE name = ?", arguments: [name])
            return db.changesCount > 0
        }
    }

    /// RFC 3339 UTC with nanoseconds, by arithmetic (Foundation's formatter pulls in ICU's data).
    static func now() -> String { Timestamp.now() }
}
