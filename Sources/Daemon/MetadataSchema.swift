/// The metadata database's schema, one migration a version.
enum MetadataSchema {
    static let v1 = """
        CREATE TABLE images (name TEXT PRIMARY KEY, manifestDigest TEXT NOT NULL, created TEXT NOT NULL);
        CREATE TABLE containers (
            id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, image TEXT NOT NULL, manifestDigest TEXT NOT NULL,
            options TEXT NOT NULL, status TEXT NOT NULL, pid INTEGER NOT NULL DEFAULT 0, exitCode INTEGER, exitSignal INTEGER,
            oomKilled INTEGER NOT NULL DEFAULT 0, restartCount INTEGER NOT NULL DEFAULT 0, created TEXT NOT NULL,
            startedAt TEXT, finishedAt TEXT);
        CREATE TABLE volumes (name TEXT PRIMARY KEY, created TEXT NOT NULL);
        """

    /// Namespaces (names unique within one), labels, the event window; restart policies
    /// stored as objects rather than docker's text.
    static let v2 = """
        CREATE TABLE images2 (
            namespace TEXT NOT NULL, name TEXT NOT NULL, manifestDigest TEXT NOT NULL, created TEXT NOT NULL,
            labels TEXT NOT NULL DEFAULT '{}', PRIMARY KEY (namespace, name));
        INSERT INTO images2 (namespace, name, manifestDigest, created) SELECT 'default', name, manifestDigest, created FROM images;
        DROP TABLE images;
        ALTER TABLE images2 RENAME TO images;
        CREATE TABLE containers2 (
            id TEXT PRIMARY KEY, namespace TEXT NOT NULL, name TEXT NOT NULL, image TEXT NOT NULL, manifestDigest TEXT NOT NULL,
            options TEXT NOT NULL, status TEXT NOT NULL, pid INTEGER NOT NULL DEFAULT 0, exitCode INTEGER, exitSignal INTEGER,
            oomKilled INTEGER NOT NULL DEFAULT 0, restartCount INTEGER NOT NULL DEFAULT 0, created TEXT NOT NULL,
            startedAt TEXT, finishedAt TEXT, UNIQUE (namespace, name));
        INSERT INTO containers2 SELECT id, 'default', name, image, manifestDigest, options, status, pid, exitCode, exitSignal,
            oomKilled, restartCount, created, startedAt, finishedAt FROM containers;
        DROP TABLE containers;
        ALTER TABLE containers2 RENAME TO containers;
        UPDATE containers SET options = CASE
            WHEN json_extract(options, '$.restart') IN ('', 'no') THEN json_remove(options, '$.restart')
            WHEN json_extract(options, '$.restart') = 'always' THEN json_set(options, '$.restart', json_object('name', 'always'))
            WHEN json_extract(options, '$.restart') = 'on-failure' THEN json_set(options, '$.restart', json_object('name', 'on-failure'))
            ELSE json_set(options, '$.restart', json_object('name', 'on-failure', 'maxRetries', CAST(substr(json_extract(options, '$.restart'), 12) AS INTEGER)))
            END
            WHERE json_type(options, '$.restart') = 'text';
        CREATE TABLE volumes2 (
            namespace TEXT NOT NULL, name TEXT NOT NULL, created TEXT NOT NULL, labels TEXT NOT NULL DEFAULT '{}',
            PRIMARY KEY (namespace, name));
        INSERT INTO volumes2 (namespace, name, created) SELECT 'default', name, created FROM volumes;
        DROP TABLE volumes;
        ALTER TABLE volumes2 RENAME TO volumes;
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, namespace TEXT NOT NULL, timeNanos INTEGER NOT NULL, body TEXT NOT NULL);
        CREATE INDEX events_time ON events (timeNanos);
        """

    /// Networks: host-wide (not in a namespace), a bridge and a subnet each.
    static let v4 = """
        CREATE TABLE networks (
            id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, subnet TEXT NOT NULL, gateway TEXT NOT NULL, bridge TEXT NOT NULL UNIQUE,
            internal INTEGER NOT NULL DEFAULT 0, labels TEXT NOT NULL DEFAULT '{}', created TEXT NOT NULL);
        """
}
