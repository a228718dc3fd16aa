/// What an event is about.
public enum EventType: String, Codable, Sendable, CaseIterable { case container, image, volume, network }

/// What happened. Containers: create, start, die, restart, pause, unpause, rename, update,
/// destroy; images: import, tag, remove; volumes: create, destroy; networks: create, connect,
/// disconnect, destroy.
public enum EventAction: String, Codable, Sendable, CaseIterable {
    case create, start, die, restart, pause, unpause, rename, update, destroy, `import`, tag, remove
    case connect, disconnect, pull, push
    /// A container's health status changed (attribute `healthStatus`).
    case healthStatus = "health_status"
}

/// One event. `seq` rises by one per event across restarts of the daemon; a client that
/// lost its connection subscribes again with `since` its last `seq` and misses nothing the
/// window still holds.
public struct Event: Notice, Equatable {
    public static let key = NoticeKey.event
    public var seq: Int64
    public var time: String
    public var namespace: String
    public var type: EventType
    public var action: EventAction
    /// The container id, image digest or volume name.
    public var id: String
    /// name, image, restartCount: strings, as docker's.
    public var attributes: [String: String]
    /// With `die`: how the container ended.
    public var exit: ExitStatus?

    public init(seq: Int64, time: String, namespace: String, type: EventType, action: EventAction, id: String,
                attributes: [String: String], exit: ExitStatus? = nil) {
        self.seq = seq; self.time = time; self.namespace = namespace; self.type = type; self.action = action
        self.id = id; self.attributes = attributes; self.exit = exit
    }
}

/// Where a subscription starts: after a sequence number, or at a time (RFC 3339).
public enum EventSince: Codable, Sendable, Equatable {
    case sequence(Int64)
    case time(String)

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let n = try? c.decode(Int64.self) {
            guard n >= 0 else { throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "a sequence number is not negative")) }
            self = .sequence(n)
        } else if let s = try? c.decode(String.self) {
            self = .time(s)
        } else {
            throw DecodingError.typeMismatch(Int64.self, .init(codingPath: decoder.codingPath, debugDescription: "expected a sequence number or an RFC 3339 time"))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .sequence(let n): try c.encode(n)
        case .time(let t): try c.encode(t)
        }
    }
}

public struct SubscribeParams: Codable, Sendable {
    /// Replay the events after this sequence number, or from this time, before live ones.
    public var since: EventSince?
    /// Keys: type, action, id, name.
    public var filters: Filters?
    public init(since: EventSince? = nil, filters: Filters? = nil) { self.since = since; self.filters = filters }
    public static let filterKeys = ["type", "action", "id", "name"]
}

public struct Subscribed: Codable, Sendable {
    /// The newest event's seq when the subscription began (0 if none).
    public var seq: Int64
    /// The oldest seq the window still holds: `since` below it has missed events.
    public var oldest: Int64
    public init(seq: Int64, oldest: Int64) { self.seq = seq; self.oldest = oldest }
}
